"""Item 4: the guest tears down the device's whole address space (clears
its context entry and invalidates, as a detach does) while dirty tracking
is on (a calc-dirty-rate measurement, so the base tracks too).

QEMU 10.2.2 unmaps that address space in power-of-two chunks over the
whole address width; with dirty tracking on, the legacy backend must pass
a bitmap for each chunk, which QEMU refuses for the large ones ("UNMAP:
Size of bitmap too big", the kernel is never asked).  With the series
(intel_iommu: Fix unmap_bitmap failure with legacy VFIO backend) it walks
the recorded mappings instead.  Guest RAM 1 / 16 / 256 GiB (a RAM backend
with reserve=off), VT-d address width 39 or 48 bits; the guest has 514
live 4 KiB mappings (512 contiguous at 4 GiB, one at 64 KiB, one at
1 GiB).  From hostsim's event log: kernel calls, unmaps and bitmap bytes
asked of the kernel; from QEMU's stderr the unmaps it refused; the host
mappings left afterwards.  Goal: bitmap bytes within mapped size / 32768
(one bit per 4 KiB page).  A kernel call's bitmap is made of whole 64-bit
words, so the least any teardown can ask is one word per 64 pages of each
run of mappings contiguous in IOVA and guest address (here 64 + 8 + 8 =
80 bytes for three runs): reported too, as the word bound.
"""

import harness as h
from e2e.steps.migration_window import dirty_rate_kw
from e2e.steps import unmap_reads
from unmap_cost import bitmap_bytes
from lib import qemu

POOL_BASE, POOL_SIZE = 0x800000, 4 << 20
MAPS = ([(0x10000, 0x4000000), (0x40000000, 0x4001000)]
        + [((1 << 32) + i * 4096, 0x4100000 + i * 4096) for i in range(512)])
BUILDS = ("base", "fork")
CALC_MS = 8000


def runs(maps):
    """[(pages)] of the runs of maps contiguous in IOVA and guest address."""
    out = []
    prev = None
    for iova, gpa in sorted(maps):
        if prev and iova == prev[0] + 4096 and gpa == prev[1] + 4096:
            out[-1] += 1
        else:
            out.append(1)
        prev = (iova, gpa)
    return out


# one 8-byte word per started 64 pages of each run
WORD_BOUND = sum(8 * -(-pages // 64) for pages in runs(MAPS))


def one(binary, backend, ram, aw):
    name = "teardown/%s/%s/aw%d" % (backend, ram, aw)
    kw = dirty_rate_kw(backend)
    extra = ["-object", "memory-backend-ram,id=bench-ram,size=%s,reserve=off" % ram,
             "-machine", "memory-backend=bench-ram"]
    with h.Run(name, binary, log=True, backend=backend, ram=ram, migration_kw=kw,
               hostsim_cfg={"iommu.aw_bits": aw}, pair=False, extra_args=extra,
               iommu_props="aw-bits=%d" % aw) as run:
        v = run.src
        drv = h.guest_iommu(v, POOL_BASE, POOL_SIZE, levels=3 if aw == 39 else 4)
        h.map_bulk(drv, MAPS)
        w = unmap_reads.dirty_rate_window(
            v, backend, lambda: drv.detach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, h.DID),
            calc_ms=CALC_MS, timeout=120)
        if w.error or w.ordering_lost:
            return {"error": w.error or w.ordering_lost}
        ev = [e for e in unmap_reads.window_events(v, w.start_seq, w.end_seq)
              if e.get("call") != "dma"]
        if unmap_reads.periodic_reads(ev):
            return {"error": "a periodic dirty sync ran during the teardown"}
        mapped = len(MAPS) * 4096
        b = sum(bitmap_bytes(e) for e in ev)
        return {"calls": len(ev), "unmaps": len(h.H.unmaps_of(ev)),
                "bitmap_bytes": b, "refused": len(unmap_reads.e2big(v)),
                "left_mapped": len(unmap_reads.host_mappings(v)),
                "mapped_bytes": mapped, "bound_bytes": mapped // 32768,
                "within_bound": b <= mapped // 32768,
                "word_bound_bytes": WORD_BOUND, "within_word_bound": b <= WORD_BOUND}


def measure(bins, backends, rams, aws, progress):
    """One run per point: the counts do not vary."""
    out = []
    for be in backends:
        for ram in rams:
            for aw in aws:
                for b in BUILDS:
                    r = h.guarded(one, bins[b], be, ram, aw)
                    progress("item 4 %s %s aw %d %s: %s" % (be, ram, aw, b, r.get("error") or
                             "%d calls, %d bitmap bytes, %d refused" % (
                                 r["calls"], r["bitmap_bytes"], r["refused"])))
                    out.append(dict(r, backend=be, ram=ram, aw=aw, build=b,
                                    errors=[r["error"]] if "error" in r else []))
    return {"points": out}
