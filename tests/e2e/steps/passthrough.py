"""The device leaves a pass-through domain for a blocking one while it has
dirty pages: the steps of the passthrough-to-blocked cases, also run with
guest RAM above 4 GiB (scenarios/ram_above_4g.py)."""

from e2e import guestdma as g
from e2e.steps import unmap_reads as R
from e2e.steps.migration_window import MigrationWindow, migration_kw
from lib import viommu

DID = 1
TARGET = 0x200000


def bring_up_passthrough(v):
    return viommu.bring_up(v, "legacy", DID, passthrough=True)


def block(drv):
    viommu.block(drv, DID)


def note_window(ctx, vm, window):
    ctx.note("hostsim events while the device left pass-through (%s):" % vm.name)
    for line in R.H.fmt_all(window):
        ctx.note("  " + line)
    # QEMU's side: the sections deleted and where dirty bits were marked
    # (gpa= of vfio_container_query_dirty_bitmap; legacy marks inside the
    # unmap without that trace).
    for line in vm.trace_lines("vfio_listener_region_del", "vfio_container_query_dirty_bitmap",
                               "vfio_iotlb_ram_addr_not_ram")[-12:]:
        ctx.note("  trace: " + line)


def run_passthrough_to_blocked(ctx, backend, target=TARGET, vm_kw=None,
                               ballast_gpa=g.BALLAST_GPA):
    """Migration with the move during the window; returns the label."""
    kw = migration_kw(backend)
    kw.update(vm_kw or {})
    mw = MigrationWindow(ctx, **kw)
    drv = bring_up_passthrough(mw.src)
    m = g.Mapping(target, target)          # identity: IOVA = GPA
    g.fill_old(mw.src, [m])
    stop = mw.run([m], lambda: block(drv), ballast_gpa=ballast_gpa)
    if stop:
        return stop
    note_window(ctx, mw.src, mw.window)
    read = R.judge(ctx, backend, mw.window, pages=[(target, g.PAGE)], focus=True)
    return mw.outcome(read, [m])
