"""Scenario 2: the guest unmaps an IOVA during migration, after the device
wrote through it into a page that was already sent.

Order (made deterministic as described in migration.py):
  1. guest maps IOVA -> target GPA(s), fills the targets with "old" data;
  2. migration starts; the test waits until the destination holds the
     targets with "old" (they were sent) while the first pass is still
     busy with ballast under a bandwidth cap, VM and device running;
  3. the device writes "new" data through the IOVA(s) (hostsim DMA: only
     the host IOMMU's dirty state knows about it);
  4. the guest unmaps the way Linux does: zero the PTE, then invalidate
     ("pte"), or zero a whole PDE covering three 4 KiB mappings to three
     different GPAs, then invalidate the 2 MiB block ("pde");
  5. migration continues to switchover; the destination is read.

Passing means: the source read the dirty bitmap of exactly each unmapped
range once, before unmapping it (iommufd: IOMMU_HWPT_GET_DIRTY_BITMAP with
NO_CLEAR then IOMMU_IOAS_UNMAP; legacy: VFIO_IOMMU_UNMAP_DMA with
GET_DIRTY_BITMAP), AND every written page holds "new" on the destination.
The second condition is the point (docs/behaviour.md [real-page]): with
the nine commits alone the harvested bits land on the wrong guest address (translated_addr 0 of a
zeroed PTE).  The nine commits alone indeed give "read-ok+stale" (build
before-followups); the follow-up "intel_iommu: Unmap recorded mappings with
their own target during page walks" makes it "intact".  In the pde variant
the nine commits read one 2 MiB range whose mappings have holes, and
iommufd's walk stops at the first hole, so even the bits it reads are
incomplete; with the follow-up each recorded mapping is read and unmapped
on its own.

Labels: "intact" (both hold); otherwise "<read>+<data>" with read in
{read-ok, no-read, read-wrong, not-unmapped} and data in {intact, stale},
or what stopped the case (blocked[...], realize-failed[...], dma-failed,
ordering-lost, device-write-not-visible).
"""

from lib import backends
from e2e import guestdma as g
from lib import hostlog as H
from e2e.scenario import Case
from e2e.steps.migration_window import MigrationWindow
# backend_kw: the device these cases migrate, also used by other scenarios.
from e2e.steps.migration_window import backend_kw

DID = 1
# pte: the exact case of docs/behaviour.md [real-page].
PTE_MAPS = [g.Mapping(0x10000, 0x200000)]
# pde: three 4 KiB mappings under one PDE, to three unrelated GPAs.
PDE_MAPS = [g.Mapping(0x40000000, 0x2000000),
            g.Mapping(0x40001000, 0x2345000),
            g.Mapping(0x40005000, 0x3456000)]


def guest_unmap(drv, variant, maps):
    """Returns the (iova, size) range the vIOMMU is expected to unmap."""
    if variant == "pte":
        m = maps[0]
        drv.unmap(DID, m.iova, m.size)
        return m.iova, m.size
    return drv.zero_upper_entry(DID, maps[0].iova, level=2)


def judge_read(ctx, backend, window, maps):
    """Classify the bitmap reads around the unmap(s) in the hostsim events
    logged during the window.

    Correct ("read-ok"): every host unmap is preceded by exactly one read
    of exactly its range since the previous unmap (iommufd: a
    GET_DIRTY_BITMAP with NO_CLEAR; legacy: the unmap itself carries
    GET_DIRTY_BITMAP), there is no other read, and the unmaps cover every
    page the guest unmapped.  The vIOMMU may send one UNMAP for a whole
    zeroed PDE or one per recorded mapping; both are accepted, what counts
    is that what is unmapped is read first.
    Otherwise: "no-read" (unmapped without any read), "not-unmapped" (a
    page the guest unmapped is still mapped in the host), "read-wrong"."""
    unmap_call = backends.get(backend).unmap_call
    unmaps = [e for e in H.calls(window, unmap_call) if e.get("ret") == 0]
    covered = lambda iova: any(u["iova"] <= iova < u["iova"] + H.length(u) for u in unmaps)
    missing = [iova for m in maps for iova, _ in m.pages() if not covered(iova)]
    if missing:
        ctx.note("guest-unmapped IOVAs with no host unmap: %s" % [hex(i) for i in missing])
        return "not-unmapped"
    if not backends.get(backend).reads_inside_unmap:
        reads = H.calls(window, H.GET_DIRTY)
        if not reads:
            return "no-read"
        problems = []
        pending = []
        for e in window:
            if e.get("call") == H.GET_DIRTY:
                pending.append(e)
            elif e.get("call") == H.IOAS_UNMAP and e in unmaps:
                ok = (len(pending) == 1 and pending[0].get("iova") == e["iova"]
                      and H.length(pending[0]) == H.length(e)
                      and pending[0].get("flags", 0) & H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)
                if not ok:
                    problems.append("unmap %s preceded by reads %s"
                                    % (H.fmt(e), [H.fmt(p) for p in pending]))
                pending = []
        if pending:
            problems.append("reads not followed by an unmap: %s" % [H.fmt(p) for p in pending])
    else:
        with_bitmap = [u for u in unmaps
                       if u.get("flags", 0) & H.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP]
        if not with_bitmap:
            return "no-read"
        problems = ["unmap without GET_DIRTY_BITMAP: %s" % H.fmt(u)
                    for u in unmaps if u not in with_bitmap]
        problems += ["separate bitmap read: %s" % H.fmt(e)
                     for e in H.calls(window, H.TYPE1_DIRTY)]
    for p in problems:
        ctx.note("expected one NO_CLEAR read of exactly each unmapped range first: " + p)
    return "read-wrong" if problems else "read-ok"


def run_unmap_during_migration(ctx, backend, variant, queued=False, hostsim_cfg=None):
    maps = PTE_MAPS if variant == "pte" else PDE_MAPS
    kw = backend_kw(backend)
    kw["hostsim_cfg"].update(hostsim_cfg or {})
    mw = MigrationWindow(ctx, **kw)
    src, dst = mw.src, mw.dst
    drv = ctx.guest_iommu(src, DID, queued=queued)
    g.map_all(drv, DID, maps)
    g.fill_old(src, maps)
    mapped = H.maps_of(src.events())
    ctx.note("host MAP calls after guest mapping: %s" % [H.fmt(e) for e in mapped][-4:])
    stop = mw.run(maps, lambda: guest_unmap(drv, variant, maps))
    if stop:
        return stop
    window = mw.window
    ctx.note("hostsim events during the unmap (source):")
    for line in H.fmt_all(window):
        ctx.note("  " + line)
    # QEMU's side of the unmap: the vIOMMU's UNMAP event(s), the dirty-bitmap
    # query (its gpa= field is where harvested bits are marked) and the unmap.
    qemu_side = src.trace_after("iommu UNMAP @ ", 12)
    for line in qemu_side:
        ctx.note("  trace: " + line)
    marked = [int(w[4:], 16) for l in qemu_side
              if l.startswith("vfio_container_query_dirty_bitmap")
              for w in l.split() if w.startswith("gpa=")]
    read = judge_read(ctx, backend, window, maps)
    ctx.measures["dirty_at_unmap"] = sum(
        e.get("dirty_pages", 0) for e in window
        if e.get("call") in (H.GET_DIRTY, H.TYPE1_UNMAP))
    if not mw.result.completed:
        return read + "+migrate-failed"
    written = g.check_pages(src, maps)
    if set(written.values()) != {"new"}:
        ctx.note("source pages after the device wrote: %s" % written)
        return "device-write-not-visible"
    pages = g.check_pages(dst, maps)
    bad = {gpa: st for gpa, st in pages.items() if st != "new"}
    ctx.measures["pages_compared"] = len(pages)
    ctx.measures["pages_lost"] = len(bad)
    for gpa, st in sorted(pages.items()):
        ctx.note("destination gpa 0x%x: %s" % (gpa, st))
    data = "intact" if not bad else "stale"
    if bad and marked:
        ctx.note("harvested dirty bits were marked from gpa(s) %s; the device wrote gpa(s) %s"
                 % ([hex(a) for a in marked], [hex(a) for a in sorted(pages)]))
    if read == "read-ok" and data == "intact":
        return "intact"
    return read + "+" + data


def cases():
    """Expected outcomes per build.  Optional intermediate builds:
    before-preunmap-query  the series without "vfio/iommufd: Query dirty
                           bitmap before DMA unmap": iommufd never reads
                           the bitmap at unmap, the page is stale;
    before-followups       the nine commits without the follow-up fixes:
                           the bitmap is read but its bits are marked at
                           the address the zeroed PTE holds
                           (docs/behaviour.md [real-page]),
                           the page is stale."""
    out = []
    for backend in ("iommufd", "legacy"):
        for variant in ("pte", "pde"):
            expect = {"fork": "intact",
                      "base": backends.get(backend).base_blocker,
                      "before-followups": "read-ok+stale"}
            if backend == "iommufd":
                expect["before-preunmap-query"] = "no-read+stale"
            out.append(Case(
                "e2e/unmap-during-migration/%s/%s" % (backend, variant), expect,
                lambda ctx, b=backend, v=variant: run_unmap_during_migration(ctx, b, v),
                __doc__))
    # The same with queued invalidation, as Linux guests issue it.
    out.append(Case(
        "e2e/unmap-during-migration/iommufd/pte-queued",
        {"fork": "intact", "base": "blocked[vIOMMU]",
         "before-preunmap-query": "no-read+stale", "before-followups": "read-ok+stale"},
        lambda ctx: run_unmap_during_migration(ctx, "iommufd", "pte", queued=True),
        __doc__))
    # Legacy type1 as the kernel really behaves: every mapped page is
    # reported dirty at every read (the other legacy cases use hostsim's
    # precise mode to also prove that the device's page is the one read).
    out.append(Case(
        "e2e/unmap-during-migration/legacy/pte-perpetual",
        {"fork": "intact", "base": "realize-failed[vIOMMU]", "before-followups": "read-ok+stale"},
        lambda ctx: run_unmap_during_migration(ctx, "legacy", "pte",
                                               hostsim_cfg={"type1.dirty": "perpetual"}),
        __doc__))
    return out
