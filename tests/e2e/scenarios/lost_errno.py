"""The kernel's errno of a failed dirty bitmap read reaches the user
(docs/behaviour.md [kernel-errno]).  hostsim fails the read with EIO, an
errno QEMU never makes up itself.

QEMU 10.2.2 replaces it: the legacy unmap with dirty bitmap returns
ioctl()'s -1, which callers print as -1 (Operation not permitted), and
iommufd_query_dirty_bitmap() returns -EINVAL whatever
IOMMU_HWPT_GET_DIRTY_BITMAP failed with.

e2e/lost-errno/<backend>/unmap-during-migration
  the device writes a page after it was sent, the guest unmaps it during
  migration and the bitmap read of that unmap fails once.  The migration
  fails; its error-desc (query-migrate) names the errno: "failed[EIO]";
  then the source, still running, migrates again without the fault to a
  new destination, and the page arrives: "+intact".  base: the vIOMMU
  blocker (iommufd) / realize failure (legacy, enable-migration=on); the
  queue before each fix: failed[EINVAL] / failed[EPERM].
e2e/lost-errno/legacy/dirty-rate
  the same failed unmap while calc-dirty-rate tracks dirty pages (the
  device realizes on the base too, enable-migration=auto): QEMU prints
  "vfio_container_dma_unmap(...) = -N (...)".  fork: "reported[EIO]",
  base: "reported[EPERM]"; QEMU keeps running.
"""

import errno
import re
import time

from lib import layout
from e2e import guestdma as g
from lib import hostlog as H
from lib import migration
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import count_lost, dirty_rate_kw, migration_kw
from e2e.steps.next_migration import alive_label
from e2e.steps.unmap_reads import wait_dirty_rate

DID = 1
M = g.Mapping(0x10000, 0x200000)
READ_CALL = {"iommufd": H.GET_DIRTY, "legacy": H.TYPE1_UNMAP}
ERRNO_RE = re.compile(r"vfio_container_dma_unmap\([^)]*\) = -(\d+) \(")


def errno_named(text):
    """The errno name of the last failed vfio_container_dma_unmap in text."""
    found = ERRNO_RE.findall(text or "")
    return errno.errorcode.get(int(found[-1]), found[-1]) if found else None


def fail_read_once(src, backend):
    src.ctl.add_fault(READ_CALL[backend], nth=1, iova_range=(M.iova, M.iova + M.size - 1),
                      errno="EIO")


def unmap_during_migration(ctx, backend):
    kw = migration_kw(backend)
    src = ctx.vm("src", **kw).start()
    dst = ctx.vm("dst", incoming=True, **kw).start()
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [M])
    g.fill_old(src, [M])

    def action():
        g.device_write(src, [M])
        fail_read_once(src, backend)
        drv.unmap(DID, M.iova, M.size)
        src.ctl.clear_faults()

    r = g.migrate_with_window(src, dst, [M], action)
    ctx.note("migration with the fault: " + r.summary())
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if r.completed:
        return "completed-despite-fault"
    bad = alive_label(ctx, src)
    if bad:
        return bad
    label = "failed[%s]" % errno_named(r.error_desc)
    dst.stop()
    dst2 = ctx.vm("dst2", incoming=True, **kw).start()
    r2 = migration.migrate(src, dst2, pause=False)
    ctx.note("next migration: " + r2.summary())
    if not r2.completed:
        return label + "+next-migration-failed"
    return label + ("+stale" if count_lost(ctx, dst2, [M]) else "+intact")


def dirty_rate(ctx, backend):
    src = ctx.vm("src", **dirty_rate_kw(backend)).start()
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [M])
    g.device_write(src, [M])
    seq = src.event_seq()
    src.qmp.command("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-bitmap"})
    # the base starts tracking in the measurement thread, after the
    # command returned: unmap once the container's tracking is on, so that
    # the unmap reads the bitmap on every build
    end = time.monotonic() + 5
    while not any(e.get("call") == H.TYPE1_DIRTY and e.get("ret") == 0
                  for e in H.after(src.events(), seq)):
        if time.monotonic() > end:
            return "tracking-never-started"
        time.sleep(0.02)
    fail_read_once(src, backend)
    drv.unmap(DID, M.iova, M.size)
    wait_dirty_rate(src)
    bad = alive_label(ctx, src)
    if bad:
        return bad
    err = src.stderr()
    ctx.note("stderr: " + err.strip().replace("\n", " | ")[-600:])
    return "reported[%s]" % errno_named(err)


def cases():
    return [
        Case("e2e/lost-errno/iommufd/unmap-during-migration",
             {"fork": "failed[EIO]+intact", "base": "blocked[vIOMMU]",
              layout.build_before("iommufd-Report-the-kernel-s-errno"):
                  "failed[EINVAL]+intact"},
             lambda ctx: unmap_during_migration(ctx, "iommufd"), __doc__),
        Case("e2e/lost-errno/legacy/unmap-during-migration",
             {"fork": "failed[EIO]+intact", "base": "realize-failed[vIOMMU]",
              layout.build_before("container-legacy-Report-the-kernel-s-errno"):
                  "failed[EPERM]+intact"},
             lambda ctx: unmap_during_migration(ctx, "legacy"), __doc__),
        Case("e2e/lost-errno/legacy/dirty-rate",
             {"fork": "reported[EIO]", "base": "reported[EPERM]"},
             lambda ctx: dirty_rate(ctx, "legacy"), __doc__),
    ]
