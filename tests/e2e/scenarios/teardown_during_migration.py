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

Three single-page mappings (low, 1 GiB and high IOVA) to three unrelated
guest pages.  Once their pages were sent, with the VM and the device
running, the device writes all three and the guest clears the context
entry.

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
"""

import guestdma as g
import vm as vmmod
from scenario import Case, reason_key
from scenarios import unmap_reads as R

DID = 1
MAPS = [g.Mapping(0x10000, 0x200000),
        g.Mapping(0x40000000, 0x2345000),
        g.Mapping(0x500000000000, 0x3456000)]


def migration_kw(backend):
    """A device that migrates with IOMMU dirty tracking on the fork."""
    if backend == "iommufd":
        return dict(backend="iommufd", hostsim_cfg={"dma_logging": "off", "iommu_dirty": "on"})
    return dict(backend="legacy", enable_migration="on",
                hostsim_cfg={"dma_logging": "off", "type1.migration_cap": "on",
                             "type1.dirty": "precise"})


def dirty_rate_kw(backend):
    """The same device, but realizable on the base too (no
    enable-migration=on): dirty tracking comes from calc-dirty-rate."""
    kw = migration_kw(backend)
    kw.pop("enable_migration", None)
    return kw


def teardown(drv):
    drv.detach(vmmod.VFIO_BUS, vmmod.VFIO_DEVFN, DID)


def exact_ranges(maps):
    return [(m.iova, m.size) for m in maps]


def note_window(ctx, vm, window):
    ctx.note("hostsim events during the teardown (%s):" % vm.name)
    for line in R.H.fmt_all(window):
        ctx.note("  " + line)
    # QEMU's side, from the first vIOMMU UNMAP on: what was sent to VFIO and
    # where dirty bits were marked (gpa=).
    for line in vm.trace_after("iommu UNMAP @ ", 12):
        ctx.note("  trace: " + line)
    for line in vm.trace_lines("vtd_as_unmap_whole")[-4:]:
        ctx.note("  trace: " + line)


def harvest_label(ctx, vm, backend, window, maps):
    """per-mapping / e2big / <judge label>, and whether anything stayed
    mapped in the host IOMMU."""
    big = R.e2big(vm)
    for l in big[:3]:
        ctx.note("QEMU: " + l.strip())
    left = R.host_mappings(vm)
    if left:
        ctx.note("still mapped in the host IOMMU after the teardown: %s"
                 % ["0x%x+0x%x" % m for m in left])
    if big:
        return "e2big"
    read = R.judge(ctx, backend, window, pages=exact_ranges(maps), exact=exact_ranges(maps))
    if read == "read-ok" and left:
        return "left-mapped"
    return "per-mapping" if read == "read-ok" else read


def run_migration(ctx, backend, maps=MAPS, vm_kw=None, ballast_gpa=g.BALLAST_GPA):
    """Migration with the teardown in the window.  maps, vm_kw and
    ballast_gpa let scenarios/ram_above_4g.py use other guest layouts."""
    kw = migration_kw(backend)
    kw.update(vm_kw or {})
    src, dst = ctx.start_pair(**kw)
    reasons = src.blocked_reasons()
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, maps)
    g.fill_old(src, maps)
    state = {}

    def action():
        state["seq"] = src.event_seq()
        state["dma"] = g.device_write(src, maps)
        teardown(drv)
        state["end"] = src.event_seq()

    r = g.migrate_with_window(src, dst, maps, action, ballast_gpa=ballast_gpa)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if r.ordering_lost:
        return "ordering-lost"
    for m, reply in state.get("dma", []):
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return "dma-failed"
    window = R.window_events(src, state["seq"], state["end"])
    note_window(ctx, src, window)
    harvest = harvest_label(ctx, src, backend, window, maps)
    if not r.completed:
        return harvest + "+migrate-failed"
    pages = g.check_pages(dst, maps)
    for gpa, st in sorted(pages.items()):
        ctx.note("destination gpa 0x%x: %s" % (gpa, st))
    ctx.measures["pages_lost"] = sum(1 for st in pages.values() if st != "new")
    data = "intact" if set(pages.values()) == {"new"} else "stale"
    if harvest == "per-mapping" and data == "intact":
        return "intact"
    return harvest + "+" + data


def run_dirty_rate(ctx, backend):
    v = ctx.vm("src", **dirty_rate_kw(backend)).start()
    drv = ctx.guest_iommu(v, DID)
    g.map_all(drv, DID, MAPS)
    g.fill_old(v, MAPS)
    state = {}

    def action():
        state["dma"] = g.device_write(v, MAPS)
        teardown(drv)

    w = R.dirty_rate_window(v, backend, action)
    if w.error:
        ctx.note("dirty-rate: " + w.error)
        return "no-tracking"
    window = R.window_events(v, w.start_seq, w.end_seq)
    note_window(ctx, v, window)
    periodic = R.periodic_reads(window)
    if w.ordering_lost or periodic:
        ctx.note("ordering lost: %s %s" % (w.ordering_lost or "", [R.H.fmt(e) for e in periodic]))
        return "ordering-lost"
    for m, reply in state.get("dma", []):
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return "dma-failed"
    return harvest_label(ctx, v, backend, window, MAPS)


def cases():
    out = []
    for backend in ("legacy", "iommufd"):
        base = "realize-failed[vIOMMU]" if backend == "legacy" else "blocked[vIOMMU]"
        # upto-10: the nine alone (no follow-up) already handle this.
        out.append(Case("e2e/teardown-during-migration/%s" % backend,
                        {"fork": "intact", "base": base, "upto-10": "intact"},
                        lambda ctx, b=backend: run_migration(ctx, b), __doc__))
        expect = {"fork": "per-mapping",
                  "base": "e2big" if backend == "legacy" else "no-read"}
        if backend == "legacy":
            # The commit before / with "intel_iommu: Fix unmap_bitmap
            # failure with legacy VFIO backend" (queue position 07).
            expect.update({"upto-06": "e2big", "upto-07": "per-mapping"})
        out.append(Case("e2e/teardown-dirty-rate/%s" % backend, expect,
                        lambda ctx, b=backend: run_dirty_rate(ctx, b), __doc__))
    return out
