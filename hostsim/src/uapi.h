/*
 * The subset of the Linux VFIO and iommufd user ABI that hostsim answers.
 *
 * Declared here from the documented ABI of include/uapi/linux/vfio.h and
 * include/uapi/linux/iommufd.h (same numbers, same layouts, only what the
 * model needs), so that hostsim builds with nothing but libc: the
 * distribution's linux-libc-dev predates the iommufd dirty-tracking
 * interface.
 */
#ifndef HOSTSIM_UAPI_H
#define HOSTSIM_UAPI_H

#include <stdint.h>
#include <sys/ioctl.h>

typedef uint64_t hs_u64a __attribute__((aligned(8)));

/* ---- ioctl numbering: _IO(';', base + n) for both VFIO and iommufd ---- */
#define VFIO_TYPE ';'
#define VFIO_BASE 100
#define VIO(n) _IO(VFIO_TYPE, VFIO_BASE + (n))
#define IOMMUFD_TYPE ';'
#define IOMMUFD_CMD_BASE 0x80
#define IOIO(n) _IO(IOMMUFD_TYPE, (n))

#define VFIO_API_VERSION 0

/* container / group */
#define VFIO_GET_API_VERSION        VIO(0)
#define VFIO_CHECK_EXTENSION        VIO(1)
#define VFIO_SET_IOMMU              VIO(2)
#define VFIO_GROUP_GET_STATUS       VIO(3)
#define VFIO_GROUP_SET_CONTAINER    VIO(4)
#define VFIO_GROUP_UNSET_CONTAINER  VIO(5)
#define VFIO_GROUP_GET_DEVICE_FD    VIO(6)
/* device */
#define VFIO_DEVICE_GET_INFO        VIO(7)
#define VFIO_DEVICE_GET_REGION_INFO VIO(8)
#define VFIO_DEVICE_GET_IRQ_INFO    VIO(9)
#define VFIO_DEVICE_SET_IRQS        VIO(10)
#define VFIO_DEVICE_RESET           VIO(11)
#define VFIO_DEVICE_GET_PCI_HOT_RESET_INFO VIO(12)
#define VFIO_DEVICE_PCI_HOT_RESET   VIO(13)
#define VFIO_DEVICE_QUERY_GFX_PLANE VIO(14)
#define VFIO_DEVICE_GET_GFX_DMABUF  VIO(15)
#define VFIO_DEVICE_IOEVENTFD       VIO(16)
#define VFIO_DEVICE_FEATURE         VIO(17)
#define VFIO_DEVICE_BIND_IOMMUFD    VIO(18)
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT VIO(19)
#define VFIO_DEVICE_DETACH_IOMMUFD_PT VIO(20)
#define VFIO_MIG_GET_PRECOPY_INFO   VIO(21)
/* type1 IOMMU (same numbers as some device ioctls: the fd kind decides) */
#define VFIO_IOMMU_GET_INFO         VIO(12)
#define VFIO_IOMMU_MAP_DMA          VIO(13)
#define VFIO_IOMMU_UNMAP_DMA        VIO(14)
#define VFIO_IOMMU_ENABLE           VIO(15)
#define VFIO_IOMMU_DISABLE          VIO(16)
#define VFIO_IOMMU_DIRTY_PAGES      VIO(17)

/* extensions */
#define VFIO_TYPE1_IOMMU        1
#define VFIO_SPAPR_TCE_IOMMU    2
#define VFIO_TYPE1v2_IOMMU      3
#define VFIO_DMA_CC_IOMMU       4
#define VFIO_EEH                5
#define VFIO_TYPE1_NESTING_IOMMU 6
#define VFIO_SPAPR_TCE_v2_IOMMU 7
#define VFIO_NOIOMMU_IOMMU      8
#define VFIO_UNMAP_ALL          9
#define VFIO_UPDATE_VADDR       10

struct vfio_info_cap_header {
    uint16_t id;
    uint16_t version;
    uint32_t next;
};

struct vfio_group_status {
    uint32_t argsz;
    uint32_t flags;
};
#define VFIO_GROUP_FLAGS_VIABLE        (1u << 0)
#define VFIO_GROUP_FLAGS_CONTAINER_SET (1u << 1)

struct vfio_device_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
    uint32_t cap_offset;
    uint32_t pad;
};
#define VFIO_DEVICE_FLAGS_RESET (1u << 0)
#define VFIO_DEVICE_FLAGS_PCI   (1u << 1)
#define VFIO_DEVICE_FLAGS_CAPS  (1u << 7)

struct vfio_region_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset;
    hs_u64a size;
    hs_u64a offset;
};
#define VFIO_REGION_INFO_FLAG_READ  (1u << 0)
#define VFIO_REGION_INFO_FLAG_WRITE (1u << 1)
#define VFIO_REGION_INFO_FLAG_MMAP  (1u << 2)
#define VFIO_REGION_INFO_FLAG_CAPS  (1u << 3)

struct vfio_irq_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};
#define VFIO_IRQ_INFO_EVENTFD    (1u << 0)
#define VFIO_IRQ_INFO_MASKABLE   (1u << 1)
#define VFIO_IRQ_INFO_AUTOMASKED (1u << 2)
#define VFIO_IRQ_INFO_NORESIZE   (1u << 3)

struct vfio_irq_set {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
    uint8_t data[];
};
#define VFIO_IRQ_SET_DATA_NONE      (1u << 0)
#define VFIO_IRQ_SET_DATA_BOOL      (1u << 1)
#define VFIO_IRQ_SET_DATA_EVENTFD   (1u << 2)
#define VFIO_IRQ_SET_ACTION_MASK    (1u << 3)
#define VFIO_IRQ_SET_ACTION_UNMASK  (1u << 4)
#define VFIO_IRQ_SET_ACTION_TRIGGER (1u << 5)
#define VFIO_IRQ_SET_DATA_TYPE_MASK 0x7u
#define VFIO_IRQ_SET_ACTION_TYPE_MASK 0x38u

/* vfio-pci fixed indexes */
enum { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR1_REGION_INDEX,
       VFIO_PCI_BAR2_REGION_INDEX, VFIO_PCI_BAR3_REGION_INDEX,
       VFIO_PCI_BAR4_REGION_INDEX, VFIO_PCI_BAR5_REGION_INDEX,
       VFIO_PCI_ROM_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
       VFIO_PCI_VGA_REGION_INDEX, VFIO_PCI_NUM_REGIONS };
enum { VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
       VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX,
       VFIO_PCI_REQ_IRQ_INDEX, VFIO_PCI_NUM_IRQS };
/* vfio-pci places region N at offset N << 40 of the device fd */
#define VFIO_PCI_OFFSET_SHIFT 40

struct vfio_iommu_type1_info {
    uint32_t argsz;
    uint32_t flags;
    hs_u64a iova_pgsizes;
    uint32_t cap_offset;
    uint32_t pad;
};
#define VFIO_IOMMU_INFO_PGSIZES (1u << 0)
#define VFIO_IOMMU_INFO_CAPS    (1u << 1)
#define VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1
#define VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION  2
#define VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL      3

struct vfio_iova_range {
    uint64_t start;
    uint64_t end;
};
struct vfio_iommu_type1_info_cap_iova_range {
    struct vfio_info_cap_header header;
    uint32_t nr_iovas;
    uint32_t reserved;
    struct vfio_iova_range iova_ranges[];
};
struct vfio_iommu_type1_info_cap_migration {
    struct vfio_info_cap_header header;
    uint32_t flags;
    uint64_t pgsize_bitmap;
    uint64_t max_dirty_bitmap_size;
};
struct vfio_iommu_type1_info_dma_avail {
    struct vfio_info_cap_header header;
    uint32_t avail;
};

struct vfio_iommu_type1_dma_map {
    uint32_t argsz;
    uint32_t flags;
    uint64_t vaddr;
    uint64_t iova;
    uint64_t size;
};
#define VFIO_DMA_MAP_FLAG_READ  (1u << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1u << 1)
#define VFIO_DMA_MAP_FLAG_VADDR (1u << 2)

struct vfio_bitmap {
    uint64_t pgsize;
    uint64_t size;
    uint64_t *data;
};

struct vfio_iommu_type1_dma_unmap {
    uint32_t argsz;
    uint32_t flags;
    uint64_t iova;
    uint64_t size;
    uint8_t data[];
};
#define VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1u << 0)
#define VFIO_DMA_UNMAP_FLAG_ALL              (1u << 1)
#define VFIO_DMA_UNMAP_FLAG_VADDR            (1u << 2)

struct vfio_iommu_type1_dirty_bitmap {
    uint32_t argsz;
    uint32_t flags;
    uint8_t data[];
};
#define VFIO_IOMMU_DIRTY_PAGES_FLAG_START      (1u << 0)
#define VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP       (1u << 1)
#define VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP (1u << 2)

struct vfio_iommu_type1_dirty_bitmap_get {
    uint64_t iova;
    uint64_t size;
    struct vfio_bitmap bitmap;
};

/* device features */
struct vfio_device_feature {
    uint32_t argsz;
    uint32_t flags;
    uint8_t data[];
};
#define VFIO_DEVICE_FEATURE_MASK  0xffffu
#define VFIO_DEVICE_FEATURE_GET   (1u << 16)
#define VFIO_DEVICE_FEATURE_SET   (1u << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1u << 18)
#define VFIO_DEVICE_FEATURE_MIGRATION 1
#define VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE 2
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#define VFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_START 6
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP 7
#define VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT 8
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9

struct vfio_device_feature_migration {
    hs_u64a flags;
};
#define VFIO_MIGRATION_STOP_COPY (1u << 0)
#define VFIO_MIGRATION_P2P       (1u << 1)
#define VFIO_MIGRATION_PRE_COPY  (1u << 2)

struct vfio_device_feature_mig_state {
    uint32_t device_state;
    int32_t data_fd;
};
enum vfio_device_mig_state {
    VFIO_DEVICE_STATE_ERROR = 0,
    VFIO_DEVICE_STATE_STOP = 1,
    VFIO_DEVICE_STATE_RUNNING = 2,
    VFIO_DEVICE_STATE_STOP_COPY = 3,
    VFIO_DEVICE_STATE_RESUMING = 4,
    VFIO_DEVICE_STATE_RUNNING_P2P = 5,
    VFIO_DEVICE_STATE_PRE_COPY = 6,
    VFIO_DEVICE_STATE_PRE_COPY_P2P = 7,
    VFIO_DEVICE_NUM_STATES = 8,
};

struct vfio_precopy_info {
    uint32_t argsz;
    uint32_t flags;
    hs_u64a initial_bytes;
    hs_u64a dirty_bytes;
};

struct vfio_device_feature_dma_logging_control {
    hs_u64a page_size;
    uint32_t num_ranges;
    uint32_t reserved;
    hs_u64a ranges;
};
struct vfio_device_feature_dma_logging_range {
    hs_u64a iova;
    hs_u64a length;
};
struct vfio_device_feature_dma_logging_report {
    hs_u64a iova;
    hs_u64a length;
    hs_u64a page_size;
    hs_u64a bitmap;
};
struct vfio_device_feature_mig_data_size {
    hs_u64a stop_copy_length;
};

/* vfio cdev <-> iommufd */
struct vfio_device_bind_iommufd {
    uint32_t argsz;
    uint32_t flags;
    int32_t iommufd;
    uint32_t out_devid;
};
struct vfio_device_attach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
    uint32_t pt_id;
};
struct vfio_device_detach_iommufd_pt {
    uint32_t argsz;
    uint32_t flags;
};

/* ---- iommufd ---- */
#define IOMMU_DESTROY                 IOIO(0x80)
#define IOMMU_IOAS_ALLOC              IOIO(0x81)
#define IOMMU_IOAS_ALLOW_IOVAS        IOIO(0x82)
#define IOMMU_IOAS_COPY               IOIO(0x83)
#define IOMMU_IOAS_IOVA_RANGES        IOIO(0x84)
#define IOMMU_IOAS_MAP                IOIO(0x85)
#define IOMMU_IOAS_UNMAP              IOIO(0x86)
#define IOMMU_OPTION                  IOIO(0x87)
#define IOMMU_VFIO_IOAS               IOIO(0x88)
#define IOMMU_HWPT_ALLOC              IOIO(0x89)
#define IOMMU_GET_HW_INFO             IOIO(0x8a)
#define IOMMU_HWPT_SET_DIRTY_TRACKING IOIO(0x8b)
#define IOMMU_HWPT_GET_DIRTY_BITMAP   IOIO(0x8c)
#define IOMMU_HWPT_INVALIDATE         IOIO(0x8d)
#define IOMMU_FAULT_QUEUE_ALLOC       IOIO(0x8e)
#define IOMMU_IOAS_MAP_FILE           IOIO(0x8f)
#define IOMMU_VIOMMU_ALLOC            IOIO(0x90)
#define IOMMU_VDEVICE_ALLOC           IOIO(0x91)
#define IOMMU_IOAS_CHANGE_PROCESS     IOIO(0x92)

struct iommu_destroy { uint32_t size; uint32_t id; };
struct iommu_ioas_alloc { uint32_t size; uint32_t flags; uint32_t out_ioas_id; };
struct iommu_iova_range { hs_u64a start; hs_u64a last; };
struct iommu_ioas_iova_ranges {
    uint32_t size;
    uint32_t ioas_id;
    uint32_t num_iovas;
    uint32_t reserved;
    hs_u64a allowed_iovas;
    hs_u64a out_iova_alignment;
};
struct iommu_ioas_map {
    uint32_t size;
    uint32_t flags;
    uint32_t ioas_id;
    uint32_t reserved;
    hs_u64a user_va;
    hs_u64a length;
    hs_u64a iova;
};
#define IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define IOMMU_IOAS_MAP_WRITEABLE  (1u << 1)
#define IOMMU_IOAS_MAP_READABLE   (1u << 2)
struct iommu_ioas_map_file {
    uint32_t size;
    uint32_t flags;
    uint32_t ioas_id;
    int32_t fd;
    hs_u64a start;
    hs_u64a length;
    hs_u64a iova;
};
struct iommu_ioas_unmap {
    uint32_t size;
    uint32_t ioas_id;
    hs_u64a iova;
    hs_u64a length;
};
struct iommu_ioas_change_process { uint32_t size; uint32_t reserved; };
struct iommu_hwpt_alloc {
    uint32_t size;
    uint32_t flags;
    uint32_t dev_id;
    uint32_t pt_id;
    uint32_t out_hwpt_id;
    uint32_t reserved;
    uint32_t data_type;
    uint32_t data_len;
    hs_u64a data_uptr;
    uint32_t fault_id;
    uint32_t reserved2;
};
#define IOMMU_HWPT_ALLOC_NEST_PARENT    (1u << 0)
#define IOMMU_HWPT_ALLOC_DIRTY_TRACKING (1u << 1)
#define IOMMU_HWPT_FAULT_ID_VALID       (1u << 2)
#define IOMMU_HWPT_DATA_NONE 0
struct iommu_hw_info {
    uint32_t size;
    uint32_t flags;
    uint32_t dev_id;
    uint32_t data_len;
    hs_u64a data_uptr;
    uint32_t out_data_type;
    uint8_t out_max_pasid_log2;
    uint8_t reserved[3];
    hs_u64a out_capabilities;
};
#define IOMMU_HW_INFO_TYPE_INTEL_VTD 1
#define IOMMU_HW_CAP_DIRTY_TRACKING (1u << 0)
struct iommu_hw_info_vtd {
    uint32_t flags;
    uint32_t reserved;
    hs_u64a cap_reg;
    hs_u64a ecap_reg;
};
struct iommu_hwpt_set_dirty_tracking {
    uint32_t size;
    uint32_t flags;
    uint32_t hwpt_id;
    uint32_t reserved;
};
#define IOMMU_HWPT_DIRTY_TRACKING_ENABLE 1u
struct iommu_hwpt_get_dirty_bitmap {
    uint32_t size;
    uint32_t hwpt_id;
    uint32_t flags;
    uint32_t reserved;
    hs_u64a iova;
    hs_u64a length;
    hs_u64a page_size;
    hs_u64a data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR 1u

#endif
