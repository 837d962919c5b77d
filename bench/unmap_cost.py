"""Item 3: what one guest unmap costs the host, dirty tracking off and on.

The guest maps 4 KiB pages in one domain and then takes them away in one
of these ways (Linux-style: the page-table entries first, then one
page-selective IOTLB invalidation):

  4K          one 4 KiB page
  2M-range    512 contiguous 4 KiB pages as one range (PTEs zeroed, one
              invalidation with address mask 9)
  2M-pde      the same 512 pages by zeroing the PDE above them
  1G-range, 1G-pdpe
              262,144 pages (1 GiB) as one range, or by zeroing the PDPE
              (not in the default list: slow to set up on hostsim's log)

Tracking off: no migration, no dirty-rate measurement.  Tracking on: the
unmap runs inside a calc-dirty-rate measurement (dirty-bitmap mode, the
e2e harness's window: no periodic sync inside it), so the base, which
refuses migration with a vIOMMU, tracks too.  From hostsim's event log,
per guest unmap: kernel calls, dirty-bitmap reads, and bitmap bytes asked
for (IOMMU_HWPT_GET_DIRTY_BITMAP: one bit per page of the range, in u64
words; type1: bitmap_size of unmaps and dirty-page reads); the time of the
guest's invalidation (QEMU handles it inside that register write), as data.
With tracking off the fork must make exactly the base's calls.
"""

import struct
import time

import harness as h
from e2e.steps.migration_window import dirty_rate_kw
from e2e.steps import unmap_reads
from stats import spread

POOL_BASE, POOL_SIZE = 0x800000, 56 << 20
DATA_GPA, DATA_PAGES = 0x4000000, 1 << 16
IOVA = 1 << 32
KINDS = {"4K": (1, None), "2M-range": (512, None), "2M-pde": (512, 2),
         "1G-range": (1 << 18, None), "1G-pdpe": (1 << 18, 3)}
DEFAULT_KINDS = ("4K", "2M-range", "2M-pde")
BUILDS = ("base", "nine", "fork")
# calc-dirty-rate's measurement time: it must outlast the unmap (the
# window waits for its end); the 1 GiB kinds take long on hostsim's log.
CALC_MS = {"small": 3000, "large": 30000}


def guest_unmap(drv, kind):
    """Take the kind's pages away; returns the seconds the invalidation took."""
    pages, level = KINDS[kind]
    size = pages * 4096
    dom = drv.domain(h.DID)
    if level:
        t0 = time.monotonic()
        drv.zero_upper_entry(h.DID, IOVA, level=level)
        return time.monotonic() - t0
    tables = sorted({dom.pte_addr(IOVA + o, 1) & ~0xFFF for o in range(0, size, 4096)})
    for t in tables:
        first = min(pages, 512)
        words = list(struct.unpack("<512Q", drv.qt.read(t, 4096)))
        for i in range(first):
            words[i] = 0
        drv.qt.write(t, struct.pack("<512Q", *words))
    t0 = time.monotonic()
    drv.invalidate_range(h.DID, IOVA, size, leaf=True)
    return time.monotonic() - t0


def bitmap_bytes(ev):
    if ev.get("call") == h.H.GET_DIRTY and ev.get("page_size"):
        bits = -(-ev.get("length", 0) // ev["page_size"])
        return -(-bits // 64) * 8
    return ev.get("bitmap_size", 0) or 0


def one(binary, backend, kind, tracking):
    name = "unmap/%s/%s/%s" % (backend, kind, "on" if tracking else "off")
    kw = dirty_rate_kw(backend)
    cfg = dict(kw["hostsim_cfg"], **({"type1.dma_avail": 1 << 20} if backend == "legacy" else {}))
    with h.Run(name, binary, log=True, backend=backend, ram="512M", hostsim_cfg=cfg,
               migration_kw=kw, pair=False) as run:
        v = run.src
        drv = h.guest_iommu(v, POOL_BASE, POOL_SIZE)
        pages = KINDS[kind][0]
        h.map_bulk(drv, [(IOVA + i * 4096, DATA_GPA + (i % DATA_PAGES) * 4096)
                         for i in range(pages)])
        took = {}
        if tracking:
            w = unmap_reads.dirty_rate_window(
                v, backend, lambda: took.update(s=guest_unmap(drv, kind)),
                calc_ms=CALC_MS["small" if pages <= 512 else "large"], timeout=120)
            if w.error or w.ordering_lost:
                return {"error": w.error or w.ordering_lost}
            ev = unmap_reads.window_events(v, w.start_seq, w.end_seq)
            if unmap_reads.periodic_reads(ev):
                return {"error": "a periodic dirty sync ran during the unmap"}
        else:
            off = h.log_size(v)
            took["s"] = guest_unmap(drv, kind)
            ev, _ = h.events_after(v, off)
        calls = [e for e in ev if e.get("call") not in ("dma",)]
        return {"calls": len(calls),
                "by_call": {c: len([e for e in calls if e["call"] == c])
                            for c in sorted({e["call"] for e in calls})},
                "reads": len([e for e in calls if e["call"] in h.DIRTY_QUERIES]),
                "bitmap_bytes": sum(bitmap_bytes(e) for e in calls),
                "failed": len([e for e in calls if e.get("ret", 0) < 0]),
                "unmap_ms": took["s"] * 1e3}


def measure(bins, reps, backends, kinds, progress):
    """Counts come from one run per point (they do not vary); the time of
    the guest's invalidation is repeated."""
    points = [(be, k, b) for be in backends for k in kinds for b in BUILDS]
    raw = {(p, t): [] for p in points for t in (False, True)}
    for rep in range(reps):
        for p in points:
            for t in (False, True):
                res = h.guarded(one, bins[p[2]], p[0], p[1], t)
                raw[(p, t)].append(res)
                progress("item 3 rep %d/%d %s %s %s tracking %s: %s" % (
                    rep + 1, reps, p[0], p[1], p[2], "on" if t else "off",
                    res.get("error") or "%d calls, %d bitmap bytes" % (
                        res["calls"], res["bitmap_bytes"])))
    out = []
    for (be, k, b) in points:
        e = {"backend": be, "kind": k, "build": b, "runs": {}, "errors": []}
        for t, side in ((False, "off"), (True, "on")):
            runs = raw[((be, k, b), t)]
            e["runs"][side] = runs
            ok = [r for r in runs if "error" not in r]
            e["errors"] += [r["error"] for r in runs if "error" in r]
            first = ok[0] if ok else {}
            e[side] = {"calls": first.get("calls"), "reads": first.get("reads"),
                       "bitmap_bytes": first.get("bitmap_bytes"),
                       "by_call": first.get("by_call"), "failed": first.get("failed"),
                       "counts_vary": len({(r["calls"], r["bitmap_bytes"]) for r in ok}) > 1,
                       "unmap_ms": spread([r["unmap_ms"] for r in ok])}
        out.append(e)
    base_off = {(e["backend"], e["kind"]): e["off"]["by_call"] for e in out if e["build"] == "base"}
    for e in out:
        e["off_same_as_base"] = (e["off"]["by_call"] is not None
                                 and e["off"]["by_call"] == base_off.get((e["backend"], e["kind"])))
    return {"points": out}
