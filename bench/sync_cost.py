"""Item 2: the cost of a migration dirty sync against the number of live
guest IOMMU mappings.

The guest (the e2e VT-d driver, bulk mode) maps N pages in one domain,
at IOVAs from 4 GiB up, either contiguous or scattered (one page every 16
pages' size: 64 KiB for 4 KiB pages, 32 MiB for 2 MiB ones, so no two
mappings touch).  4 KiB mappings each target their own guest page (65,536
of them, 64..320 MiB, wrapping above that); 2 MiB mappings (VT-d large
pages: level-2 leaf PDEs with the PS bit) target the 128 2 MiB guest pages
of the same 256 MiB, repeatedly: guest RAM cannot hold 10,000 distinct
2 MiB pages, and what a sync costs depends on the mappings, not on where
they point.  Then the VM, idle, is migrated with QEMU's default
parameters.  Every sync of
that migration asks the host for the dirty bits of the IOMMU sections:

  * kernel calls per sync: dirty-bitmap queries (IOMMU_HWPT_GET_DIRTY_BITMAP
    or VFIO_IOMMU_DIRTY_PAGES) in hostsim's event log during the migration,
    divided by QEMU's dirty-sync-count (one counting run per point, log on:
    the count does not vary);
  * time per sync and time of the final sync (the one inside the downtime):
    between QEMU's migration_bitmap_sync_start and _end trace events, in
    runs with hostsim's log off, repeated;
  * downtime as query-migrate reports it;
  * QEMU's own time per sync: the time of all syncs of the migration
    less the time the model spent answering their queries (below), over
    the syncs, and its ratio N mappings / 1 mapping.

Builds: "nine" (the queue up to the ninth commit of the series),
"unmerged" (the queue before "vfio/listener: Record runs of contiguous
vIOMMU mappings as one entry", when its per-commit binary is there) and
"fork" (the whole queue), side by side in every repetition.  Ratios:
fork / nine, and N mappings / 1 mapping (the goal for the final sync: within 2x;
judged on QEMU's own time per sync, as the model's query time stands for
a kernel's, which this benchmark does not price; the final sync is one
of the syncs, asking the same queries).

hostsim's own cost is reported apart: its per-call counters (kept with the
log off, control socket "counters") give, in every run, the dirty-bitmap
queries the model answered during the migration and the time spent in the
model for them, per sync.  The sync times include that model time; they
compare builds and sizes, they do not price a real kernel's ioctl.
"""

import time

import harness as h
from stats import ratios, spread

IOVA_BASE = 1 << 32
SCATTER_STRIDE = 0x10000
POOL_BASE, POOL_SIZE = 0x800000, 56 << 20      # page tables: 8..64 MiB
DATA_GPA, DATA_SIZE = 0x4000000, 256 << 20     # targets: 64..320 MiB, wrapping
RAM = "512M"
LAYOUTS = ("contiguous", "scattered")
# page size name: (bytes, VT-d level of the leaf entry)
PAGES = {"4K": (4096, 1), "2M": (2 << 20, 2)}
SCATTER = 16            # scattered: one mapping every 16 pages' size
COUNT_DOWNTIME_LIMIT_MS = 60000


def pairs(n, layout, page="4K"):
    size = PAGES[page][0]
    stride = size if layout == "contiguous" else size * SCATTER
    targets = DATA_SIZE // size
    return [(IOVA_BASE + i * stride, DATA_GPA + (i % targets) * size) for i in range(n)]


def one(binary, backend, page, n, layout, count):
    """One migration of a VM with n live mappings of that page size.
    count: hostsim log on, return the dirty queries per sync; else time the
    syncs."""
    name = "sync/%s/%s/%d/%s/%s" % (backend, page, n, layout, "count" if count else "time")
    cfg = {"type1.dma_avail": 1 << 20} if backend == "legacy" else {}
    with h.Run(name, binary, log=count, backend=backend, ram=RAM, hostsim_cfg=cfg) as run:
        drv = h.guest_iommu(run.src, POOL_BASE, POOL_SIZE)
        t0 = time.monotonic()
        h.map_bulk(drv, pairs(n, layout, page), level=PAGES[page][1])
        map_s = time.monotonic() - t0
        mapped = run.src.ctl.state().get("mappings_count")
        off = h.log_size(run.src)
        if mapped != n:
            return {"error": "the host holds %s mappings, the guest made %d" % (mapped, n)}
        run.src.ctl.clear_counters()
        # With the log on, a sync of 100,000 queries takes about a second:
        # the fork (which counts the final sync in the downtime) would not
        # switch over under the default 300 ms limit.  The counting run
        # only counts, so it allows that; the timed runs keep the default.
        r = h.migrate(run, downtime_limit=COUNT_DOWNTIME_LIMIT_MS if count else None)
        model = h.model_cost(run.src.ctl.counters(), h.DIRTY_QUERIES)
        if not r.completed:
            return {"error": r.summary()}
        ram_info = r.info.get("ram", {})
        syncs = ram_info.get("dirty-sync-count")
        out = {"syncs": syncs, "downtime": r.info.get("downtime"),
               "total-time": r.info.get("total-time"), "map_s": map_s,
               "host_mappings": mapped, "model_queries": model["calls"],
               "model_ms_per_sync": model["ns"] / syncs / 1e6 if syncs else None}
        if count:
            ev, _ = h.events_after(run.src, off)
            queries = len([e for e in ev if e.get("call") in h.DIRTY_QUERIES])
            out.update(queries=queries, calls_per_sync=queries / syncs if syncs else None)
        t = h.sync_times(run.src)
        out.update(sync_s=t, final_sync_s=t[-1] if t else None,
                   mean_sync_s=sum(t) / len(t) if t else None)
        if t:
            # QEMU's own time per sync: all syncs' time less all the time
            # the model spent answering their queries (counted over the
            # same syncs: cleared before the migration, read after it)
            out["qemu_ms_per_sync"] = (sum(t) * 1e3 - model["ns"] / 1e6) / len(t)
        return out


def compared_builds(bins):
    """The builds item 2 compares: the nine commits, the queue before its
    record kept runs (when built), the fork."""
    return ("nine", "unmerged", "fork") if bins.get("unmerged") else ("nine", "fork")


def measure(bins, reps, backends, counts, progress, layouts=LAYOUTS, pages=("4K",),
            times_from_count=False):
    """times_from_count (the smoke): no timed runs, the times come from the
    counting run (hostsim's log on), which checks the output, not the cost."""
    points = [(be, pg, n, lay) for be in backends for pg in pages for n in counts
              for lay in layouts]
    builds = compared_builds(bins)
    timed = {(p, b): [] for p in points for b in builds}
    counted = {}
    for p in points:
        for b in builds:
            counted[(p, b)] = h.guarded(one, bins[b], *p, count=True)
            c = counted[(p, b)]
            progress("item 2 count %s %s %d %s %s: %s" % (p + (b, c.get("error") or (
                "%s queries per sync" % c["calls_per_sync"]))))
    for rep in range(0 if times_from_count else reps):
        for p in points:
            for b in builds:
                res = h.guarded(one, bins[b], *p, count=False)
                timed[(p, b)].append(res)
                progress("item 2 rep %d/%d %s %s %d %s %s: %s" % (
                    rep + 1, reps, p[0], p[1], p[2], p[3], b, res.get("error") or
                    "final sync %.1f ms, downtime %s ms" % (
                        (res["final_sync_s"] or 0) * 1e3, res["downtime"])))
    if times_from_count:
        timed = {k: [c] for k, c in counted.items()}
    out = []
    for (be, pg, n, lay) in points:
        for b in builds:
            runs = timed[((be, pg, n, lay), b)]
            one_map = timed[((be, pg, counts[0], lay), b)]
            other = timed[((be, pg, n, lay), "nine")]
            c = counted[((be, pg, n, lay), b)]
            fin = [r.get("final_sync_s") for r in runs]
            entry = {
                "backend": be, "page": pg, "mappings": n, "layout": lay, "build": b,
                "calls_per_sync": c.get("calls_per_sync"), "count_run": c,
                "runs": runs,
                "errors": [r["error"] for r in runs + ([] if c in runs else [c]) if "error" in r],
                "mean_sync_ms": spread([r.get("mean_sync_s") and r["mean_sync_s"] * 1e3
                                        for r in runs]),
                "final_sync_ms": spread([x and x * 1e3 for x in fin]),
                "downtime_ms": spread([r.get("downtime") for r in runs]),
                "model_ms_per_sync": spread([r.get("model_ms_per_sync") for r in runs]),
                "final_vs_%d" % counts[0]: spread(ratios(
                    fin, [r.get("final_sync_s") for r in one_map])),
                "final_vs_nine": spread(ratios(fin, [r.get("final_sync_s") for r in other])),
                "qemu_ms_per_sync": spread([r.get("qemu_ms_per_sync") for r in runs]),
                "qemu_vs_%d" % counts[0]: spread(ratios(
                    [r.get("qemu_ms_per_sync") for r in runs],
                    [r.get("qemu_ms_per_sync") for r in one_map])),
            }
            out.append(entry)
    return {"base_count": counts[0], "points": out}
