"""Item 5: dirty-bit clear operations per migration, reading the dirty
bits before an unmap with IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR (the fork)
or with a clearing read (the fork built with before/no-clear-at-unmap.patch,
tests/e2e/build-before.sh: the query before an iommufd unmap passes flags 0, as
it did before "vfio/iommufd: Add IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR flag
support"; the queue up to the commit before that one still refuses
migration with a vIOMMU, so no queue prefix shows it).

A clear operation is a dirty-bitmap read that clears the bits it reports:
on a real IOMMU each one makes the kernel flush the IOTLB so that the
hardware sets the bits again.  iommufd: IOMMU_HWPT_GET_DIRTY_BITMAP without
the NO_CLEAR flag; type1: every VFIO_IOMMU_DIRTY_PAGES bitmap read (type1
has no flag; its unmap with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP reads and
drops the mapping in one call, so the legacy rows are the same in both
builds, a control).

Workload (as the e2e unmap-during-migration case, many times over): the
guest maps 256 4 KiB pages IOVA-contiguous at 4 GiB, each to its own guest
page; the migration's first RAM pass is held busy by non-zero ballast under
a 32 MiB/s cap; in it, with the VM and the device running, the device
writes each of the first 128 pages and the guest unmaps it right after
(Linux-style: PTE zeroed, page-selective invalidation), one page at a time;
the device also writes the other 128, which stay mapped; then the cap is
lifted and the migration completes.  From hostsim's event log, over the
whole migration: clearing reads at the dirty syncs and before unmaps,
NO_CLEAR reads, unmaps, and the pages the destination lacks (the device's
pages compared on the destination: must be 0 either way).
"""

import harness as h
from e2e import guestdma as g
from e2e.steps.migration_window import migration_kw
from stats import ratios, spread

POOL_BASE, POOL_SIZE = 0x800000, 4 << 20
IOVA = 1 << 32
DATA_GPA = 0x4000000            # below guestdma's ballast at 96 MiB
MAPPED, UNMAPPED = 256, 128
BUILDS = ("fork", "no-clear")
GET_BITMAP = 1 << 2             # VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
FIGURES = ("clears", "clears_at_sync", "clears_at_unmap", "no_clear_reads", "unmaps",
           "syncs", "pages_lost")


def classify(ev, backend):
    """Counts of the reads and unmaps in the events of one migration.  A
    read before an unmap is one immediately followed (device DMA aside) by
    an unmap of the same range."""
    ev = [e for e in ev if e.get("call") != "dma"]
    out = dict.fromkeys(FIGURES[:5] + ("dirty_at_unmap",), 0)
    for i, e in enumerate(ev):
        call = e.get("call")
        if backend == "iommufd" and call == h.H.GET_DIRTY:
            nxt = ev[i + 1] if i + 1 < len(ev) else {}
            at_unmap = (nxt.get("call") == h.H.IOAS_UNMAP and nxt.get("iova") == e.get("iova")
                        and h.H.length(nxt) == h.H.length(e))
            if e.get("flags", 0) & h.H.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR:
                out["no_clear_reads"] += 1
            else:
                out["clears_at_unmap" if at_unmap else "clears_at_sync"] += 1
            if at_unmap:
                out["dirty_at_unmap"] += e.get("dirty_pages", 0)
        elif backend == "legacy" and call == h.H.TYPE1_DIRTY and \
                e.get("flags", 0) & GET_BITMAP:
            out["clears_at_sync"] += 1
        elif call in (h.H.IOAS_UNMAP, h.H.TYPE1_UNMAP) and e.get("ret") == 0:
            out["unmaps"] += 1
            if e.get("flags", 0) & h.H.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP and \
                    call == h.H.TYPE1_UNMAP:
                out["dirty_at_unmap"] += e.get("dirty_pages", 0)
    out["clears"] = out["clears_at_sync"] + out["clears_at_unmap"]
    return out


def one(binary, backend, mapped, unmapped):
    name = "clears/%s/%d-%d" % (backend, mapped, unmapped)
    with h.Run(name, binary, log=True, backend=backend, ram="512M",
               migration_kw=migration_kw(backend)) as run:
        src, dst = run.src, run.dst
        drv = h.guest_iommu(src, POOL_BASE, POOL_SIZE)
        maps = [g.Mapping(IOVA + i * g.PAGE, DATA_GPA + i * g.PAGE) for i in range(mapped)]
        h.map_bulk(drv, [(m.iova, m.gpa) for m in maps])
        g.fill_old(src, maps)
        off = h.log_size(src)
        state = {}

        def action():
            for m in maps[:unmapped]:
                state.setdefault("dma", []).extend(g.device_write(src, [m]))
                drv.unmap(h.DID, m.iova, m.size)
            state["dma"] += g.device_write(src, maps[unmapped:])
            state["status"] = src.qmp.command("query-migrate").get("status")

        r = g.migrate_with_window(src, dst, maps[:1], action, ballast_size=64 << 20,
                                  timeout=300)
        if not r.completed:
            return {"error": r.summary()}
        if state.get("status") != "active":
            return {"error": "the migration left its active phase during the unmaps "
                    "(%s)" % state.get("status")}
        failed = [reply for _, reply in state["dma"] if not reply.get("ok")]
        if failed:
            return {"error": "device writes failed: %s" % failed[:2]}
        ev, _ = h.events_after(src, off)
        out = classify(ev, backend)
        pages = g.check_pages(dst, maps)
        out.update(syncs=r.info.get("ram", {}).get("dirty-sync-count"),
                   pages_lost=len([s for s in pages.values() if s != "new"]))
        return out


def measure(bins, reps, backends, progress, mapped=MAPPED, unmapped=UNMAPPED):
    """Every repetition runs both builds one after the other; the counts
    vary only with the number of dirty syncs QEMU makes."""
    raw = {(be, b): [] for be in backends for b in BUILDS}
    for rep in range(reps):
        for be in backends:
            for b in BUILDS:
                res = h.guarded(one, bins[b], be, mapped, unmapped)
                raw[(be, b)].append(res)
                progress("item 5 rep %d/%d %s %s: %s" % (
                    rep + 1, reps, be, b, res.get("error") or
                    "%d clears (%d at syncs, %d at unmaps), %d NO_CLEAR reads, %d syncs" % (
                        res["clears"], res["clears_at_sync"], res["clears_at_unmap"],
                        res["no_clear_reads"], res["syncs"])))
    out = []
    for be in backends:
        for b in BUILDS:
            runs = raw[(be, b)]
            e = {"backend": be, "build": b, "mapped": mapped, "unmapped": unmapped,
                 "runs": runs, "errors": [r["error"] for r in runs if "error" in r]}
            for k in FIGURES:
                e[k] = spread([r.get(k) for r in runs])
            e["clears_vs_no_clear"] = spread(ratios(
                [r.get("clears") for r in runs],
                [r.get("clears") for r in raw[(be, "no-clear")]]))
            out.append(e)
    return {"points": out}
