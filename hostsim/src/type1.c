/*
 * Legacy VFIO: the container (/dev/vfio/vfio), the group (/dev/vfio/N) and
 * the type1 IOMMU backend behind the container.
 *
 * Semantics follow drivers/vfio/container.c (vfio_fops_unl_ioctl,
 * vfio_ioctl_check_extension, vfio_ioctl_set_iommu), drivers/vfio/group.c
 * (vfio_group_ioctl_get_status, _set_container, _unset_container,
 * _get_device_fd) and drivers/vfio/vfio_iommu_type1.c
 * (vfio_iommu_type1_check_extension, _get_info, vfio_dma_do_map,
 * vfio_iommu_type1_unmap_dma + vfio_dma_do_unmap, verify_bitmap_size,
 * update_user_bitmap, vfio_iova_dirty_bitmap, vfio_iommu_type1_dirty_pages).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

struct hs_group *hs_groups[HS_MAX_DEVS];

/* group.c vfio_group_fops_open: one opener at a time */
static int group_open(struct hs_obj *o, int id)
{
    struct hs_group *g;
    int slot = -1;

    for (int i = 0; i < HS_MAX_DEVS; i++) {
        if (hs_groups[i] && hs_groups[i]->id == id) {
            return -EBUSY;
        }
        if (!hs_groups[i] && slot < 0) {
            slot = i;
        }
    }
    if (slot < 0) {
        return -EBUSY;
    }
    g = calloc(1, sizeof(*g));
    g->id = id;
    hs_groups[slot] = g;
    o->u.group = g;
    return 0;
}

uint64_t hs_type1_pgsize(void)
{
    uint64_t b = hs_cfg.type1_iova_pgsizes;

    return b ? b & -b : HS_PAGE_SIZE;
}

/* DIRTY_BITMAP_BYTES(n): bytes of a u64-granular bitmap of n bits */
static uint64_t bitmap_bytes(uint64_t npages)
{
    return (npages + 63) / 64 * 8;
}

/* vfio_iommu_type1.c verify_bitmap_size(), with the configured maximum */
static int verify_bitmap_size(uint64_t npages, uint64_t bitmap_size)
{
    if (!npages || !bitmap_size ||
        bitmap_size > hs_cfg.type1_max_dirty_bitmap_size ||
        bitmap_size < bitmap_bytes(npages)) {
        return -EINVAL;
    }
    return 0;
}

static int ffs64(uint64_t v)
{
    return v ? __builtin_ctzll(v) : 64;
}

/* ------------------------------------------------------------ container */

static int container_open(struct hs_obj *o, int id)
{
    struct hs_container *ct = calloc(1, sizeof(*ct));

    (void)id;
    ct->dma_avail = hs_cfg.type1_dma_avail;
    o->u.container = ct;
    return 0;
}

static long check_extension(struct hs_container *ct, unsigned long arg)
{
    /* container.c: before SET_IOMMU every registered driver is asked */
    switch (arg) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_TYPE1_NESTING_IOMMU:
    case VFIO_UNMAP_ALL:
        return 1;
    case VFIO_UPDATE_VADDR:
        /* "iommu && !vfio_iommu_has_emulated(iommu)" */
        return ct->iommu_set ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
        return ct->iommu_set ? 1 : 0;
    default:
        return 0;
    }
}

static long get_info(struct hs_container *ct, void *arg)
{
    struct vfio_iommu_type1_info *info = arg;
    uint8_t caps[256];
    size_t csz = 0, minsz = offsetof(struct vfio_iommu_type1_info, cap_offset);
    struct vfio_info_cap_header *prev = NULL;

    (void)ct;
    if (info->argsz < minsz) {
        return -EINVAL;
    }
    memset(caps, 0, sizeof(caps));
    info->flags = VFIO_IOMMU_INFO_PGSIZES;
    info->iova_pgsizes = hs_cfg.type1_iova_pgsizes;

    /* chain in kernel order: migration, dma_avail, iova_range */
#define ADD_CAP(type, var) \
    type *var = (type *)(caps + csz); \
    if (prev) { prev->next = (uint32_t)(sizeof(*info) + csz); } \
    prev = &var->header; \
    csz += (sizeof(type) + 7) & ~7ul;

    if (hs_cfg.type1_migration_cap) {
        ADD_CAP(struct vfio_iommu_type1_info_cap_migration, mig);
        mig->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
        mig->header.version = 1;
        mig->flags = 0;
        mig->pgsize_bitmap = hs_cfg.type1_pgsize_bitmap;
        mig->max_dirty_bitmap_size = hs_cfg.type1_max_dirty_bitmap_size;
    }
    {
        ADD_CAP(struct vfio_iommu_type1_info_dma_avail, av);
        av->header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
        av->header.version = 1;
        av->avail = ct->dma_avail;
    }
    {
        struct vfio_iommu_type1_info_cap_iova_range *ir =
            (void *)(caps + csz);
        struct iommu_iova_range r[2];
        int n = hs_iova_ranges(r, 2);

        if (prev) {
            prev->next = (uint32_t)(sizeof(*info) + csz);
        }
        prev = &ir->header;
        ir->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
        ir->header.version = 1;
        ir->nr_iovas = (uint32_t)n;
        for (int i = 0; i < n; i++) {
            ir->iova_ranges[i].start = r[i].start;
            ir->iova_ranges[i].end = r[i].last;
        }
        csz += sizeof(*ir) + (size_t)n * sizeof(struct vfio_iova_range);
    }
#undef ADD_CAP
    info->flags |= VFIO_IOMMU_INFO_CAPS;
    if (info->argsz < sizeof(*info) + csz) {
        info->argsz = (uint32_t)(sizeof(*info) + csz);
        info->cap_offset = 0;
    } else {
        memcpy((uint8_t *)info + sizeof(*info), caps, csz);
        info->cap_offset = sizeof(*info);
    }
    return 0;
}

static long map_dma(struct hs_call *c, struct hs_container *ct, void *arg)
{
    struct vfio_iommu_type1_dma_map *map = arg;
    uint64_t pgsize = hs_type1_pgsize();
    uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
                    VFIO_DMA_MAP_FLAG_VADDR;
    bool set_vaddr;
    int prot = 0;
    struct hs_map *m;
    size_t idx;

    hs_call_hex(c, "iova", map->iova);
    hs_call_hex(c, "size", map->size);
    hs_call_hex(c, "vaddr", map->vaddr);
    hs_call_hex(c, "flags", map->flags);
    if (map->argsz < offsetof(struct vfio_iommu_type1_dma_map, size) + 8 ||
        (map->flags & ~mask)) {
        return -EINVAL;
    }
    if (!ct->iommu_set) {
        return -EINVAL;
    }
    set_vaddr = map->flags & VFIO_DMA_MAP_FLAG_VADDR;
    if (map->flags & VFIO_DMA_MAP_FLAG_WRITE) {
        prot |= HS_PROT_WRITE;
    }
    if (map->flags & VFIO_DMA_MAP_FLAG_READ) {
        prot |= HS_PROT_READ;
    }
    if ((prot && set_vaddr) || (!prot && !set_vaddr)) {
        return -EINVAL;
    }
    if (!map->size || ((map->size | map->iova | map->vaddr) & (pgsize - 1))) {
        return -EINVAL;
    }
    if (map->iova + map->size - 1 < map->iova ||
        map->vaddr + map->size - 1 < map->vaddr) {
        return -EINVAL;
    }
    m = hs_maplist_find(&ct->maps, map->iova, map->iova + map->size - 1, &idx);
    if (set_vaddr) {
        if (!m) {
            return -ENOENT;
        }
        if (m->iova != map->iova || m->length != map->size) {
            return -EINVAL;
        }
        m->vaddr = map->vaddr;
        return 0;
    }
    if (m) {
        return -EEXIST;
    }
    if (!ct->dma_avail) {
        return -ENOSPC;
    }
    if (!hs_iova_valid(map->iova, map->iova + map->size - 1)) {
        return -EINVAL;
    }
    m = hs_map_new(map->iova, map->size, prot);
    m->vaddr = map->vaddr;
    hs_maplist_insert(&ct->maps, m);
    ct->dma_avail--;
    return 0;
}

/*
 * Report the dirty pages of mapping m into the user bitmap (bits relative
 * to base).  Perpetual mode is the kernel's behaviour for IOMMU-backed
 * groups that never pin pages: every page of every mapping is dirty
 * (update_user_bitmap: "if (iommu->num_non_pinned_groups &&
 * dma->iommu_mapped) bitmap_set(dma->bitmap, 0, nbits)").  Precise mode
 * reports only pages the device wrote.  Either way the mapping's record is
 * cleared afterwards, as vfio_iova_dirty_bitmap() does.
 */
static uint64_t report_map(struct hs_map *m, uint64_t *ubitmap, uint64_t base,
                           uint64_t pgsize)
{
    uint64_t npages = m->length / pgsize, n = 0;

    for (uint64_t p = 0; p < npages; p++) {
        bool dirty;

        if (hs_cfg.type1_precise) {
            uint64_t pg4k = p * (pgsize / HS_PAGE_SIZE);
            dirty = false;
            for (uint64_t k = 0; k < pgsize / HS_PAGE_SIZE; k++) {
                dirty |= hs_bits_test(m->t1_dirty, pg4k + k);
            }
        } else {
            dirty = true;
        }
        if (dirty) {
            hs_user_bit_set(ubitmap, base, pgsize, m->iova + p * pgsize);
            n++;
        }
    }
    if (m->t1_dirty) {
        memset(m->t1_dirty, 0, (m->length / HS_PAGE_SIZE + 63) / 64 * 8);
    }
    return n;
}

static long unmap_dma(struct hs_call *c, struct hs_container *ct, void *arg)
{
    struct vfio_iommu_type1_dma_unmap *unmap = arg;
    struct vfio_bitmap bitmap = { 0 };
    uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                    VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL;
    size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, data);
    uint64_t pgsize = hs_type1_pgsize(), iova = unmap->iova, size;
    uint64_t unmapped = 0, dirty = 0, lost = 0;
    bool unmap_all = unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL;
    bool get_dirty = unmap->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
    bool vaddr_only = unmap->flags & VFIO_DMA_UNMAP_FLAG_VADDR;
    struct hs_map *m;
    size_t idx;

    hs_call_hex(c, "iova", unmap->iova);
    hs_call_hex(c, "size", unmap->size);
    hs_call_hex(c, "flags", unmap->flags);
    if (unmap->argsz < minsz || (unmap->flags & ~mask)) {
        return -EINVAL;
    }
    if (get_dirty && (unmap->flags & (VFIO_DMA_UNMAP_FLAG_ALL |
                                      VFIO_DMA_UNMAP_FLAG_VADDR))) {
        return -EINVAL;
    }
    if (get_dirty) {
        if (unmap->argsz < minsz + sizeof(bitmap)) {
            return -EINVAL;
        }
        memcpy(&bitmap, unmap->data, sizeof(bitmap));
        hs_call_u64(c, "pgsize", bitmap.pgsize);
        hs_call_u64(c, "bitmap_size", bitmap.size);
        if (!bitmap.data || !bitmap.pgsize) {
            return -EINVAL;
        }
        int r = verify_bitmap_size(unmap->size >> ffs64(bitmap.pgsize),
                                   bitmap.size);
        if (r) {
            return r;
        }
    }
    if (!ct->iommu_set) {
        return -EINVAL;
    }
    /* vfio_dma_do_unmap() */
    if (iova & (pgsize - 1)) {
        return -EINVAL;
    }
    size = unmap->size;
    if (unmap_all) {
        if (iova || size) {
            return -EINVAL;
        }
        size = UINT64_MAX;
    } else if (!size || (size & (pgsize - 1)) || iova + size - 1 < iova) {
        return -EINVAL;
    }
    if (get_dirty && (!ct->dirty_tracking || bitmap.pgsize != pgsize)) {
        return -EINVAL;
    }
    /* v2: the range must not bisect a mapping */
    if (ct->v2 && !unmap_all) {
        m = hs_maplist_find(&ct->maps, iova, iova, NULL);
        if (m && m->iova != iova) {
            return -EINVAL;
        }
        m = hs_maplist_find(&ct->maps, iova + size - 1, iova + size - 1, NULL);
        if (m && m->iova + m->length != iova + size) {
            return -EINVAL;
        }
    }
    if (hs_maplist_find(&ct->maps, iova,
                        unmap_all ? UINT64_MAX : iova + size - 1, &idx)) {
        uint64_t last = unmap_all ? UINT64_MAX : iova + size - 1;
        size_t k;

        for (k = idx; k < ct->maps.n && ct->maps.v[k]->iova <= last; k++) {
            m = ct->maps.v[k];
            /* v1: a request offset into a mapping stops the unmap */
            if (!ct->v2 && iova > m->iova) {
                break;
            }
            unmapped += m->length;
            if (vaddr_only) {
                /* the model keeps no pinned state; VADDR only marks intent */
                continue;
            }
            if (get_dirty) {
                dirty += report_map(m, bitmap.data, unmap->iova, pgsize);
            } else if (ct->dirty_tracking) {
                lost += hs_map_count(m, m->t1_dirty);
            }
        }
        if (!vaddr_only) {
            ct->dma_avail += (uint32_t)(k - idx);
            hs_maplist_remove_range(&ct->maps, idx, k);
        }
    }
    unmap->size = unmapped;
    hs_call_hex(c, "unmapped", unmapped);
    if (lost) {
        hs_lost_dirty_pages += lost;
        hs_call_u64(c, "lost_dirty_pages", lost);
    }
    if (get_dirty) {
        hs_call_u64(c, "dirty_pages", dirty);
    }
    return 0;
}

static long dirty_pages(struct hs_call *c, struct hs_container *ct, void *arg)
{
    struct vfio_iommu_type1_dirty_bitmap *d = arg;
    uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
                    VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
                    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    size_t minsz = offsetof(struct vfio_iommu_type1_dirty_bitmap, data);

    hs_call_hex(c, "flags", d->flags);
    if (!ct->iommu_set) {
        return -EINVAL;
    }
    if (!ct->v2) {
        return -EACCES;
    }
    if (d->argsz < minsz || (d->flags & ~mask)) {
        return -EINVAL;
    }
    /* only one flag at a time (__ffs(flags) != __fls(flags)) */
    if (!d->flags || (d->flags & (d->flags - 1))) {
        return -EINVAL;
    }
    if (d->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
        hs_call_str(c, "op", "start");
        if (!ct->dirty_tracking) {
            /* vfio_dma_bitmap_alloc(): npages > DIRTY_BITMAP_PAGES_MAX */
            for (size_t i = 0; i < ct->maps.n; i++) {
                if (ct->maps.v[i]->length / hs_type1_pgsize() > INT_MAX) {
                    return -EINVAL;
                }
            }
            for (size_t i = 0; i < ct->maps.n; i++) {
                struct hs_map *m = ct->maps.v[i];
                free(m->t1_dirty);
                m->t1_dirty = NULL;
            }
            ct->dirty_tracking = true;
        }
        return 0;
    }
    if (d->flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
        hs_call_str(c, "op", "stop");
        ct->dirty_tracking = false;
        for (size_t i = 0; i < ct->maps.n; i++) {
            free(ct->maps.v[i]->t1_dirty);
            ct->maps.v[i]->t1_dirty = NULL;
        }
        return 0;
    }
    /* GET_BITMAP */
    {
        struct vfio_iommu_type1_dirty_bitmap_get range;
        uint64_t pgsize = hs_type1_pgsize(), n = 0;
        size_t data_size = d->argsz - minsz;
        struct hs_map *m;

        hs_call_str(c, "op", "get_bitmap");
        if (!data_size || data_size < sizeof(range)) {
            return -EINVAL;
        }
        memcpy(&range, d->data, sizeof(range));
        hs_call_hex(c, "iova", range.iova);
        hs_call_hex(c, "size", range.size);
        hs_call_u64(c, "pgsize", range.bitmap.pgsize);
        hs_call_u64(c, "bitmap_size", range.bitmap.size);
        if (range.iova + range.size < range.iova) {
            return -EINVAL;
        }
        if (!range.bitmap.data || !range.bitmap.pgsize) {
            return -EINVAL;
        }
        int r = verify_bitmap_size(range.size >> ffs64(range.bitmap.pgsize),
                                   range.bitmap.size);
        if (r) {
            return r;
        }
        if (range.bitmap.pgsize != pgsize || (range.iova & (pgsize - 1)) ||
            !range.size || (range.size & (pgsize - 1))) {
            return -EINVAL;
        }
        if (!ct->dirty_tracking) {
            return -EINVAL;
        }
        /* vfio_iova_dirty_bitmap(): no bisected mapping at either end */
        m = hs_maplist_find(&ct->maps, range.iova, range.iova, NULL);
        if (m && m->iova != range.iova) {
            return -EINVAL;
        }
        m = hs_maplist_find(&ct->maps, range.iova + range.size - 1,
                            range.iova + range.size - 1, NULL);
        if (m && m->iova + m->length != range.iova + range.size) {
            return -EINVAL;
        }
        size_t i;

        if (hs_maplist_find(&ct->maps, range.iova,
                            range.iova + range.size - 1, &i)) {
            for (; i < ct->maps.n; i++) {
                m = ct->maps.v[i];
                if (m->iova > range.iova + range.size - 1) {
                    break;
                }
                if (m->iova >= range.iova) {
                    n += report_map(m, range.bitmap.data, range.iova,
                                    pgsize);
                }
            }
        }
        hs_call_u64(c, "dirty_pages", n);
        return 0;
    }
}

static long container_ioctl(struct hs_call *c, int fd, struct hs_obj *o,
                            unsigned long req, void *arg)
{
    struct hs_container *ct = o->u.container;

    (void)fd;
    switch (req) {
    case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
        hs_call_u64(c, "extension", (uint64_t)(uintptr_t)arg);
        return check_extension(ct, (unsigned long)(uintptr_t)arg);
    case VFIO_SET_IOMMU: {
        unsigned long type = (unsigned long)(uintptr_t)arg;

        hs_call_u64(c, "type", type);
        /* container.c vfio_ioctl_set_iommu(): needs a group, only once */
        if (!ct->ngroups || ct->iommu_set) {
            return -EINVAL;
        }
        if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU) {
            return -ENODEV;
        }
        ct->iommu_set = true;
        ct->v2 = type == VFIO_TYPE1v2_IOMMU;
        return 0;
    }
    case VFIO_IOMMU_GET_INFO:
        if (!ct->iommu_set) {
            return -EINVAL;
        }
        return get_info(ct, arg);
    case VFIO_IOMMU_MAP_DMA:
        return map_dma(c, ct, arg);
    case VFIO_IOMMU_UNMAP_DMA:
        return unmap_dma(c, ct, arg);
    case VFIO_IOMMU_DIRTY_PAGES:
        return dirty_pages(c, ct, arg);
    default:
        /*
         * container.c passes unknown ioctls to the IOMMU driver (type1
         * answers -ENOTTY); without a driver the answer is -EINVAL
         */
        return hs_unhandled(c, req, ct->iommu_set ? ENOTTY : EINVAL);
    }
}

static void container_release(struct hs_obj *o)
{
    struct hs_container *ct = o->u.container;

    /* only reached when neither an fd nor a group refers to it */
    hs_maplist_clear(&ct->maps);
    free(ct);
}

const struct hs_file_ops hs_container_fops = {
    .kind = HS_CONTAINER,
    .name = "container",
    .open = container_open,
    .ioctl = container_ioctl,
    .release = container_release,
};

/* ------------------------------------------------------------ group */

/*
 * container.c vfio_group_detach_container(), for UNSET_CONTAINER and for
 * the group fd's release alike: the group leaves its container, and the
 * last group to leave takes the IOMMU driver with it -- type1's release
 * frees the vfio_iommu with its mappings and tracking state, and the next
 * SET_IOMMU opens a fresh one (vfio_iommu_type1_open: dma_avail =
 * dma_entry_limit).  The group's reference on the container goes last.
 */
static void group_detach_container(struct hs_group *g)
{
    struct hs_container *ct = g->container;
    struct hs_obj *co = g->container_obj;

    ct->ngroups--;
    if (!ct->ngroups) {
        ct->iommu_set = false;
        hs_maplist_clear(&ct->maps);
        ct->dirty_tracking = false;
        ct->dma_avail = hs_cfg.type1_dma_avail;
    }
    g->container = NULL;
    g->container_obj = NULL;
    hs_obj_put(co);
}

static long group_ioctl(struct hs_call *c, int fd, struct hs_obj *go,
                        unsigned long req, void *arg)
{
    struct hs_group *g = go->u.group;

    (void)fd;
    switch (req) {
    case VFIO_GROUP_GET_STATUS: {
        struct vfio_group_status *st = arg;

        if (st->argsz < sizeof(*st)) {
            return -EINVAL;
        }
        st->flags = VFIO_GROUP_FLAGS_VIABLE;
        if (g->container) {
            st->flags |= VFIO_GROUP_FLAGS_CONTAINER_SET;
        }
        hs_call_hex(c, "flags", st->flags);
        return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
        int cfd = *(int *)arg;
        struct hs_obj *co = hs_fd_get(cfd);

        hs_call_i64(c, "container_fd", cfd);
        if (g->container) {
            return -EINVAL;
        }
        if (!co || co->ops->kind != HS_CONTAINER) {
            return -EINVAL;
        }
        g->container = co->u.container;
        g->container_obj = co;
        co->refs++;     /* the group holds the container */
        g->container->ngroups++;
        return 0;
    }
    case VFIO_GROUP_UNSET_CONTAINER:
        if (!g->container) {
            return -EINVAL;
        }
        if (g->device_fds) {
            return -EBUSY;
        }
        group_detach_container(g);
        return 0;
    case VFIO_GROUP_GET_DEVICE_FD: {
        const char *name = arg;
        struct hs_device *dev = NULL;
        struct hs_devfd *d;

        hs_call_str(c, "name", name ? name : "");
        if (!g->container || !g->container->iommu_set) {
            return -EINVAL;
        }
        /* names may carry " vf_token=..." after the device name */
        for (int i = 0; name && i < hs_cfg.ndevs; i++) {
            const char *dn = hs_cfg.dev[i].name;
            size_t len = strlen(dn);

            if (hs_cfg.dev[i].group == g->id && !strncmp(name, dn, len) &&
                (!name[len] || name[len] == ' ')) {
                dev = hs_device_get(i);
            }
        }
        if (!dev) {
            return -ENODEV;
        }
        d = hs_devfd_new(dev, true);
        d->group = g;
        /* counted first: a failed install releases the fd, which uncounts */
        g->device_fds++;
        return hs_obj_install_new(&hs_device_fops, d, O_CLOEXEC);
    }
    default:
        return hs_unhandled(c, req, ENOTTY);
    }
}

static void group_release(struct hs_obj *go)
{
    struct hs_group *g = go->u.group;

    /* group.c vfio_group_fops_release(): it leaves its container */
    if (g->container) {
        group_detach_container(g);
    }
    for (int i = 0; i < HS_MAX_DEVS; i++) {
        if (hs_groups[i] == g) {
            hs_groups[i] = NULL;
        }
    }
    if (g->device_fds) {
        g->closed = true;   /* the device fds free it */
        return;
    }
    free(g);
}

const struct hs_file_ops hs_group_fops = {
    .kind = HS_GROUP,
    .name = "group",
    .open = group_open,
    .ioctl = group_ioctl,
    .release = group_release,
};
