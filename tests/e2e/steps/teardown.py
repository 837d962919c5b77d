"""The guest tears its whole address space down (context entry cleared)
while the device has dirty pages: the steps of the teardown cases, also
run with guest RAM above 4 GiB (scenarios/ram_above_4g.py)."""

from e2e import guestdma as g
from e2e.steps import unmap_reads as R
from e2e.steps.migration_window import MigrationWindow, migration_kw
from lib import qemu

DID = 1
MAPS = [g.Mapping(0x10000, 0x200000),
        g.Mapping(0x40000000, 0x2345000),
        g.Mapping(0xffffe000, 0x4567000),
        g.Mapping(0x500000000000, 0x3456000)]


def teardown(drv):
    drv.detach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, DID)


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


def harvest_label(ctx, vm, backend, window, maps, runs=None):
    """per-mapping / e2big / <judge label>, and whether anything stayed
    mapped in the host IOMMU.  With runs ([(iova, size)], the runs of maps
    contiguous in IOVA and guest address): "per-run" when the host got
    exactly one harvesting unmap per run, "per-mapping" when one per
    mapping."""
    big = R.e2big(vm)
    for l in big[:3]:
        ctx.note("QEMU: " + l.strip())
    left = R.host_mappings(vm)
    if left:
        ctx.note("still mapped in the host IOMMU after the teardown: %s"
                 % ["0x%x+0x%x" % m for m in left])
    if big:
        return "e2big"
    if runs and R.judge(ctx, backend, window, pages=exact_ranges(maps), exact=runs) == "read-ok":
        return "left-mapped" if left else "per-run"
    read = R.judge(ctx, backend, window, pages=exact_ranges(maps), exact=exact_ranges(maps))
    if read == "read-ok" and left:
        return "left-mapped"
    return "per-mapping" if read == "read-ok" else read


def run_migration(ctx, backend, maps=MAPS, vm_kw=None, ballast_gpa=g.BALLAST_GPA, runs=None):
    """Migration with the teardown in the window.  maps, vm_kw and
    ballast_gpa let scenarios/ram_above_4g.py use other guest layouts;
    runs: see harvest_label()."""
    kw = migration_kw(backend)
    kw.update(vm_kw or {})
    mw = MigrationWindow(ctx, **kw)
    drv = ctx.guest_iommu(mw.src, DID)
    g.map_all(drv, DID, maps)
    g.fill_old(mw.src, maps)
    stop = mw.run(maps, lambda: teardown(drv), ballast_gpa=ballast_gpa)
    if stop:
        return stop
    note_window(ctx, mw.src, mw.window)
    harvest = harvest_label(ctx, mw.src, backend, mw.window, maps, runs)
    return mw.outcome(harvest, maps, ok="per-run" if runs else "per-mapping")
