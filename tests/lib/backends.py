"""What differs between QEMU's two VFIO host backends, in one record each.

  legacy   the VFIO type1 container (/dev/vfio/vfio, group fds)
  iommufd  the iommufd cdev path (-object iommufd)

A record holds how QEMU is told to use the backend, the calls the hostsim
event log names for it, the hostsim settings that give it IOMMU dirty
tracking, and what the base (QEMU 10.2.2) does when such a device sits
behind a vIOMMU.  A case takes a backend name and asks the record instead
of branching on the name.  A new backend is one more record in BACKENDS.
"""

ENOENT = 2


class Backend:
    def __init__(self, name, *, device_props, objects, realize_calls, map_call,
                 unmap_call, dirty_call, read_at_unmap, unmap_read_flag, empty_unmap,
                 tracking_start, base_blocker, dirty_cfg, no_dirty_cfg,
                 needs_enable_migration):
        self.name = name
        # realize: -device vfio-pci properties and the -object lines they name
        self.device_props = device_props
        self.objects = objects
        # the calls of a realize, in order (other calls may come between)
        self.realize_calls = realize_calls
        # hostsim event-log calls
        self.map_call = map_call          # map an IOVA range
        self.unmap_call = unmap_call      # unmap an IOVA range
        self.dirty_call = dirty_call      # read the dirty bitmap at a sync
        self.read_at_unmap = read_at_unmap  # the call reading the bits of an unmap
        # the bits are read by the unmap call itself (type1), not by a
        # separate query before it (iommufd)
        self.reads_inside_unmap = read_at_unmap == unmap_call
        self.unmap_read_flag = unmap_read_flag  # read_at_unmap's flag for that read
        self._empty_unmap = empty_unmap
        self._tracking_start = tracking_start
        # The base's answer to a device behind a vIOMMU: the label a case
        # expects there (iommufd realizes with a migration blocker, legacy
        # refuses to realize).
        self.base_blocker = base_blocker
        # hostsim settings: IOMMU dirty tracking on / no dirty source at all
        self.dirty_cfg = dirty_cfg
        self.no_dirty_cfg = no_dirty_cfg
        # legacy type1 without device dirty tracking migrates only with
        # enable-migration=on
        self.needs_enable_migration = needs_enable_migration

    def empty_unmap(self, ev):
        """True for an unmap event of a range holding no mapping (a sweep
        over empty address space), which removes nothing."""
        return self._empty_unmap(ev)

    def tracking_start(self, ev):
        """True for a hostsim event that started dirty tracking."""
        return ev.get("ret") == 0 and self._tracking_start(ev)

    def __repr__(self):
        return "Backend(%s)" % self.name


IOMMUFD = Backend(
    "iommufd",
    device_props=["iommufd=iommufd0"],
    objects=["-object", "iommufd,id=iommufd0"],
    realize_calls=["open", "open", "VFIO_DEVICE_BIND_IOMMUFD", "IOMMU_IOAS_ALLOC",
                   "IOMMU_GET_HW_INFO", "IOMMU_HWPT_ALLOC",
                   "VFIO_DEVICE_ATTACH_IOMMUFD_PT", "IOMMU_IOAS_IOVA_RANGES",
                   "IOMMU_IOAS_MAP", "VFIO_DEVICE_GET_INFO",
                   "VFIO_DEVICE_GET_REGION_INFO", "pread", "VFIO_DEVICE_FEATURE"],
    map_call="IOMMU_IOAS_MAP",
    unmap_call="IOMMU_IOAS_UNMAP",
    dirty_call="IOMMU_HWPT_GET_DIRTY_BITMAP",
    read_at_unmap="IOMMU_HWPT_GET_DIRTY_BITMAP",
    unmap_read_flag=1,                  # IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
    # IOMMU_IOAS_UNMAP of nothing fails with ENOENT
    empty_unmap=lambda e: e.get("ret") != 0 and e.get("errno") == ENOENT,
    tracking_start=lambda e: (e.get("call") == "IOMMU_HWPT_SET_DIRTY_TRACKING"
                              and e.get("flags", 0) & 1),
    base_blocker="blocked[vIOMMU]",
    dirty_cfg={"dma_logging": "off", "iommu_dirty": "on"},
    no_dirty_cfg={"dma_logging": "off", "iommu_dirty": "off"},
    needs_enable_migration=False,
)

LEGACY = Backend(
    "legacy",
    device_props=[],
    objects=[],
    realize_calls=["open", "VFIO_GROUP_GET_STATUS", "open", "VFIO_GET_API_VERSION",
                   "VFIO_CHECK_EXTENSION", "VFIO_GROUP_SET_CONTAINER",
                   "VFIO_SET_IOMMU", "VFIO_IOMMU_GET_INFO", "VFIO_IOMMU_MAP_DMA",
                   "VFIO_GROUP_GET_DEVICE_FD", "VFIO_DEVICE_GET_INFO",
                   "VFIO_DEVICE_GET_REGION_INFO", "pread", "VFIO_DEVICE_FEATURE"],
    map_call="VFIO_IOMMU_MAP_DMA",
    unmap_call="VFIO_IOMMU_UNMAP_DMA",
    dirty_call="VFIO_IOMMU_DIRTY_PAGES",
    # type1 reads the bits inside the unmap ioctl (GET_DIRTY_BITMAP flag)
    read_at_unmap="VFIO_IOMMU_UNMAP_DMA",
    unmap_read_flag=1,                  # VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
    # VFIO_IOMMU_UNMAP_DMA of nothing succeeds, 0 bytes unmapped
    empty_unmap=lambda e: e.get("ret") == 0 and e.get("unmapped") == 0,
    tracking_start=lambda e: (e.get("call") == "VFIO_IOMMU_DIRTY_PAGES"
                              and e.get("op") == "start"),
    base_blocker="realize-failed[vIOMMU]",
    dirty_cfg={"dma_logging": "off", "type1.migration_cap": "on",
               "type1.dirty": "precise"},
    no_dirty_cfg={"dma_logging": "off", "type1.migration_cap": "off"},
    needs_enable_migration=True,
)

BACKENDS = {b.name: b for b in (IOMMUFD, LEGACY)}
NAMES = tuple(BACKENDS)


def get(name):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError("unknown VFIO backend %r (known: %s)"
                         % (name, ", ".join(BACKENDS))) from None
