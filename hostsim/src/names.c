/*
 * ioctl names for the event log, and the IOVA range each ioctl acts on
 * (for range-filtered fault rules).  The same number means different
 * things on different fds (type1 VFIO_IOMMU_GET_INFO shares its number with
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO), so the fd kind selects the table.
 */
#include <string.h>

#include "hostsim.h"

struct name { unsigned long req; const char *name; };

static const struct name container_names[] = {
    { VFIO_GET_API_VERSION, "VFIO_GET_API_VERSION" },
    { VFIO_CHECK_EXTENSION, "VFIO_CHECK_EXTENSION" },
    { VFIO_SET_IOMMU, "VFIO_SET_IOMMU" },
    { VFIO_IOMMU_GET_INFO, "VFIO_IOMMU_GET_INFO" },
    { VFIO_IOMMU_MAP_DMA, "VFIO_IOMMU_MAP_DMA" },
    { VFIO_IOMMU_UNMAP_DMA, "VFIO_IOMMU_UNMAP_DMA" },
    { VFIO_IOMMU_ENABLE, "VFIO_IOMMU_ENABLE" },
    { VFIO_IOMMU_DISABLE, "VFIO_IOMMU_DISABLE" },
    { VFIO_IOMMU_DIRTY_PAGES, "VFIO_IOMMU_DIRTY_PAGES" },
    { 0, NULL }
};

static const struct name group_names[] = {
    { VFIO_GROUP_GET_STATUS, "VFIO_GROUP_GET_STATUS" },
    { VFIO_GROUP_SET_CONTAINER, "VFIO_GROUP_SET_CONTAINER" },
    { VFIO_GROUP_UNSET_CONTAINER, "VFIO_GROUP_UNSET_CONTAINER" },
    { VFIO_GROUP_GET_DEVICE_FD, "VFIO_GROUP_GET_DEVICE_FD" },
    { 0, NULL }
};

static const struct name device_names[] = {
    { VFIO_DEVICE_GET_INFO, "VFIO_DEVICE_GET_INFO" },
    { VFIO_DEVICE_GET_REGION_INFO, "VFIO_DEVICE_GET_REGION_INFO" },
    { VFIO_DEVICE_GET_IRQ_INFO, "VFIO_DEVICE_GET_IRQ_INFO" },
    { VFIO_DEVICE_SET_IRQS, "VFIO_DEVICE_SET_IRQS" },
    { VFIO_DEVICE_RESET, "VFIO_DEVICE_RESET" },
    { VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO" },
    { VFIO_DEVICE_PCI_HOT_RESET, "VFIO_DEVICE_PCI_HOT_RESET" },
    { VFIO_DEVICE_QUERY_GFX_PLANE, "VFIO_DEVICE_QUERY_GFX_PLANE" },
    { VFIO_DEVICE_GET_GFX_DMABUF, "VFIO_DEVICE_GET_GFX_DMABUF" },
    { VFIO_DEVICE_IOEVENTFD, "VFIO_DEVICE_IOEVENTFD" },
    { VFIO_DEVICE_FEATURE, "VFIO_DEVICE_FEATURE" },
    { VFIO_DEVICE_BIND_IOMMUFD, "VFIO_DEVICE_BIND_IOMMUFD" },
    { VFIO_DEVICE_ATTACH_IOMMUFD_PT, "VFIO_DEVICE_ATTACH_IOMMUFD_PT" },
    { VFIO_DEVICE_DETACH_IOMMUFD_PT, "VFIO_DEVICE_DETACH_IOMMUFD_PT" },
    { 0, NULL }
};

static const struct name iommufd_names[] = {
    { IOMMU_DESTROY, "IOMMU_DESTROY" },
    { IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC" },
    { IOMMU_IOAS_ALLOW_IOVAS, "IOMMU_IOAS_ALLOW_IOVAS" },
    { IOMMU_IOAS_COPY, "IOMMU_IOAS_COPY" },
    { IOMMU_IOAS_IOVA_RANGES, "IOMMU_IOAS_IOVA_RANGES" },
    { IOMMU_IOAS_MAP, "IOMMU_IOAS_MAP" },
    { IOMMU_IOAS_UNMAP, "IOMMU_IOAS_UNMAP" },
    { IOMMU_OPTION, "IOMMU_OPTION" },
    { IOMMU_VFIO_IOAS, "IOMMU_VFIO_IOAS" },
    { IOMMU_HWPT_ALLOC, "IOMMU_HWPT_ALLOC" },
    { IOMMU_GET_HW_INFO, "IOMMU_GET_HW_INFO" },
    { IOMMU_HWPT_SET_DIRTY_TRACKING, "IOMMU_HWPT_SET_DIRTY_TRACKING" },
    { IOMMU_HWPT_GET_DIRTY_BITMAP, "IOMMU_HWPT_GET_DIRTY_BITMAP" },
    { IOMMU_HWPT_INVALIDATE, "IOMMU_HWPT_INVALIDATE" },
    { IOMMU_FAULT_QUEUE_ALLOC, "IOMMU_FAULT_QUEUE_ALLOC" },
    { IOMMU_IOAS_MAP_FILE, "IOMMU_IOAS_MAP_FILE" },
    { IOMMU_VIOMMU_ALLOC, "IOMMU_VIOMMU_ALLOC" },
    { IOMMU_VDEVICE_ALLOC, "IOMMU_VDEVICE_ALLOC" },
    { IOMMU_IOAS_CHANGE_PROCESS, "IOMMU_IOAS_CHANGE_PROCESS" },
    { 0, NULL }
};

static const struct name datafd_names[] = {
    { VFIO_MIG_GET_PRECOPY_INFO, "VFIO_MIG_GET_PRECOPY_INFO" },
    { 0, NULL }
};

const char *hs_ioctl_name(enum hs_kind kind, unsigned long req)
{
    const struct name *t;

    switch (kind) {
    case HS_CONTAINER: t = container_names; break;
    case HS_GROUP: t = group_names; break;
    case HS_DEVICE: t = device_names; break;
    case HS_IOMMUFD: t = iommufd_names; break;
    case HS_DATAFD: t = datafd_names; break;
    default: return "unknown";
    }
    for (; t->name; t++) {
        if (t->req == req) {
            return t->name;
        }
    }
    return "unknown";
}

void hs_decode_range(struct hs_call *c, enum hs_kind kind, unsigned long req,
                     const void *arg)
{
    if (!arg) {
        return;
    }
    if (kind == HS_CONTAINER) {
        if (req == VFIO_IOMMU_MAP_DMA) {
            const struct vfio_iommu_type1_dma_map *m = arg;
            hs_call_range(c, m->iova, m->size);
        } else if (req == VFIO_IOMMU_UNMAP_DMA) {
            const struct vfio_iommu_type1_dma_unmap *u = arg;
            if (u->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
                hs_call_range(c, 0, 0);
                c->has_range = true;
                c->first = 0;
                c->last = UINT64_MAX;
            } else {
                hs_call_range(c, u->iova, u->size);
            }
        } else if (req == VFIO_IOMMU_DIRTY_PAGES) {
            const struct vfio_iommu_type1_dirty_bitmap *d = arg;
            if ((d->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP) &&
                d->argsz >= sizeof(*d) +
                            sizeof(struct vfio_iommu_type1_dirty_bitmap_get)) {
                const struct vfio_iommu_type1_dirty_bitmap_get *g =
                    (const void *)d->data;
                hs_call_range(c, g->iova, g->size);
            }
        }
    } else if (kind == HS_IOMMUFD) {
        if (req == IOMMU_IOAS_MAP) {
            const struct iommu_ioas_map *m = arg;
            if (m->flags & IOMMU_IOAS_MAP_FIXED_IOVA) {
                hs_call_range(c, m->iova, m->length);
            }
        } else if (req == IOMMU_IOAS_MAP_FILE) {
            const struct iommu_ioas_map_file *m = arg;
            if (m->flags & IOMMU_IOAS_MAP_FIXED_IOVA) {
                hs_call_range(c, m->iova, m->length);
            }
        } else if (req == IOMMU_IOAS_UNMAP) {
            const struct iommu_ioas_unmap *u = arg;
            hs_call_range(c, u->iova, u->length);
        } else if (req == IOMMU_HWPT_GET_DIRTY_BITMAP) {
            const struct iommu_hwpt_get_dirty_bitmap *g = arg;
            hs_call_range(c, g->iova, g->length);
        }
    } else if (kind == HS_DEVICE && req == VFIO_DEVICE_FEATURE) {
        const struct vfio_device_feature *f = arg;
        if ((f->flags & VFIO_DEVICE_FEATURE_MASK) ==
                VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT &&
            f->argsz >= sizeof(*f) +
                        sizeof(struct vfio_device_feature_dma_logging_report)) {
            const struct vfio_device_feature_dma_logging_report *r =
                (const void *)f->data;
            hs_call_range(c, r->iova, r->length);
        }
    }
}
