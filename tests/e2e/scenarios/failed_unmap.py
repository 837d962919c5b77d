"""A host unmap fails (fault injected in hostsim) before the migration:
the host IOMMU keeps a mapping QEMU no longer has, and the device can
still DMA through it.  No dirty sync reads the dirty bits of a range QEMU
does not know is mapped (or reads them for the guest's new translation of
that IOVA), so a later migration must fail with an error naming the
failed unmap rather than complete without the pages written through the
stale mapping.

e2e/failed-unmap/translation-enable/<backend>
  The guest enables translation with the device in DMA domain 1: the
  pass-through RAM section at 0 leaves the VFIO listener and its host
  unmap (vfio_listener_region_del()) fails with EBUSY, so the identity
  mapping stays.  The guest maps IOVA 0x10000 -> GPA 0x200000 (the host
  map fails: EEXIST).  During the migration, once both pages were sent,
  the device writes through IOVA 0x10000: the data lands in guest page
  0x10000 through the stale mapping.  This is the fail-nth sweep's point
  "IOMMU_IOAS_UNMAP nth=2 errno=EBUSY".  iommufd only: type1 refuses the
  dirty-bitmap read of IOVA 0x10000 inside the larger stale mapping
  (EINVAL), so on the legacy backend the migration already fails at its
  setup ("ram_save_setup failed"), before and after the fix.
e2e/failed-unmap/guest-unmap/<backend>
  The guest maps IOVA 0x10000 -> GPA 0x200000 and unmaps it (PTE zeroed,
  invalidated) before the migration; the host unmap, from
  vfio_iommu_map_notify(), fails with EBUSY, so the mapping stays.  During
  the migration the device writes through IOVA 0x10000: the data lands in
  guest page 0x200000, which the guest no longer maps.
e2e/failed-unmap/during-migration/<backend>
  The unmap fails while the migration runs: the device is in a
  pass-through domain (IOVA = GPA), writes guest page 0x200000 once it was
  sent, and the guest moves it to a blocking domain, so the RAM section
  leaves the VFIO listener and its host unmap fails with EBUSY.  The page
  is harvested (iommufd reads its dirty bits before the unmap) or not
  (type1 reads them inside the failed unmap ioctl); the test keeps the
  migration iterating (the guest keeps dirtying other memory, downtime
  limit 1 ms) until the page was sent again, and the device then writes
  it once more through the stale mapping.  No dirty sync reads that write
  (nor, on type1, the first one: the page is never sent again).
  On the fork the migration fails at the failed unmap; then a second
  migration runs.  The unmap failed once only: QEMU's second attempt
  removes the range, nothing stale is left, and the second migration
  completes with the page intact ("+next-intact").
e2e/failed-unmap/during-migration-persistent/<backend>
  The same, but every unmap of the range fails until the guest is done
  leaving pass-through: the mapping stays, and the second migration must
  fail too, naming the unmap ("+next-failed[unmap]").

Labels:
  failed[unmap]   the migration failed with an error naming the failed
                  unmap ("vfio_container_dma_unmap"), and the source VM
                  is still running and answers QMP (the fix);
  lost-pages      the migration completed and a page the device wrote
                  differs between source and destination (the silent
                  loss, the queue just before "vfio: Fail migration after
                  a failed DMA unmap");
  completed-intact, failed-other, source-not-running, fault-not-hit,
  blocked[...] / realize-failed[...] (the base: the vIOMMU blocker).
"""

import struct
import time

import config
import guestdma as g
import hostlog as H
import migration
import viommu_modes
from scenario import Case, reason_key
from scenarios.unmap_during_migration import backend_kw

DID = 1
A = g.Mapping(0x10000, 0x200000)
# The guest page at the IOVA itself: where a stale identity mapping of the
# pass-through phase takes the device's write.
IDENTITY = g.Mapping(A.iova, A.iova)
FIX = "Fail-migration-after-a-failed-DMA-unmap"


def unmap_call(backend):
    return H.IOAS_UNMAP if backend == "iommufd" else H.TYPE1_UNMAP


def fail_next_unmap(vm, backend):
    """Fail the next host unmap that covers IOVA A with EBUSY (what both
    iommufd and type1 return for a range they cannot unmap now)."""
    vm.ctl.add_fault(unmap_call(backend), nth=1,
                     iova_range=(A.iova, A.iova + A.size - 1), errno="EBUSY")


def setup_translation_enable(src, backend):
    fail_next_unmap(src, backend)
    drv = viommu_modes.bring_up(src, "legacy", DID)
    src.ctl.clear_faults()
    g.map_all(drv, DID, [A])
    return drv


def setup_guest_unmap(src, backend):
    drv = viommu_modes.bring_up(src, "legacy", DID)
    g.map_all(drv, DID, [A])
    fail_next_unmap(src, backend)
    drv.unmap(DID, A.iova, A.size)
    src.ctl.clear_faults()
    return drv


def run(ctx, backend, setup):
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(**kw)
    reasons = src.blocked_reasons()
    seq = src.event_seq()
    setup(src, backend)
    setup_events = H.after(src.events(), seq)
    for line in H.fmt_all(setup_events, names=(H.IOAS_MAP, H.IOAS_UNMAP,
                                               H.TYPE1_MAP, H.TYPE1_UNMAP)):
        ctx.note("  before migration: " + line)
    for line in src.trace_lines("vfio_listener_region_del", "vfio_iommu_map_notify")[-8:]:
        ctx.note("  trace: " + line)
    injected = [e for e in H.calls(setup_events, unmap_call(backend)) if e.get("injected")]
    pages = [A, IDENTITY]
    g.fill_old(src, pages)
    replies = []

    def action():
        replies.extend(g.device_write(src, [A]))

    r = g.migrate_with_window(src, dst, pages, action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if not injected:
        return "fault-not-hit"
    if not src.alive():
        ctx.note("source exited rc=%s" % src.proc.returncode)
        return "source-not-running"
    status = src.status()                  # QMP must still answer
    ctx.note("source status after the migration: %s" % status)
    if r.completed:
        for _, rep in replies:
            ctx.note("device write through iova 0x%x: %s" % (A.iova, rep))
        bad = {}
        for m in pages:
            a, b = src.qt.read(m.gpa, g.PAGE), dst.qt.read(m.gpa, g.PAGE)
            ctx.note("gpa 0x%x: source %s, destination %s"
                     % (m.gpa, g.page_state(src, m.gpa), g.page_state(dst, m.gpa)))
            if a != b:
                bad[m.gpa] = True
        ctx.measures["pages_lost"] = len(bad)
        if r.ordering_lost and not bad:
            return "ordering-lost"
        return "lost-pages" if bad else "completed-intact"
    if status != "running":
        return "source-not-running"
    return label_failure(r)


def second_pattern(gpa):
    return 0x5EC0000000000000 | (gpa >> 12)


def keep_iterating_until(src, dst, page, wanted, syncs=4, timeout=30.0):
    """Keep the migration from converging (the guest dirties 4 MiB of other
    memory per round, downtime limit 1 ms) until the destination's page
    holds `wanted`, or `syncs` more dirty syncs ran without sending it
    again (nothing marked it dirty), or the migration left the active
    phase.  Returns the destination's page state then."""
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": 1})
    end = time.monotonic() + timeout
    state, n, first = None, 0, None
    while time.monotonic() < end:
        src.qt.memset(DIRTY_GPA, DIRTY_SIZE, 0x30 + n % 64)
        n += 1
        info = src.qmp.command("query-migrate")
        if info.get("status") != "active":
            break
        count = info.get("ram", {}).get("dirty-sync-count", 0)
        first = count if first is None else first
        state = g.page_state(dst, page)
        if state == wanted or count >= first + syncs:
            break
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": 300})
    return state


# Memory the guest keeps dirtying; apart from the target and the ballast.
DIRTY_GPA = 0x4000000
DIRTY_SIZE = 4 << 20
PT_TARGET = g.Mapping(0x200000, 0x200000)


def label_failure(r):
    if r.status == "failed" and r.error_desc and "vfio_container_dma_unmap" in r.error_desc:
        return "failed[unmap]"
    return "failed-other"


def next_migration(ctx, src, kw, page):
    """A second migration of the source to a new destination: the suffix
    of the label."""
    dst2 = ctx.vm("dst2", incoming=True, **kw).start()
    r = migration.migrate(src, dst2, pause=False)
    ctx.note("second migration: " + r.summary())
    if r.refused:
        return "+next-refused"
    if r.completed:
        same = src.qt.read(page, g.PAGE) == dst2.qt.read(page, g.PAGE)
        ctx.note("second destination gpa 0x%x: %s" % (page, g.page_state(dst2, page)))
        return "+next-intact" if same else "+next-lost"
    if not src.alive() or src.status() != "running":
        return "+next-source-not-running"
    return "+next-" + label_failure(r)


def run_during_migration(ctx, backend, persistent=False):
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(**kw)
    reasons = src.blocked_reasons()
    drv = viommu_modes.bring_up(src, "legacy", DID, passthrough=True)
    m = PT_TARGET
    g.fill_old(src, [m])
    st = {}

    def action():
        st["seq"] = src.event_seq()
        st["dma1"] = g.device_write(src, [m])
        src.ctl.add_fault(unmap_call(backend), nth=None if persistent else 1,
                          iova_range=(m.iova, m.iova + m.size - 1), errno="EBUSY")
        viommu_modes.block(drv, DID)
        src.ctl.clear_faults()
        st["end"] = src.event_seq()
        st["resent"] = keep_iterating_until(src, dst, m.gpa, "new")
        if st["resent"] == "new":
            st["dma2"] = g.device_write(src, [m], pattern=second_pattern)

    r = g.migrate_with_window(src, dst, [m], action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if "seq" not in st:
        ctx.note("the window never opened: %s" % r.ordering_lost)
        return "ordering-lost"
    window = [e for e in src.events() if st["seq"] < e["seq"] <= st["end"]]
    for line in H.fmt_all(window, names=(H.GET_DIRTY, H.IOAS_UNMAP, H.TYPE1_UNMAP)):
        ctx.note("  while leaving pass-through: " + line)
    ctx.note("device writes: first %s, second %s; destination page before the "
             "second: %s" % ([x[1] for x in st.get("dma1", [])],
                             [x[1] for x in st.get("dma2", [])], st.get("resent")))
    if not [e for e in H.calls(window, unmap_call(backend)) if e.get("injected")]:
        return "fault-not-hit"
    if not src.alive():
        ctx.note("source exited rc=%s" % src.proc.returncode)
        return "source-not-running"
    status = src.status()                  # QMP must still answer
    ctx.note("source status after the migration: %s" % status)
    if r.completed:
        # Without a second write (the page was never sent again: its first
        # write was not harvested either) the first write is what is lost.
        a, b = src.qt.read(m.gpa, g.PAGE), dst.qt.read(m.gpa, g.PAGE)
        ctx.note("gpa 0x%x: source 0x%016x, destination 0x%016x"
                 % (m.gpa, struct.unpack_from("<Q", a)[0], struct.unpack_from("<Q", b)[0]))
        return "lost-pages" if a != b else "completed-intact"
    if status != "running":
        return "source-not-running"
    label = label_failure(r)
    if label != "failed[unmap]":
        return label
    dst.stop()
    return label + next_migration(ctx, src, kw, m.gpa)


def cases():
    before = config.build_before(FIX)
    out = []
    for name, setup, backends in (
            ("translation-enable", setup_translation_enable, ("iommufd",)),
            ("guest-unmap", setup_guest_unmap, ("iommufd", "legacy"))):
        for backend in backends:
            base = "blocked[vIOMMU]" if backend == "iommufd" else "realize-failed[vIOMMU]"
            out.append(Case("e2e/failed-unmap/%s/%s" % (name, backend),
                            {"fork": "failed[unmap]", "base": base, before: "lost-pages"},
                            lambda ctx, b=backend, s=setup: run(ctx, b, s), __doc__))
    for backend in ("iommufd", "legacy"):
        base = "blocked[vIOMMU]" if backend == "iommufd" else "realize-failed[vIOMMU]"
        out.append(Case("e2e/failed-unmap/during-migration/%s" % backend,
                        {"fork": "failed[unmap]+next-intact", "base": base,
                         before: "lost-pages"},
                        lambda ctx, b=backend: run_during_migration(ctx, b), __doc__))
        out.append(Case("e2e/failed-unmap/during-migration-persistent/%s" % backend,
                        {"fork": "failed[unmap]+next-failed[unmap]", "base": base,
                         before: "lost-pages"},
                        lambda ctx, b=backend: run_during_migration(ctx, b, True),
                        __doc__))
    return out
