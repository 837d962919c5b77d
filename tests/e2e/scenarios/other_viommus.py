"""Scenario: live migration behind the vIOMMUs other than VT-d.

The ninth commit of the series lifts the vIOMMU migration blocker for every
vIOMMU once IOMMU dirty tracking is used, but VFIO's harvest at unmap marks
the dirty bits at the translated_addr of the vIOMMU's UNMAP notification,
and only intel_iommu's carry the page that was mapped.  virtio-iommu
(virtio_iommu_notify_unmap()) and AMD-Vi (amd-iommu,dma-remap=on) send 0;
their replay, which the dirty sync of an IOMMU section uses, does not
serve VFIO's dirty notifier either.  The fork keeps the blocker for them
("vfio/migration: Keep the vIOMMU blocker for vIOMMUs that hide unmapped
pages"), with a reason naming the device and the vIOMMU.

Each case: the guest driver of that vIOMMU (virtio_iommu.py, amd_iommu.py)
attaches the assigned device to domain 1 and maps
  A  iova 0x10000 -> gpa 0x200000              unmapped in the window
  K  iova 0x20000 -> gpa 0x280000 (4 pages)    kept
then a live migration runs; once A and K hold "old" on the destination
(VM and device running, first pass busy with ballast), the device writes
"new" through both and the guest unmaps A (single-page UNMAP request /
zeroed PTE + INVALIDATE_IOMMU_PAGES).  Every page of A and K is compared
on the destination.

Labels: "intact" (0 pages lost), "lost" (pages_lost in the measures),
"migrate-failed", "ordering-lost", "dma-failed", "blocked[<reason>]"
(with the fork's reason, only if blocked-reasons names the device and the
vIOMMU; otherwise "blocked[viommu-unmap]-unnamed"),
"realize-failed[<reason>]".
"""

import guestdma as g
import config
from scenario import Case, REASONS
from scenarios.migration_window import MigrationWindow, count_lost, migration_kw

VIOMMUS = ("virtio", "amd")
# What QEMU names the vIOMMU in the blocker's reason: the type of the
# object owning the device's IOMMU memory region.
VIOMMU_TYPE = {"virtio": "virtio-iommu-device", "amd": "amd-iommu"}
DEVICE = "0000:00:05.0"
DID = 1
A = g.Mapping(0x10000, 0x200000)
K = g.Mapping(0x20000, 0x280000, 4 * g.PAGE)
FIX = "Keep-the-vIOMMU-blocker-for-vIOMMUs"


def named_block(ctx, label, reasons, viommu):
    """The fork's blocker must say which device and which vIOMMU."""
    if label != "blocked[viommu-unmap]":
        return label
    named = [r for r in reasons if DEVICE in r and VIOMMU_TYPE[viommu] in r
             and REASONS["viommu-unmap"] in r]
    if not named:
        ctx.note("no blocked-reason names %s and %s: %s" % (DEVICE, VIOMMU_TYPE[viommu], reasons))
        return label + "-unnamed"
    return label


def run_unmap(ctx, viommu, backend):
    kw = migration_kw(backend)
    mw = MigrationWindow(ctx, viommu=viommu, **kw)
    src, dst = mw.src, mw.dst
    drv = ctx.guest_iommu(src, DID)
    targets = [A, K]
    g.map_all(drv, DID, targets)
    g.fill_old(src, targets)
    stop = mw.run(targets, lambda: drv.unmap(DID, A.iova, A.size))
    ctx.note("guest driver: " + "; ".join(drv.log[-8:]))
    if stop:
        return named_block(ctx, stop, mw.reasons, viommu)
    # The vIOMMU's UNMAP and the harvest: gpa= is where the bits landed.
    lines = src.trace_lines("vfio_iommu_map_notify", "vfio_container_query_dirty_bitmap")
    at = [i for i, l in enumerate(lines) if "UNMAP @ 0x%x " % A.iova in l]
    for line in lines[at[-1]:at[-1] + 2] if at else []:
        ctx.note("  trace: " + line)
    if not mw.result.completed:
        return "migrate-failed"
    return "lost" if count_lost(ctx, dst, targets) else "intact"


def expectations(backend):
    """fork: the blocker (iommufd: blocked-reasons and a refused migrate;
    legacy, realizable only with enable-migration=on: realize fails with
    it); base: 10.2.2's vIOMMU blocker; the nine commits alone
    (before-followups) and the queue just before the fix: pages lost."""
    if backend == "iommufd":
        expect = {"fork": "blocked[viommu-unmap]", "base": "blocked[vIOMMU]"}
    else:
        expect = {"fork": "realize-failed[viommu-unmap]", "base": "realize-failed[vIOMMU]"}
    expect["before-followups"] = "lost"
    expect[config.build_before(FIX)] = "lost"
    return expect


def cases():
    out = []
    for viommu in VIOMMUS:
        for backend in ("iommufd", "legacy"):
            out.append(Case(
                "e2e/other-viommus/%s/%s/unmap" % (viommu, backend), expectations(backend),
                lambda ctx, v=viommu, b=backend: run_unmap(ctx, v, b), __doc__))
    return out
