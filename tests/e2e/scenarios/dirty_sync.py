"""Scenario 3: the periodic dirty sync still reads AND clears (flags 0), the
NO_CLEAR read happens only right before an unmap, and outside dirty
tracking no bitmap is read at unmap at all.

periodic-sync-clears (iommufd): two mappings M1 (kept) and M2 (unmapped).
Once both pages were sent (VM and device running, first pass busy), the
device writes through both, the guest unmaps M2, migration continues.  Expected on the source's hostsim log:
  * GET_DIRTY_BITMAP calls of the periodic syncs (setup, iterations, the
    final sync after the pause) all have flags 0;
  * the only NO_CLEAR read is the one right before the IOAS_UNMAP of M2;
  * the final sync reads M1 (still mapped) and M1's page arrives "new" on
    the destination: the ordinary log-sync path still harvests.
  * QEMU's trace events have the fields patches 4 and 5 give them
    (backend_flag third in vfio_container_query_dirty_bitmap, flags before
    page_size in iommufd_backend_get_dirty_bitmap).
Label "clears" when all hold.

no-read-outside-tracking (both backends): without migration (dirty
tracking off) a guest map, device write and unmap produce an unmap with no
bitmap read.  Unchanged by the series: label "no-read" on both builds.
"""

from e2e import guestdma as g
from lib import hostlog as H
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import backend_kw

DID = 1
M1 = g.Mapping(0x100000, 0x1200000)
M2 = g.Mapping(0x200000, 0x1300000)


def run_periodic(ctx):
    src, dst = ctx.start_pair(**backend_kw("iommufd"))
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [M1, M2])
    g.fill_old(src, [M1, M2])
    state = {}

    def action():
        g.device_write(src, [M1, M2])
        drv.unmap(DID, M2.iova, M2.size)
        state["unmap_seq"] = src.event_seq()

    start_seq = src.event_seq()
    r = g.migrate_with_window(src, dst, [M1, M2], action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if r.ordering_lost:
        return "ordering-lost"
    events = H.after(src.events(), start_seq)
    reads = H.calls(events, H.GET_DIRTY)
    for line in H.fmt_all(events, names=(H.GET_DIRTY, H.IOAS_UNMAP, "IOMMU_HWPT_SET_DIRTY_TRACKING")):
        ctx.note("  " + line)
    problems = []            # (label, explanation), first one is the outcome
    unmap = [e for e in H.calls(events, H.IOAS_UNMAP) if e.get("iova") == M2.iova]
    no_clear = [e for e in reads if e.get("flags", 0) & H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR]
    periodic = [e for e in reads if not e.get("flags", 0)]
    if [e for e in reads if e.get("flags", 0) & ~H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR]:
        problems.append(("unknown-flags", "reads with unknown flags"))
    if not unmap:
        problems.append(("no-unmap", "no IOAS_UNMAP of M2"))
        pre = []
    else:
        before = [e for e in reads if e["seq"] < unmap[0]["seq"]]
        pre = before[-1:] if before and before[-1] in no_clear else []
        if not pre or pre[0].get("iova") != M2.iova or H.length(pre[0]) != M2.size:
            problems.append(("no-read-at-unmap",
                             "the unmap of M2 is not preceded by a NO_CLEAR read of M2"))
    stray = [e for e in no_clear if e not in pre]
    if stray:
        problems.append(("periodic-no-clear", "NO_CLEAR reads other than the one "
                         "before the unmap: %s" % [H.fmt(e) for e in stray]))
    if not periodic:
        problems.append(("no-periodic-read", "no periodic (flags 0) read at all"))
    final = [e for e in periodic if e["seq"] > state.get("unmap_seq", 1 << 62)
             and e.get("iova", -1) <= M1.iova < e.get("iova", -1) + (H.length(e) or 0)]
    if not final:
        problems.append(("final-sync-missed", "final sync did not read M1 with flags 0"))
    if r.completed:
        st = g.check_pages(dst, [M1])
        ctx.note("destination M1 page: %s" % st)
        if set(st.values()) != {"new"}:
            problems.append(("m1-stale", "M1 page stale on destination"))
    else:
        problems.append(("migration-failed", "migration did not complete"))
    problems += trace_problems(src)
    for label, text in problems:
        ctx.note("problem: " + text)
    return problems[0][0] if problems else "clears"


def trace_problems(vm):
    """The trace events the series' patches 4 and 5 change ([sync]): the container
    query names backend_flag third (no stray space in "size=0x"), the
    iommufd ioctl trace names flags before page_size; NO_CLEAR (0x1) only
    on the query right before an unmap."""
    out = []
    q = vm.trace_lines("vfio_container_query_dirty_bitmap ")
    b = vm.trace_lines("iommufd_backend_get_dirty_bitmap ")
    if not q or not b:
        return [("trace-missing", "no dirty bitmap query in the QEMU trace")]
    for l in q:
        w = l.split()
        if len(w) < 4 or not w[1].startswith("iova=") or not w[2].startswith("size=0x") \
                or not w[3].startswith("backend_flag=0x"):
            out.append(("trace-format", "vfio_container_query_dirty_bitmap line "
                        "not 'iova= size= backend_flag= ...': %r" % l))
            break
    for l in b:
        if " flags=0x" not in l or l.index(" flags=") > l.index(" page_size="):
            out.append(("trace-format", "iommufd_backend_get_dirty_bitmap line "
                        "without flags= before page_size=: %r" % l))
            break
    lines = vm.trace_lines()
    for i, l in enumerate(lines):
        if l.startswith("iommufd_backend_get_dirty_bitmap ") and " flags=0x1 " in l:
            nxt = [x for x in lines[i + 1:i + 3] if x.startswith("iommufd_backend_unmap_dma")]
            if not nxt:
                out.append(("trace-no-clear-outside-unmap",
                            "NO_CLEAR query not followed by the unmap: %r" % l))
    return out


def run_outside(ctx, backend):
    kw = backend_kw(backend)
    # No migration here: keep enable-migration at its default so that the
    # same configuration starts on both builds.
    kw.pop("enable_migration", None)
    src = ctx.vm("src", **kw).start()
    drv = ctx.guest_iommu(src, DID)
    m = g.Mapping(0x300000, 0x1400000)
    g.map_all(drv, DID, [m])
    seq = src.event_seq()
    replies = g.device_write(src, [m])
    drv.unmap(DID, m.iova, m.size)
    events = H.after(src.events(), seq)
    for line in H.fmt_all(events):
        ctx.note("  " + line)
    if not all(rep.get("ok") for _, rep in replies):
        return "dma-failed"
    unmaps = [e for e in H.unmaps_of(events) if e.get("iova") == m.iova]
    if not unmaps:
        return "no-unmap"
    reads = H.calls(events, H.GET_DIRTY, H.TYPE1_DIRTY)
    with_bitmap = [e for e in unmaps
                   if e.get("call") == H.TYPE1_UNMAP
                   and e.get("flags", 0) & H.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP]
    return "no-read" if not reads and not with_bitmap else "read-outside-tracking"


def cases():
    out = [Case("e2e/periodic-sync-clears/iommufd",
                {"fork": "clears", "base": "blocked[vIOMMU]",
                 "before-followups": "clears",
                 "before-preunmap-query": "no-read-at-unmap"}, run_periodic, __doc__)]
    for be in ("iommufd", "legacy"):
        out.append(Case("e2e/no-read-outside-tracking/%s" % be,
                        {"fork": "no-read", "base": "no-read"},
                        lambda ctx, b=be: run_outside(ctx, b), __doc__))
    return out
