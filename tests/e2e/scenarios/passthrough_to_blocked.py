"""The guest moves the device from a pass-through domain to blocked during
migration: its context entry is first in pass-through mode (the device's
address space is guest memory itself, so VFIO maps every RAM section at
IOVA = GPA), then cleared (not present) and invalidated.

The address space then stops aliasing guest memory: the memory core
deletes every RAM section from it and VFIO unmaps each one in
vfio_listener_region_del().  In QEMU 10.2.2 that unmap passes no IOTLB
entry, so neither backend reads the dirty bits first, and whatever the
device wrote since the last dirty sync is lost.  With the series
("vfio/listener: Add missing dirty tracking in region_del") the unmap of a
RAM section harvests its dirty bits while dirty tracking is on.

Once the target page was sent (VM and device running), the device writes
it through its identity mapping and the guest clears the context entry.

e2e/passthrough-to-blocked/<backend>
  fork: the host unmap covering the page harvests it (iommufd: NO_CLEAR
        read of exactly the section, then its IOAS_UNMAP; legacy:
        VFIO_IOMMU_UNMAP_DMA with GET_DIRTY_BITMAP), the migration
        completes and the destination has the device's data: "intact".
  base: migration with a vIOMMU refused (legacy enable-migration=on:
        realize fails).
e2e/passthrough-to-blocked-dirty-rate/<backend>
  The same move while calc-dirty-rate has dirty tracking on, which the
  base allows.  fork: "read-ok"; base: "no-read" (the RAM sections are
  unmapped without reading their dirty bits: the data the page holds on a
  destination would be stale).  Also on the queue just before (upto-07,
  "no-read") and with (upto-08, "read-ok") the region_del commit.

e2e/dma-to-passthrough-via-blocked/<backend>
  The opposite direction, as Linux does it (intel_iommu_attach_device()
  blocks translation before attaching the new domain): the device is in a
  DMA domain with IOVA 0x10000 -> GPA 0x200000; once the page was sent the
  device writes it, the guest clears the context entry (blocked) and then
  puts it in pass-through mode.  The series relies on that blocking step
  (code comment in vfio_listener_region_del()): the teardown harvests each
  recorded mapping.  fork: "intact"; base: migration refused.

e2e/dma-to-passthrough-direct/<backend>
  The same move without the blocking step: the guest rewrites the present
  context entry from multi-level translation to pass-through and
  invalidates it.  intel_iommu switches the address space to guest
  memory, the memory core deletes the IOMMU section, and VFIO unmaps its
  whole IOVA range with no IOTLB entry: the backend reads nothing, and the
  guest's tables no longer say which page IOVA 0x10000 mapped.  The
  series relies on the guest blocking first (code comment in
  vfio_listener_region_del()), so the nine commits and the follow-ups up
  to "vfio/listener: Mark guest RAM dirty when an IOMMU section is
  removed" lose the page: "unmapped+stale".  That commit marks all guest
  RAM dirty before the section's mappings go, while dirty tracking is on
  (the unmap itself still reads nothing, so the label judges the data):
  fork "intact"; base: migration refused (legacy: realize fails).

The migration steps (steps/passthrough.py) also run with guest RAM above
4 GiB (scenarios/ram_above_4g.py).
"""

from lib import backends
from lib import layout
from e2e import guestdma as g
from lib import viommu as guest_iommus
from lib import qemu
from e2e.scenario import Case
from e2e.steps import unmap_reads as R
from e2e.steps.migration_window import (MigrationWindow, dirty_rate_run, dirty_rate_kw,
                                        migration_kw)
from e2e.steps.passthrough import (DID, TARGET, block, bring_up_passthrough, note_window,
                                   run_passthrough_to_blocked)

# The queue just before "vfio/listener: Read the dirty bits of vIOMMU
# mappings from VFIO's record".
DIRECT_BEFORE = layout.build_before("Read-the-dirty-bits-of-vIOMMU")


def run_dma_to_passthrough(ctx, backend):
    """DMA domain -> blocked -> pass-through during the window."""
    mw = MigrationWindow(ctx, **migration_kw(backend))
    drv = guest_iommus.bring_up(mw.src, "legacy", DID)
    m = g.Mapping(0x10000, TARGET)
    g.map_all(drv, DID, [m])
    g.fill_old(mw.src, [m])

    def blocked_then_passthrough():
        block(drv)
        drv.attach_passthrough(qemu.VFIO_BUS, qemu.VFIO_DEVFN, DID)

    stop = mw.run([m], blocked_then_passthrough)
    if stop:
        return stop
    ctx.note("hostsim events while the device went DMA -> blocked -> pass-through (src):")
    for line in R.H.fmt_all(mw.window):
        ctx.note("  " + line)
    read = R.judge(ctx, backend, mw.window, pages=[(m.iova, m.size)], focus=True)
    return mw.outcome(read, [m])


def run_dma_to_passthrough_direct(ctx, backend):
    """DMA domain -> pass-through, no blocking step, during the window.
    "unmapped" when a successful host unmap covered the IOVA, then the
    destination's data: "intact" or "unmapped+stale"."""
    kw = migration_kw(backend)
    kw["traces"] = qemu.DEFAULT_TRACES + ["vfio_listener_region_del_iommu*"]
    mw = MigrationWindow(ctx, **kw)
    drv = guest_iommus.bring_up(mw.src, "legacy", DID)
    m = g.Mapping(0x10000, TARGET)
    g.map_all(drv, DID, [m])
    g.fill_old(mw.src, [m])

    def straight_to_passthrough():
        drv.attach_passthrough(qemu.VFIO_BUS, qemu.VFIO_DEVFN, DID)

    stop = mw.run([m], straight_to_passthrough)
    if stop:
        return stop
    note_window(ctx, mw.src, mw.window)
    for line in mw.src.trace_lines("region_del [iommu]")[-4:]:
        ctx.note("  trace: " + line)
    call = R.unmap_call(backend)
    unmapped = any(R.covers(e, m.iova, m.size) for e in R.H.calls(mw.window, call)
                   if e.get("ret") == 0)
    if not unmapped:
        ctx.note("no successful host unmap covered IOVA 0x%x" % m.iova)
    return mw.outcome("unmapped" if unmapped else "not-unmapped", [m], ok="unmapped")


def run_dirty_rate(ctx, backend):
    v = ctx.vm("src", **dirty_rate_kw(backend)).start()
    drv = bring_up_passthrough(v)
    m = g.Mapping(TARGET, TARGET)
    g.fill_old(v, [m])
    window, stop = dirty_rate_run(ctx, v, backend, [m], lambda: block(drv), note_window)
    if stop:
        return stop
    return R.judge(ctx, backend, window, pages=[(TARGET, g.PAGE)], focus=True)


def cases():
    out = []
    for backend in ("legacy", "iommufd"):
        base = backends.get(backend).base_blocker
        # before-followups: the nine alone (no follow-up) already handle this.
        out.append(Case("e2e/passthrough-to-blocked/%s" % backend,
                        {"fork": "intact", "base": base, "before-followups": "intact"},
                        lambda ctx, b=backend: run_passthrough_to_blocked(ctx, b), __doc__))
        # upto-07 / upto-08: the queue just before / with "vfio/listener:
        # Add missing dirty tracking in region_del" (queue position 08).
        out.append(Case("e2e/passthrough-to-blocked-dirty-rate/%s" % backend,
                        {"fork": "read-ok", "base": "no-read",
                         "upto-07": "no-read", "upto-08": "read-ok"},
                        lambda ctx, b=backend: run_dirty_rate(ctx, b), __doc__))
        out.append(Case("e2e/dma-to-passthrough-via-blocked/%s" % backend,
                        {"fork": "intact", "base": base},
                        lambda ctx, b=backend: run_dma_to_passthrough(ctx, b), __doc__))
        out.append(Case("e2e/dma-to-passthrough-direct/%s" % backend,
                        {"fork": "intact", "base": base, "before-followups": "unmapped+stale",
                         DIRECT_BEFORE: "unmapped+stale"},
                        lambda ctx, b=backend: run_dma_to_passthrough_direct(ctx, b), __doc__))
    return out
