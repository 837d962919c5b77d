"""The guest tears down the device's whole address space during migration:
it clears the device's context entry (not present) and invalidates, as a
guest does when it detaches the device from its domain.  intel_iommu then
unmaps everything the device's notifier covers.

In QEMU 10.2.2 that unmap is sent as power-of-two chunks over the whole
address width with translated_addr 0.  With dirty tracking on, the legacy
backend must pass a dirty bitmap for each chunk to VFIO_IOMMU_UNMAP_DMA;
a chunk of 2^47 bytes needs a 4 GiB bitmap, so QEMU refuses it ("UNMAP:
Size of bitmap too big", -E2BIG): nothing is unmapped, the device can
still DMA to memory the guest took away, and a migration fails.  With the
series, the teardown walks the recorded mappings: one unmap per mapping,
with its real target, each harvesting its dirty bits first.

Four single-page mappings (low, 1 GiB, just below 4 GiB where Linux
allocates its first IOVAs, and high IOVA) to four unrelated guest pages.
Once their pages were sent, with the VM and the device running, the
device writes all four and the guest clears the context entry.

The last two are above the interrupt window (0xfee00000-0xfeefffff), so
VFIO reaches them through its second notifier on the VT-d address space,
[0xfef00000, UINT64_MAX - 1].  Upstream's version of "intel_iommu: Fix
unmap_bitmap failure with legacy VFIO backend" (cac33cb5) looks its
recorded mappings up as {.iova = n->start, .size = n->end}, before
clamping: for that notifier iova + size wraps and nothing is found, so
they are neither unmapped nor harvested.  Ours looks up the clamped
range.  Build before-upstream-teardown-lookup (tests/e2e/build-before.sh:
the nine with before/upstream-teardown-lookup.patch, upstream's lookup)
shows it.

e2e/teardown-during-migration/<backend>
  fork: one harvesting unmap per mapping (legacy: VFIO_IOMMU_UNMAP_DMA with
        GET_DIRTY_BITMAP; iommufd: one NO_CLEAR read then IOAS_UNMAP), no
        E2BIG, nothing left mapped, migration completes and the destination
        has the device's data: "intact".
  base: migration with a vIOMMU is refused (legacy enable-migration=on:
        realize fails), so the base cannot get that far.
e2e/teardown-dirty-rate/<backend>
  The same teardown while calc-dirty-rate (dirty-bitmap mode) has dirty
  tracking on, which the base allows: this is where the base shows the
  failure the series fixes.
  fork: "per-mapping" (as above, no migration).
  base: legacy "e2big" (QEMU refuses the chunk bitmaps, the mappings stay
        in the host IOMMU); iommufd "no-read" (chunks unmapped without
        reading any dirty bit).
  legacy also on the queue just before (upto-06, "e2big") and with
  (upto-07, "per-mapping") the intel_iommu fix.
before-upstream-teardown-lookup: the two mappings above 0xfef00000 stay
  mapped in the host IOMMU, no dirty bit of theirs is read:
  "not-unmapped" (+ "stale" on the destination in a migration).

e2e/teardown-runs-dirty-rate/<backend>, e2e/teardown-runs-during-migration/<backend>
  The same two teardowns with mappings a guest driver makes for a
  buffer: 16 single-page MAPs of contiguous IOVAs to contiguous guest
  pages, and one isolated page.  Each unmap passes a bitmap of whole
  64-bit words, so one unmap per 4 KiB page asks the kernel for 64 times
  the bits it needs.
  fork: one harvesting unmap per run, two in all: "per-run" (migration:
        "intact").
  the queue before "intel_iommu: Unmap runs of contiguous mappings at a
        teardown under tracking": one per mapping, 17: "per-mapping"
        (migration: "per-mapping+intact").
  base: as above.
"""

from lib import backends
from lib import layout
from e2e import guestdma as g
from e2e.scenario import Case
from e2e.steps.migration_window import dirty_rate_run, dirty_rate_kw
from e2e.steps.teardown import DID, MAPS, harvest_label, note_window, run_migration, teardown

# The nine with upstream's iova tree lookup of the teardown (see above).
UPSTREAM_LOOKUP = "before-upstream-teardown-lookup"
RUNS_FIX = layout.build_before("Unmap-runs-of-contiguous-mappings-at")
# A buffer mapped page by page, and an isolated page.
RUN_MAPS = ([g.Mapping(0x100000 + i * g.PAGE, 0x1000000 + i * g.PAGE) for i in range(16)]
            + [MAPS[0]])
RUNS = [(0x100000, 16 * g.PAGE), (MAPS[0].iova, MAPS[0].size)]


def run_dirty_rate(ctx, backend, maps=MAPS, runs=None):
    v = ctx.vm("src", **dirty_rate_kw(backend)).start()
    drv = ctx.guest_iommu(v, DID)
    g.map_all(drv, DID, maps)
    g.fill_old(v, maps)
    window, stop = dirty_rate_run(ctx, v, backend, maps, lambda: teardown(drv), note_window)
    if stop:
        return stop
    return harvest_label(ctx, v, backend, window, maps, runs)


def cases():
    out = []
    for backend in ("legacy", "iommufd"):
        base = backends.get(backend).base_blocker
        # before-followups: the nine alone (no follow-up) already handle this.
        out.append(Case("e2e/teardown-during-migration/%s" % backend,
                        {"fork": "intact", "base": base, "before-followups": "intact",
                         UPSTREAM_LOOKUP: "not-unmapped+stale"},
                        lambda ctx, b=backend: run_migration(ctx, b), __doc__))
        expect = {"fork": "per-mapping",
                  "base": "e2big" if backend == "legacy" else "no-read",
                  UPSTREAM_LOOKUP: "not-unmapped"}
        if backend == "legacy":
            # The commit before / with "intel_iommu: Fix unmap_bitmap
            # failure with legacy VFIO backend" (queue position 07).
            expect.update({"upto-06": "e2big", "upto-07": "per-mapping"})
        out.append(Case("e2e/teardown-dirty-rate/%s" % backend, expect,
                        lambda ctx, b=backend: run_dirty_rate(ctx, b), __doc__))
        out.append(Case("e2e/teardown-runs-dirty-rate/%s" % backend,
                        {"fork": "per-run", "base": expect["base"], RUNS_FIX: "per-mapping"},
                        lambda ctx, b=backend: run_dirty_rate(ctx, b, RUN_MAPS, RUNS), __doc__))
        out.append(Case("e2e/teardown-runs-during-migration/%s" % backend,
                        {"fork": "intact", "base": base, RUNS_FIX: "per-mapping+intact"},
                        lambda ctx, b=backend: run_migration(ctx, b, RUN_MAPS, runs=RUNS),
                        __doc__))
    return out
