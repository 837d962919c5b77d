"""Scenario 4: the dirty-bitmap read at unmap fails (fault injected in
hostsim).  The series must not swallow it and must still unmap:

  * the migration fails, with an error that names the unmap
    (vfio_iommu_map_notify reports "vfio_container_dma_unmap(...)");
  * the source VM keeps running and answers QMP;
  * the mapping is gone from the host IOMMU (a stale mapping would let
    the device keep writing into memory the guest reclaimed).  Legacy
    type1 reads the bitmap inside the unmap ioctl, so when that fails the
    kernel keeps the mapping: QEMU must unmap the range once more (the
    fault hits only the first unmap-with-bitmap of the range, as a
    transient bitmap error would);
  * a second migration, without the fault, succeeds and the page the
    device wrote holds its data on the new destination.

Label "fails-cleanly" when all hold; otherwise the first violated point.
"""

from lib import backends
from e2e import guestdma as g
from lib import hostlog as H
from lib import migration
from lib import layout
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import backend_kw

DID = 1
M = g.Mapping(0x10000, 0x200000)


def run_fault(ctx, backend="iommufd"):
    kw = backend_kw(backend)
    # The call that reads the bitmap at unmap: a separate query on iommufd,
    # the unmap ioctl itself (GET_DIRTY_BITMAP flag) on legacy type1.
    fault_call = backends.get(backend).read_at_unmap
    src = ctx.vm("src", **kw).start()
    dst = ctx.vm("dst", incoming=True, **kw).start()
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [M])
    g.fill_old(src, [M])
    state = {}

    def action():
        state["seq"] = src.event_seq()
        g.device_write(src, [M])
        src.ctl.add_fault(fault_call, nth=1, iova_range=(M.iova, M.iova + M.size - 1),
                          errno="EIO")
        drv.unmap(DID, M.iova, M.size)
        src.ctl.clear_faults()
        state["end"] = src.event_seq()

    r = g.migrate_with_window(src, dst, [M], action)
    ctx.note("first migration: " + r.summary())
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if "seq" not in state:
        ctx.note("the window never opened: " + str(r.ordering_lost))
        return "ordering-lost"
    window = [e for e in src.events() if state["seq"] < e["seq"] <= state["end"]]
    for line in H.fmt_all(window):
        ctx.note("  " + line)
    if r.completed:
        return "migration-completed-despite-fault"
    if not r.error_desc or "unmap" not in r.error_desc:
        ctx.note("error-desc does not name the unmap: %r" % r.error_desc)
        return "error-not-naming-unmap"
    if not src.alive():
        return "source-died"
    status = src.status()
    ctx.note("source status after the failed migration: %s" % status)
    if status != "running":
        return "source-not-running"
    injected = [e for e in H.calls(window, fault_call) if e.get("injected")]
    if not injected:
        return "fault-not-hit"
    live = [m for m in src.ctl.state().get("mappings", [])
            if m["iova"] <= M.iova < m["iova"] + m["length"]]
    unmap_call = backends.get(backend).unmap_call
    unmapped = [e for e in H.calls(window, unmap_call)
                if e.get("iova") == M.iova and e.get("ret", -1) == 0]
    if not unmapped or live:
        ctx.note("host mappings still covering iova 0x%x: %s" % (M.iova, live))
        return "mapping-kept"

    dst.stop()
    dst2 = ctx.vm("dst2", incoming=True, **kw).start()
    r2 = migration.migrate(src, dst2, pause=False)
    ctx.note("second migration: " + r2.summary())
    if not r2.completed:
        return "second-migration-failed"
    st = g.check_pages(dst2, [M])
    ctx.note("second destination page: %s" % st)
    if set(st.values()) != {"new"}:
        return "second-migration-stale"
    return "fails-cleanly"


def cases():
    return [Case("e2e/bitmap-read-fails-at-unmap/iommufd",
                 {"fork": "fails-cleanly", "base": "blocked[vIOMMU]",
                  "before-followups": "fails-cleanly",
                  # no read at unmap, so nothing can fail: migration completes
                  "before-preunmap-query": "migration-completed-despite-fault"},
                 run_fault, __doc__),
            Case("e2e/bitmap-read-fails-at-unmap/legacy",
                 {"fork": "fails-cleanly", "base": "realize-failed[vIOMMU]",
                  # before "vfio: Fail migration after a failed DMA unmap"
                  # nothing unmaps the range again after the failed read
                  "before-followups": "mapping-kept",
                  layout.build_before("Fail-migration-after-a-failed-DMA-unmap"):
                      "mapping-kept"},
                 lambda ctx: run_fault(ctx, "legacy"), __doc__)]
