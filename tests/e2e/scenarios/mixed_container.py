"""One iommufd container, two devices: device 0's host IOMMU tracks dirty
pages (its HWPT has dirty tracking), device 1's does not (hostsim
device1.iommu_dirty = off: QEMU gives it an HWPT of its own without dirty
tracking, in the same IOAS).  Neither does DMA logging; device 1 has
enable-migration=on, so it realizes with the "doesn't support device and
IOMMU dirty tracking" warning and migrates.

The container reports dirty tracking (device 0's HWPT), so
vfio_container_query_dirty_bitmap() never takes its "nothing tracks:
everything is dirty" path, and iommufd_query_dirty_bitmap() reads only
device 0's HWPT: what device 1 writes during migration is never reported.
"vfio/iommufd: Report all pages dirty for an HWPT without dirty tracking"
sets every bit of a queried range when the container has an HWPT without
dirty tracking.

Once the target pages were sent (VM and devices running), each device
writes its pages; every written page is compared on the destination.
Labels: "intact", or "stale[<pages that arrived old>]" named dev0 / dev1
(device 1: "dev1-kept", and "dev1-unmapped" for the page whose mapping
the guest removes right after the write).

e2e/mixed-container/no-viommu
  both devices on the root bus; each writes one page through the identity
  mapping.  fork: "intact"; base and the queue before the fix:
  "stale[dev1]" (the base has the same hole without a vIOMMU); the nine
  commits alone: realize fails with the large-memory message (the size
  check computes a zero limit for an iommufd container; "vfio/migration:
  Do not apply the dirty bitmap size limit without one" lets device 1
  realize, and so migrate).
e2e/mixed-container/viommu
  intel-iommu; both devices behind one PCIe-to-PCI bridge share the
  bridge's requester ID, hence one address space, and one iommufd
  object: one container.  The guest maps three IOVAs in the bridge's
  domain; device 0 writes the first, device 1 the second (kept) and the
  third, which the guest then unmaps (PTE zeroed, invalidated).
  fork: "intact"; base: device 1 fails realize with the vIOMMU blocker
  (enable-migration=on); the queue before the fix:
  "stale[dev1-kept+dev1-unmapped]"; the nine commits alone: large-memory.

A container that reports every page dirty at every sync sends all guest
RAM at each iteration without a vIOMMU; such a migration converges only
when bandwidth x downtime limit covers all of it.  allow_all_dirty() sets
the limit to 2 s and has zero pages sent whole, so that QEMU's bandwidth
estimate counts their bytes: under the window's 32 MiB/s cap the
threshold (64 MiB) stays below what is left to send, so the first pass
cannot switch over during the window; once the cap is lifted it exceeds
the guest's RAM.
"""

import os

from lib import layout
from e2e import guestdma as g
from lib import qemu
from e2e.scenario import Case
from e2e.steps.migration_window import allow_all_dirty, dma_failed
from e2e.steps.bridge import BRIDGE_DEVFN, bring_up

DEV1 = "0000:00:06.0"
DID = 1
FIX = layout.build_before("Report-all-pages-dirty-for-an-HWPT")
MIXED_WARNING = "IOMMU instance for device %s doesn't support dirty tracking" % DEV1
CFG = {"dma_logging": "off", "iommu_dirty": "on",
       "device1.name": DEV1, "device1.group": 43, "device1.cdev": 1,
       "device1.iommu_dirty": "off"}

# (name, device, mapping); identity mappings without a vIOMMU.
NO_VIOMMU = [("dev0", 0, g.Mapping(0x200000, 0x200000)),
             ("dev1", 1, g.Mapping(0x300000, 0x300000))]
VIOMMU = [("dev0", 0, g.Mapping(0x10000, 0x200000)),
          ("dev1-kept", 1, g.Mapping(0x20000, 0x300000)),
          ("dev1-unmapped", 1, g.Mapping(0x30000, 0x400000))]


def mixed_vm(ctx, name, viommu, incoming=False):
    """Devices 0 and 1 on iommufd object iommufd0, device 1 with
    enable-migration=on; with a vIOMMU both behind one bridge."""
    v = ctx.vm(name, backend="iommufd", viommu=viommu, hostsim_cfg=dict(CFG),
               incoming=incoming)
    sysfs1 = qemu.hostsim.make_sysfs_device(os.path.join(v.dir, "sysfs"), name=DEV1,
                                             group=43, cdev=1)
    dev1 = "vfio-pci,id=hostdev1,sysfsdev=%s,iommufd=iommufd0,enable-migration=on" % sysfs1
    if viommu:
        i = next(n for n, a in enumerate(v.args) if a.startswith("vfio-pci,"))
        v.args[i] = v.args[i].replace("addr=05.0", "bus=br0,addr=01.0")
        v.args[i - 1:i - 1] = ["-device", "pcie-pci-bridge,id=br0,bus=pcie.0,addr=%02x.0"
                               % (BRIDGE_DEVFN >> 3)]
        v.args += ["-device", dev1 + ",bus=br0,addr=02.0"]
    else:
        v.args += ["-device", dev1 + ",addr=06.0"]
    return v.start()


def run(ctx, viommu):
    src = mixed_vm(ctx, "src", viommu)
    dst = mixed_vm(ctx, "dst", viommu, incoming=True)
    if MIXED_WARNING not in src.stderr():
        ctx.note("device 1 did not get an HWPT without dirty tracking (no %r): "
                 "the container is not mixed" % MIXED_WARNING)
        return "not-mixed"
    ctx.note("blocked-reasons: %s" % src.blocked_reasons())
    named = VIOMMU if viommu else NO_VIOMMU
    maps = [m for _, _, m in named]
    drv = bring_up(src, named) if viommu else None
    g.fill_old(src, maps)
    state = {}

    def action():
        state["dma"] = [(m, src.ctl.dma(m.iova, g.PAGE, g.new_pattern(m.gpa), dev=dev))
                        for _, dev, m in named]
        for name, _, m in named:
            if name.endswith("-unmapped"):
                drv.unmap(DID, m.iova, m.size)

    allow_all_dirty(src)
    r = g.migrate_with_window(src, dst, maps, action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        return "refused"
    if r.ordering_lost:
        return "ordering-lost"
    stop = dma_failed(ctx, state.get("dma", []))
    if stop:
        return stop
    if not r.completed:
        return "migrate-failed"
    stale = []
    for name, _, m in named:
        st = g.page_state(dst, m.gpa)
        ctx.note("destination gpa 0x%x (%s): %s" % (m.gpa, name, st))
        if st != "new":
            stale.append(name)
    ctx.measures["pages_lost"] = len(stale)
    return "stale[%s]" % "+".join(stale) if stale else "intact"


def cases():
    return [
        Case("e2e/mixed-container/no-viommu",
             {"fork": "intact", "base": "stale[dev1]", FIX: "stale[dev1]",
              "before-followups": "realize-failed[large-memory]"},
             lambda ctx: run(ctx, False), __doc__),
        Case("e2e/mixed-container/viommu",
             {"fork": "intact", "base": "realize-failed[vIOMMU]",
              FIX: "stale[dev1-kept+dev1-unmapped]",
              "before-followups": "realize-failed[large-memory]"},
             lambda ctx: run(ctx, True), __doc__),
    ]
