"""Guest drivers of the emulated IOMMUs, played over qtest, behind one API.

  vtd.VTd          Intel VT-d, legacy mode: root/context entries,
                   second-level page tables, register-based or queued
                   (128-bit descriptors) invalidation
  vtd.ScalableVTd  Intel VT-d, x-scalable-mode=on: scalable-mode context
                   entries, a PASID table whose RID_PASID entry selects
                   second-stage translation or pass-through, 256-bit queue
  amd.AMDVi        AMD-Vi (amd-iommu,dma-remap=on)
  virtio.VirtioIOMMU  virtio-iommu-pci

Every driver has init(), attach(bus, devfn, did), detach(bus, devfn, did),
map(did, iova, gpa, size), unmap(did, iova, size) and enable_translation();
the page-table drivers add attach_passthrough() and zero_upper_entry().

A new guest IOMMU: its driver module here, its name in MODES and in
driver(), its -device line in qemu.VIOMMUS / qemu.VM.
"""

from lib import qemu
from lib.viommu.amd import AMDVi
from lib.viommu.virtio import VirtioIOMMU
from lib.viommu.vtd import VTd, ScalableVTd

# The guest modes a case can run: the two ways of running VT-d, then the
# other vIOMMUs (the VM must have that vIOMMU, qemu.VM(viommu=...)).
MODES = ("legacy", "scalable")
OTHER_MODES = ("virtio", "amd")

# Guest RAM reserved for the driver's tables and queues (never a DMA target).
POOL_BASE = 0x00800000
POOL_SIZE = 0x00400000


def iommu_props(mode):
    """The intel-iommu properties of a VT-d mode."""
    return "x-scalable-mode=on" if mode == "scalable" else ""


def mode_of(v):
    """The guest mode that drives VM v's vIOMMU as QEMU configured it
    (VT-d: legacy mode)."""
    return "legacy" if v.viommu_kind == "intel" else v.viommu_kind


def driver(qt, mode, queued=True, piotlb=False, pool_base=POOL_BASE, pool_size=POOL_SIZE):
    """The guest driver of mode over the qtest connection qt (not yet
    initialised).  queued: VT-d legacy mode's invalidation queue (else its
    registers); piotlb: scalable mode's PASID-based IOTLB invalidation."""
    if mode == "virtio":
        return VirtioIOMMU(qt, pool_base, pool_size, 0, qemu.VIRTIO_IOMMU_DEVFN)
    if mode == "amd":
        return AMDVi(qt, pool_base, pool_size)
    if mode == "scalable":
        return ScalableVTd(qt, pool_base, pool_size, piotlb=piotlb)
    if mode == "legacy":
        return VTd(qt, pool_base, pool_size, queued=queued)
    raise ValueError("unknown guest IOMMU mode %r" % (mode,))


def bring_up(v, mode, did=1, passthrough=False, piotlb=False, queued=True):
    """Initialise the guest's driver of mode on VM v, put the assigned
    device in domain did (translated) or, with passthrough, in a
    pass-through domain, and enable translation.  v.vtd is the driver."""
    drv = driver(v.qt, mode, queued=queued, piotlb=piotlb)
    drv.init()
    if passthrough:
        drv.attach_passthrough(qemu.VFIO_BUS, qemu.VFIO_DEVFN, did)
    else:
        drv.attach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, did)
    drv.enable_translation()
    v.vtd = drv
    return drv


def block(drv, did):
    """Move the device to a blocking domain: legacy mode clears the
    context entry, scalable mode tears down the RID_PASID entry."""
    drv.detach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, did)


def attach(drv, did):
    return drv.attach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, did)
