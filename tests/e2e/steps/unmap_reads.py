"""Shared checks of the teardown scenarios: which host unmaps a guest
action caused, whether each one harvested its dirty bits first, and a
window with dirty tracking on but no migration (calc-dirty-rate), in which
a build that cannot migrate with a vIOMMU still shows what its unmap path
does.

Not a scenario module (no cases()).

A host unmap "harvests" when the backend reads the dirty bits of exactly
the unmapped range before they are destroyed:
  iommufd  one IOMMU_HWPT_GET_DIRTY_BITMAP with NO_CLEAR of exactly the
           range, then the IOMMU_IOAS_UNMAP of that range;
  legacy   VFIO_IOMMU_UNMAP_DMA carrying VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
           (the kernel copies the bits out while it unmaps).
A read with flags 0 (iommufd) or a VFIO_IOMMU_DIRTY_PAGES get_bitmap
(legacy) inside the window is a periodic dirty sync: the harvest at unmap
is then not the only way the written page can be marked, so the window is
reported as "ordering-lost" instead of being judged.
"""

import time

from lib import backends
from lib import hostlog as H

QEMU_E2BIG = "UNMAP: Size of bitmap too big"


def unmap_call(backend):
    return backends.get(backend).unmap_call


def periodic_reads(window):
    """Reads of the periodic dirty sync inside the window."""
    out = []
    for e in window:
        if e.get("call") == H.GET_DIRTY and not e.get("flags", 0) & H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR:
            out.append(e)
        elif e.get("call") == H.TYPE1_DIRTY and e.get("op") == "get_bitmap":
            out.append(e)
    return out


def covers(ev, iova, size):
    n = H.length(ev) or 0
    return ev["iova"] <= iova and iova + size <= ev["iova"] + n


def judge(ctx, backend, window, pages=(), exact=None, focus=False):
    """Label the host unmaps in window.

    pages: [(iova, size)] the guest took away: each must be inside one
           successful host unmap ("not-unmapped" otherwise).
    exact: if given, [(iova, size)]: the successful host unmaps must be
           exactly these, one each, in any order ("unmaps-wrong" otherwise:
           e.g. address-width chunks instead of the recorded mappings).
    focus: judge the reads of only the unmaps that cover pages (other
           unmaps in the window, e.g. of empty ranges, do not count).
    Returns "read-ok", "no-read", "read-wrong", "not-unmapped",
    "unmaps-wrong" or "unmap-failed" (a host unmap returned an error)."""
    call = unmap_call(backend)
    # An unmap of a range holding no mapping (a sweep over empty address
    # space) removes nothing: IOMMU_IOAS_UNMAP fails with ENOENT,
    # VFIO_IOMMU_UNMAP_DMA succeeds with 0 bytes unmapped.  Not judged.
    empty = [e for e in H.calls(window, call) if backends.get(backend).empty_unmap(e)]
    unmaps = [e for e in H.calls(window, call) if e.get("ret") == 0 and e not in empty]
    failed = [e for e in H.calls(window, call) if e.get("ret") != 0 and e not in empty]
    if empty:
        ctx.note("%d host unmaps of empty ranges, e.g. %s"
                 % (len(empty), H.fmt(empty[0])))
    for e in failed:
        ctx.note("host unmap failed: " + H.fmt(e))
    missing = [(i, s) for i, s in pages if not any(covers(u, i, s) for u in unmaps)]
    if missing:
        ctx.note("guest-removed ranges with no successful host unmap: %s"
                 % ["0x%x+0x%x" % m for m in missing])
        return "unmap-failed" if failed else "not-unmapped"
    if failed:
        return "unmap-failed"
    # The unmaps judged: all, or (focus) those covering the guest's pages.
    judged = [u for u in unmaps if not focus or any(covers(u, i, s) for i, s in pages)]
    problems = []
    if not backends.get(backend).reads_inside_unmap:
        reads_before = {}       # seq of an unmap -> reads since the previous unmap
        pending = []
        for e in window:
            if e.get("call") == H.GET_DIRTY:
                pending.append(e)
            elif e.get("call") == call:
                reads_before[e["seq"]] = pending
                pending = []
        for u in judged:
            rd = reads_before[u["seq"]]
            ok = (len(rd) == 1 and rd[0].get("iova") == u["iova"]
                  and H.length(rd[0]) == H.length(u)
                  and rd[0].get("flags", 0) & H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
                  and rd[0].get("ret") == 0)
            if not ok:
                problems.append("unmap %s preceded by reads %s" % (H.fmt(u), [H.fmt(r) for r in rd]))
        if pending and not focus:
            problems.append("reads not followed by their unmap: %s" % [H.fmt(r) for r in pending])
        if judged and not any(reads_before[u["seq"]] for u in judged):
            return "no-read"
    else:
        with_bitmap = [u for u in judged if u.get("flags", 0) & H.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP]
        if judged and not with_bitmap:
            return "no-read"
        problems += ["unmap without GET_DIRTY_BITMAP: " + H.fmt(u)
                     for u in judged if u not in with_bitmap]
    for p in problems:
        ctx.note("harvest problem: " + p)
    if problems:
        return "read-wrong"
    if exact is not None:
        got = sorted((u["iova"], H.length(u)) for u in unmaps)
        want = sorted(exact)
        if got != want:
            ctx.note("host unmaps %s, expected exactly one per recorded mapping %s"
                     % (["0x%x+0x%x" % g for g in got], ["0x%x+0x%x" % w for w in want]))
            return "unmaps-wrong"
    return "read-ok"


def e2big(vm):
    """QEMU's legacy backend refused an unmap bitmap as too large."""
    return [l for l in vm.stderr().splitlines() if QEMU_E2BIG in l]


def host_mappings(vm):
    """Mappings the host IOMMU (hostsim) still has for the device."""
    st = vm.ctl.state()
    return [(m["iova"], m["length"]) for m in st.get("mappings", [])]


def tracking_starts(events, backend):
    """seqs of the successful "start dirty tracking" calls of backend."""
    out = []
    for e in events:
        if backends.get(backend).tracking_start(e):
            out.append(e["seq"])
    return out


class DirtyRateWindow:
    """Result of dirty_rate_window()."""

    def __init__(self):
        self.error = None           # why the window could not be opened
        self.ordering_lost = None
        self.start_seq = None       # seq just before the action
        self.end_seq = None         # seq just after the action


def wait_dirty_rate(vm, timeout=10.0):
    """Poll query-dirty-rate until the measurement is done (status
    "measured"), the VM is gone or timeout; returns its last answer."""
    st = {}
    end = time.monotonic() + timeout
    while vm.alive() and time.monotonic() < end:
        st = vm.qmp.command("query-dirty-rate")
        if st.get("status") == "measured":
            break
        time.sleep(0.05)
    return st


def dirty_rate_window(vm, backend, action, calc_ms=30000, timeout=30.0, containers=1):
    """Turn dirty tracking on with calc-dirty-rate in dirty-bitmap mode (no
    migration: a build that blocks migration with a vIOMMU still tracks),
    wait until the backend started tracking (in `containers` containers)
    and the measurement's first sync is done, run action(), and check that
    the measurement is still running.

    The window is valid if the measurement was still running after the
    action and no periodic read happened during it (checked by the caller
    with periodic_reads on the window's events).

    The measurement must outlast the slowest action: on the base, the
    legacy teardown unmaps address-width chunks with dirty bitmaps of up to
    256 MiB each, which QEMU then scans, and on a loaded two-core machine
    that took longer than a window of several seconds ("ordering-lost").
    So the measurement is long (30 s), and nothing waits for its end: the
    cases judge the window and stop the VM, which ends the measurement."""
    w = DirtyRateWindow()
    vm.qmp.command("calc-dirty-rate", **{"calc-time": calc_ms,
                                         "calc-time-unit": "millisecond",
                                         "mode": "dirty-bitmap"})
    end = time.monotonic() + timeout
    while len(tracking_starts(vm.events(), backend)) < containers:
        if time.monotonic() > end:
            w.error = "backend dirty tracking never started"
            return w
        time.sleep(0.01)
    # The measurement syncs once right after starting: wait for that sync's
    # reads, then until the backend has been quiet for a moment.
    start = max(tracking_starts(vm.events(), backend))
    while not periodic_reads([e for e in vm.events() if e["seq"] > start]):
        if time.monotonic() > end:
            w.error = "the first dirty sync never read the backend"
            return w
        time.sleep(0.01)
    last, quiet_since = vm.event_seq(), time.monotonic()
    while time.monotonic() - quiet_since < 0.1:
        time.sleep(0.02)
        seq = vm.event_seq()
        if seq != last:
            last, quiet_since = seq, time.monotonic()
    w.start_seq = vm.event_seq()
    action()
    w.end_seq = vm.event_seq()
    st = vm.qmp.command("query-dirty-rate", **{"calc-time-unit": "millisecond"})
    if st.get("status") != "measuring":
        w.ordering_lost = "dirty-rate measurement ended (%s) before the action finished" % st.get("status")
    return w


def window_events(vm, start_seq, end_seq):
    return [e for e in vm.events() if start_seq < e["seq"] <= end_seq]
