"""calc-dirty-rate when the VFIO container's dirty tracking cannot start
(hostsim fails IOMMU_HWPT_SET_DIRTY_TRACKING / VFIO_IOMMU_DIRTY_PAGES once
with EIO).  QEMU 10.2.2's measurement thread prints the error, measures
without tracking, then stops what never started and aborts on
memory_global_dirty_log_do_stop()'s assertion.  The fork fails the
command instead (docs/behaviour.md [dirty-rate-start-failure]).

e2e/dirty-rate-start-failure/<backend>
  iommufd behind intel-iommu; legacy without a vIOMMU and with
  enable-migration=on (the type1 bitmap, which the base realizes there
  too).  calc-dirty-rate (dirty-bitmap mode) with the fault: fork:
  refused with an error naming the errno ("refused"); then, without the
  fault, calc-dirty-rate measures ("+measured") and a migration in which
  the device writes a page after it was sent carries it ("+intact").
  base: "crashed[signal 6]".
"""

import time

from e2e import guestdma as g
from lib.qmp import QMPError
from e2e.scenario import Case
from e2e.steps.migration_window import migration_kw
from e2e.steps.next_migration import alive_label, next_migration_label
from e2e.steps.unmap_reads import wait_dirty_rate

START_CALL = {"iommufd": "IOMMU_HWPT_SET_DIRTY_TRACKING", "legacy": "VFIO_IOMMU_DIRTY_PAGES"}
DID = 1
VIOMMU_WRITE = [("dev0", 0, g.Mapping(0x10000, 0x200000))]
IDENTITY_WRITE = [("dev0", 0, g.Mapping(0x200000, 0x200000))]


def calc_dirty_rate(v):
    """Run calc-dirty-rate (1 s, dirty-bitmap); the final status."""
    v.qmp.command("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-bitmap"})
    return wait_dirty_rate(v).get("status")


def run(ctx, backend):
    viommu = backend == "iommufd"
    kw = migration_kw(backend)
    src = ctx.vm("src", viommu=viommu, **kw).start()
    src.ctl.add_fault(START_CALL[backend], nth=1, errno="EIO")
    try:
        status = calc_dirty_rate(src)
        label = "measured-despite-fault[%s]" % status
    except QMPError as e:
        ctx.note("calc-dirty-rate refused: %s" % e.desc)
        label = "refused" if "Input/output error" in e.desc else "refused-without-errno"
    except (OSError, EOFError) as e:
        ctx.note("calc-dirty-rate: %r" % e)
        time.sleep(0.5)
        label = "qmp-lost"
    bad = alive_label(ctx, src)
    if bad:
        return bad
    src.ctl.clear_faults()
    status = calc_dirty_rate(src)
    ctx.note("calc-dirty-rate without the fault: %s" % status)
    label += "+" + (status or "none")
    dst = ctx.vm("dst", viommu=viommu, incoming=True, **kw).start()
    writes = VIOMMU_WRITE if viommu else IDENTITY_WRITE
    if viommu:
        g.map_all(ctx.guest_iommu(src, DID), DID, [m for _, _, m in writes])
    return label + "+" + next_migration_label(ctx, src, dst, writes)


def cases():
    return [Case("e2e/dirty-rate-start-failure/%s" % backend,
                 {"fork": "refused+measured+intact", "base": "crashed[signal 6]"},
                 lambda ctx, b=backend: run(ctx, b), __doc__)
            for backend in ("iommufd", "legacy")]
