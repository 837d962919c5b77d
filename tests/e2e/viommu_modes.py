"""The two ways a guest can run the emulated Intel IOMMU, as one switch.

  legacy    legacy-mode root/context entries (x-scalable-mode=off, QEMU's
            default), second-level page tables; invalidation queue with
            128-bit descriptors, as Linux uses it;
  scalable  x-scalable-mode=on: scalable-mode context entries and a PASID
            table whose RID_PASID entry selects second-stage translation
            (PGTT=010b) or pass-through; 256-bit invalidation queue with
            PASID-cache invalidations (vtd.ScalableVTd).

Both drivers share one API (attach, attach_passthrough, detach, map, unmap,
zero_upper_entry, enable_translation).
"""

import vm as vmmod
from scenario import VTD_POOL_BASE, VTD_POOL_SIZE
from amd_iommu import AMDVi
from virtio_iommu import VirtioIOMMU
from vtd import VTd, ScalableVTd

MODES = ("legacy", "scalable")


def iommu_props(mode):
    return "x-scalable-mode=on" if mode == "scalable" else ""


def bring_up(v, mode, did=1, passthrough=False, piotlb=False):
    """Initialise the guest's VT-d driver on VM v, put the assigned device
    in domain did (second-level/second-stage translation) or, with
    passthrough, in a pass-through domain, and enable translation.  Mode
    "virtio" or "amd": that vIOMMU's driver instead (v has that vIOMMU)."""
    if mode == "virtio":
        drv = VirtioIOMMU(v.qt, VTD_POOL_BASE, VTD_POOL_SIZE, 0, vmmod.VIRTIO_IOMMU_DEVFN)
    elif mode == "amd":
        drv = AMDVi(v.qt, VTD_POOL_BASE, VTD_POOL_SIZE)
    elif mode == "scalable":
        drv = ScalableVTd(v.qt, VTD_POOL_BASE, VTD_POOL_SIZE, piotlb=piotlb)
    else:
        drv = VTd(v.qt, VTD_POOL_BASE, VTD_POOL_SIZE, queued=True)
    drv.init()
    if passthrough:
        drv.attach_passthrough(vmmod.VFIO_BUS, vmmod.VFIO_DEVFN, did)
    else:
        drv.attach(vmmod.VFIO_BUS, vmmod.VFIO_DEVFN, did)
    drv.enable_translation()
    v.vtd = drv
    return drv


def block(drv, did):
    """Move the device to a blocking domain: legacy mode clears the
    context entry, scalable mode tears down the RID_PASID entry."""
    drv.detach(vmmod.VFIO_BUS, vmmod.VFIO_DEVFN, did)


def attach(drv, did):
    return drv.attach(vmmod.VFIO_BUS, vmmod.VFIO_DEVFN, did)
