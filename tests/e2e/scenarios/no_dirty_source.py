"""A device with no dirty page source at all, enable-migration=on: no DMA
logging, and no IOMMU dirty tracking (iommufd: its HWPT cannot track;
legacy: type1 without the migration capability).

QEMU realizes it with the warning "doesn't support device and IOMMU dirty
tracking" and lets it migrate: its memory is to be reported dirty at every
sync (vfio_container_query_dirty_bitmap() marks the whole queried range
when nothing tracks it).  In QEMU 10.2.2 that code never runs: log sync
and the reads at unmap query only containers whose dirty tracking was
started, and such a container has nothing to start.  The base refuses
the configuration behind a vIOMMU (vIOMMU blocker; with
enable-migration=on realize fails), and loses the pages without one.
The ninth commit of the series lifts the vIOMMU blocker for it.
"vfio/container: Report memory dirty when nothing tracks the devices'
DMA" records that tracking started in such a container, so log sync
and unmaps mark the memory dirty.

Once the target pages were sent (VM and device running), the device
writes them; every written page is compared on the destination.

e2e/no-dirty-source/<backend>/viommu
  intel-iommu, the device in a DMA domain with two mappings: IOVA 0x10000
  -> GPA 0x200000 (kept) and IOVA 0x20000 -> GPA 0x300000, which the guest
  unmaps (PTE zeroed, invalidated) right after the device wrote it.
  fork: "intact"; base: "realize-failed[vIOMMU]"; the nine commits and the
  queue before the fix: both pages arrive old, "stale[kept+unmapped]".
e2e/no-dirty-source/<backend>/no-viommu
  no vIOMMU: the device writes GPA 0x200000 through the identity
  mapping.  fork: "intact"; base, the nine commits and the queue before
  the fix: "stale[kept]".

Every page being dirty at every sync, a migration without a vIOMMU sends
all guest RAM at each iteration; such a migration converges only when
bandwidth x downtime limit covers all of it: the parameters of
mixed_container.allow_all_dirty() let it converge without letting the
first pass switch over during the window.
"""

from lib import backends
from lib import layout
from e2e import guestdma as g
from lib import viommu as guest_iommus
from e2e.scenario import Case
from e2e.steps.migration_window import MigrationWindow
from e2e.steps.migration_window import allow_all_dirty

DID = 1
KEPT = g.Mapping(0x10000, 0x200000)
UNMAPPED = g.Mapping(0x20000, 0x300000)
IDENTITY = g.Mapping(0x200000, 0x200000)
FIX = layout.build_before("Report-memory-dirty-when-nothing-trac")


def vm_kw(backend, viommu):
    cfg = dict(backends.get(backend).no_dirty_cfg)
    return dict(backend=backend, viommu=viommu, enable_migration="on", hostsim_cfg=cfg)


def data_label(ctx, mw, named):
    """"intact" if every page of the named mappings holds the device's data
    on the destination, else "stale[<names of those that do not>]"."""
    if not mw.result.completed:
        return "migrate-failed"
    stale = []
    for name, m in named:
        for gpa, st in sorted(g.check_pages(mw.dst, [m]).items()):
            ctx.note("destination gpa 0x%x (%s): %s" % (gpa, name, st))
            if st != "new":
                stale.append(name)
    ctx.measures["pages_lost"] = len(stale)
    return "stale[%s]" % "+".join(stale) if stale else "intact"


def run(ctx, backend, viommu):
    mw = MigrationWindow(ctx, **vm_kw(backend, viommu))
    ctx.note("blocked-reasons: %s" % mw.reasons)
    if viommu:
        drv = guest_iommus.bring_up(mw.src, "legacy", DID)
        named = [("kept", KEPT), ("unmapped", UNMAPPED)]
        g.map_all(drv, DID, [KEPT, UNMAPPED])

        def guest_action():
            drv.unmap(DID, UNMAPPED.iova, UNMAPPED.size)
    else:
        named = [("kept", IDENTITY)]

        def guest_action():
            pass
    maps = [m for _, m in named]
    g.fill_old(mw.src, maps)
    allow_all_dirty(mw.src)
    stop = mw.run(maps, guest_action)
    if stop:
        return stop
    return data_label(ctx, mw, named)


def cases():
    out = []
    for backend in ("iommufd", "legacy"):
        out.append(Case("e2e/no-dirty-source/%s/viommu" % backend,
                        {"fork": "intact", "base": "realize-failed[vIOMMU]",
                         "before-followups": "stale[kept+unmapped]",
                         FIX: "stale[kept+unmapped]"},
                        lambda ctx, b=backend: run(ctx, b, True), __doc__))
        out.append(Case("e2e/no-dirty-source/%s/no-viommu" % backend,
                        {"fork": "intact", "base": "stale[kept]",
                         "before-followups": "stale[kept]", FIX: "stale[kept]"},
                        lambda ctx, b=backend: run(ctx, b, False), __doc__))
    return out
