/*
 * iommufd (/dev/iommu): IOAS, HW pagetables (IOMMU domains) with dirty
 * tracking, and the device bind/attach calls of the VFIO cdev.
 *
 * Semantics follow drivers/iommu/iommufd/: main.c (iommufd_fops_ioctl:
 * size checks, unknown commands -> ENOTTY; iommufd_destroy), ioas.c
 * (iommufd_ioas_alloc_ioctl, iommufd_ioas_iova_ranges, iommufd_ioas_map,
 * iommufd_ioas_unmap), io_pagetable.c (iopt_check_iova,
 * iopt_unmap_iova_range, iommufd_check_iova_range,
 * iommu_read_and_clear_dirty, iopt_set_dirty_tracking), hw_pagetable.c
 * (iommufd_hwpt_alloc, iommufd_hwpt_paging_alloc,
 * iommufd_hwpt_set_dirty_tracking, iommufd_hwpt_get_dirty_bitmap),
 * device.c (iommufd_get_hw_info, iommufd_device_attach/replace/detach)
 * and drivers/vfio/device_cdev.c (vfio_df_ioctl_bind_iommufd,
 * vfio_df_ioctl_attach_pt, vfio_df_ioctl_detach_pt); the per-device
 * dirty-tracking capability and its attach rule from
 * drivers/iommu/intel/iommu.c (intel_iommu_capable,
 * prepare_domain_attach_device).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostsim.h"

#define ULONG_MAX_U64 ((uint64_t)ULONG_MAX)

static uint32_t alloc_id(struct hs_ictx *ctx)
{
    /* xa_alloc(): lowest free id from 1 */
    for (uint32_t id = 1; id < HS_MAX_IOBJ; id++) {
        if (ctx->objs[id].type == HS_IOBJ_FREE) {
            return id;
        }
    }
    return 0;
}

struct hs_ioas *hs_ictx_ioas(struct hs_ictx *ctx, uint32_t id)
{
    if (id >= HS_MAX_IOBJ || ctx->objs[id].type != HS_IOBJ_IOAS) {
        return NULL;
    }
    return ctx->objs[id].u.ioas;
}

struct hs_hwpt *hs_ictx_hwpt(struct hs_ictx *ctx, uint32_t id)
{
    if (id >= HS_MAX_IOBJ || ctx->objs[id].type != HS_IOBJ_HWPT) {
        return NULL;
    }
    return ctx->objs[id].u.hwpt;
}

static uint64_t ioas_alignment(struct hs_ioas *ioas)
{
    /* iopt_init_table: 1; each domain raises it to its smallest page */
    return ioas->ndomains ? HS_PAGE_SIZE : 1;
}

static int ioas_ranges(struct hs_ioas *ioas, struct iommu_iova_range *r,
                       int max)
{
    if (!ioas->ndomains) {
        if (max >= 1) {
            r[0].start = 0;
            r[0].last = ULONG_MAX_U64;
        }
        return 1;
    }
    return hs_iova_ranges(r, max);
}

static bool ioas_range_allowed(struct hs_ioas *ioas, uint64_t first,
                               uint64_t last)
{
    struct iommu_iova_range r[4];
    int n = ioas_ranges(ioas, r, 4);

    for (int i = 0; i < n; i++) {
        if (first >= r[i].start && last <= r[i].last) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ IOAS */

static long ioas_alloc(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_ioas_alloc *cmd = arg;
    uint32_t id;

    if (cmd->flags) {
        return -EOPNOTSUPP;
    }
    id = alloc_id(ctx);
    if (!id) {
        return -ENOSPC;
    }
    ctx->objs[id].type = HS_IOBJ_IOAS;
    ctx->objs[id].u.ioas = calloc(1, sizeof(struct hs_ioas));
    cmd->out_ioas_id = id;
    hs_call_u64(c, "ioas_id", id);
    return 0;
}

static long ioas_iova_ranges(struct hs_call *c, struct hs_ictx *ctx,
                             void *arg)
{
    struct iommu_ioas_iova_ranges *cmd = arg;
    struct hs_ioas *ioas;
    struct iommu_iova_range r[4];
    uint32_t max = cmd->num_iovas;
    int n;

    hs_call_u64(c, "ioas_id", cmd->ioas_id);
    if (cmd->reserved) {
        return -EOPNOTSUPP;
    }
    ioas = hs_ictx_ioas(ctx, cmd->ioas_id);
    if (!ioas) {
        return -ENOENT;
    }
    n = ioas_ranges(ioas, r, 4);
    for (int i = 0; i < n && (uint32_t)i < max; i++) {
        ((struct iommu_iova_range *)(uintptr_t)cmd->allowed_iovas)[i] = r[i];
    }
    cmd->num_iovas = (uint32_t)n;
    cmd->out_iova_alignment = ioas_alignment(ioas);
    hs_call_u64(c, "num_iovas", (uint64_t)n);
    if ((uint32_t)n > max) {
        return -EMSGSIZE;   /* the struct is still written back */
    }
    return 0;
}

/* iopt_check_iova(): alignment, reserved ranges, existing areas */
static int check_iova(struct hs_ioas *ioas, uint64_t iova, uint64_t length)
{
    uint64_t last;

    if (iova & (ioas_alignment(ioas) - 1)) {
        return -EINVAL;
    }
    if (__builtin_add_overflow(iova, length - 1, &last)) {
        return -EOVERFLOW;
    }
    if (!ioas_range_allowed(ioas, iova, last)) {
        return -EINVAL;
    }
    if (hs_maplist_find(&ioas->maps, iova, last, NULL)) {
        return -EEXIST;
    }
    return 0;
}

/*
 * IOPT_ALLOC_IOVA: the kernel picks a hole with an alignment derived from
 * the length and user address; the model takes the lowest suitably
 * aligned hole (alignment: largest power of two dividing both the user
 * address and the length, at least the IOAS alignment, at most 1 GiB).
 */
static int alloc_iova(struct hs_ioas *ioas, uint64_t uptr, uint64_t length,
                      uint64_t *out)
{
    struct iommu_iova_range r[4];
    int n = ioas_ranges(ioas, r, 4);
    uint64_t align = HS_PAGE_SIZE;

    while (align < (1ull << 30) && !(uptr & align) && !(length & align) &&
           align * 2 <= length) {
        align *= 2;
    }
    if (align < ioas_alignment(ioas)) {
        align = ioas_alignment(ioas);
    }
    for (int i = 0; i < n; i++) {
        uint64_t cand = (r[i].start + align - 1) & ~(align - 1);

        while (cand >= r[i].start && cand + length - 1 >= cand &&
               cand + length - 1 <= r[i].last) {
            struct hs_map *m = hs_maplist_find(&ioas->maps, cand,
                                               cand + length - 1, NULL);
            if (!m) {
                *out = cand;
                return 0;
            }
            cand = (m->iova + m->length + align - 1) & ~(align - 1);
            if (cand == 0) {
                break;
            }
        }
    }
    return -ENOSPC;
}

static long do_map(struct hs_call *c, struct hs_ictx *ctx, uint32_t ioas_id,
                   uint32_t flags, uint64_t *iova, uint64_t length,
                   uint64_t uptr, int file_fd, uint64_t file_start)
{
    struct hs_ioas *ioas;
    struct hs_map *m;
    int prot = 0, rc;

    if (*iova >= ULONG_MAX_U64 || length >= ULONG_MAX_U64) {
        return -EOVERFLOW;
    }
    if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) {
        return -EINVAL;
    }
    ioas = hs_ictx_ioas(ctx, ioas_id);
    if (!ioas) {
        return -ENOENT;
    }
    /* iopt_alloc_area_pages(): length aligned and non-zero */
    if (!length || (length & (ioas_alignment(ioas) - 1))) {
        return -EINVAL;
    }
    /* the area's page offset must respect the IOAS alignment */
    if (file_fd < 0 && ((uptr % HS_PAGE_SIZE) & (ioas_alignment(ioas) - 1))) {
        return -EINVAL;
    }
    if (flags & IOMMU_IOAS_MAP_FIXED_IOVA) {
        rc = check_iova(ioas, *iova, length);
    } else {
        rc = alloc_iova(ioas, uptr, length, iova);
    }
    if (rc) {
        return rc;
    }
    if (flags & IOMMU_IOAS_MAP_WRITEABLE) {
        prot |= HS_PROT_WRITE;
    }
    if (flags & IOMMU_IOAS_MAP_READABLE) {
        prot |= HS_PROT_READ;
    }
    m = hs_map_new(*iova, length, prot);
    if (file_fd >= 0) {
        m->file_fd = fcntl(file_fd, F_DUPFD_CLOEXEC, 0);
        if (m->file_fd < 0) {
            hs_map_free(m);
            return -EBADF;
        }
        m->file_start = file_start;
    } else {
        m->vaddr = uptr;
    }
    hs_maplist_insert(&ioas->maps, m);
    hs_call_hex(c, "out_iova", *iova);
    return 0;
}

static long ioas_map(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_ioas_map *cmd = arg;
    uint32_t valid = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
                     IOMMU_IOAS_MAP_READABLE;
    uint64_t iova = cmd->iova;
    long rc;

    hs_call_u64(c, "ioas_id", cmd->ioas_id);
    hs_call_hex(c, "iova", cmd->iova);
    hs_call_hex(c, "length", cmd->length);
    hs_call_hex(c, "user_va", cmd->user_va);
    hs_call_hex(c, "flags", cmd->flags);
    if ((cmd->flags & ~valid) || cmd->reserved) {
        return -EOPNOTSUPP;
    }
    rc = do_map(c, ctx, cmd->ioas_id, cmd->flags, &iova, cmd->length,
                cmd->user_va, -1, 0);
    if (!rc) {
        cmd->iova = iova;
    }
    return rc;
}

static long ioas_map_file(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_ioas_map_file *cmd = arg;
    uint32_t valid = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
                     IOMMU_IOAS_MAP_READABLE;
    uint64_t iova = cmd->iova;
    long rc;

    hs_call_u64(c, "ioas_id", cmd->ioas_id);
    hs_call_hex(c, "iova", cmd->iova);
    hs_call_hex(c, "length", cmd->length);
    hs_call_i64(c, "map_fd", cmd->fd);
    hs_call_hex(c, "start", cmd->start);
    hs_call_hex(c, "flags", cmd->flags);
    if (cmd->flags & ~valid) {
        return -EOPNOTSUPP;
    }
    if (cmd->fd < 0 || fcntl(cmd->fd, F_GETFD) < 0) {
        return -EBADF;
    }
    rc = do_map(c, ctx, cmd->ioas_id, cmd->flags, &iova, cmd->length, 0,
                cmd->fd, cmd->start);
    if (!rc) {
        cmd->iova = iova;
    }
    return rc;
}

/* iopt_unmap_iova_range(): areas must be wholly inside [start, last] */
static int unmap_range(struct hs_ioas *ioas, uint64_t start, uint64_t last,
                       uint64_t *unmapped, uint64_t *lost)
{
    struct hs_maplist *l = &ioas->maps;
    size_t i, k;
    int rc = 0;

    *unmapped = 0;
    *lost = 0;
    if (!hs_maplist_find(l, start, last, &i)) {
        return 0;       /* no mapped entries: success */
    }
    for (k = i; k < l->n && l->v[k]->iova <= last; k++) {
        struct hs_map *m = l->v[k];

        if (m->iova < start || m->iova + m->length - 1 > last) {
            /* the areas before this one are already gone */
            rc = -ENOENT;
            break;
        }
        *unmapped += m->length;
        for (int s = 0; s < HS_MAX_HWPT_SLOTS; s++) {
            *lost += hs_map_count(m, m->hwpt_unrep[s]);
        }
    }
    /* the PTEs, and with them their dirty bits, are gone */
    hs_maplist_remove_range(l, i, k);
    return rc;
}

static long ioas_unmap(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_ioas_unmap *cmd = arg;
    struct hs_ioas *ioas;
    uint64_t unmapped = 0, last, lost = 0;
    int rc;

    hs_call_u64(c, "ioas_id", cmd->ioas_id);
    hs_call_hex(c, "iova", cmd->iova);
    hs_call_hex(c, "length", cmd->length);
    ioas = hs_ictx_ioas(ctx, cmd->ioas_id);
    if (!ioas) {
        return -ENOENT;
    }
    if (cmd->iova == 0 && cmd->length == UINT64_MAX) {
        hs_call_bool(c, "unmap_all", true);
        rc = unmap_range(ioas, 0, ULONG_MAX_U64, &unmapped, &lost);
        hs_lost_dirty_pages += lost;
        if (lost) {
            hs_call_u64(c, "lost_dirty_pages", lost);
        }
        if (rc) {
            return rc;
        }
    } else {
        if (cmd->iova >= ULONG_MAX_U64 || cmd->length >= ULONG_MAX_U64) {
            return -EOVERFLOW;
        }
        if (!cmd->length) {
            return -EINVAL;
        }
        if (__builtin_add_overflow(cmd->iova, cmd->length - 1, &last)) {
            return -EOVERFLOW;
        }
        rc = unmap_range(ioas, cmd->iova, last, &unmapped, &lost);
        hs_call_hex(c, "unmapped", unmapped);
        hs_lost_dirty_pages += lost;
        if (lost) {
            hs_call_u64(c, "lost_dirty_pages", lost);
        }
        if (rc) {
            return rc;
        }
        if (!unmapped) {
            return -ENOENT;
        }
    }
    cmd->length = unmapped;
    return 0;
}

static long change_process(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_ioas_change_process *cmd = arg;

    (void)c;
    if (cmd->reserved) {
        return -EOPNOTSUPP;
    }
    /* only file-backed mappings can move to a new process */
    for (uint32_t id = 1; id < HS_MAX_IOBJ; id++) {
        struct hs_ioas *ioas = hs_ictx_ioas(ctx, id);

        for (size_t i = 0; ioas && i < ioas->maps.n; i++) {
            if (ioas->maps.v[i]->file_fd < 0) {
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ HWPT */

static struct hs_devfd *ictx_device(struct hs_ictx *ctx, uint32_t id)
{
    if (id >= HS_MAX_IOBJ || ctx->objs[id].type != HS_IOBJ_DEVICE) {
        return NULL;
    }
    return ctx->objs[id].u.dev;
}

/*
 * Whether the IOMMU instance behind a device can track dirty pages: VT-d
 * ssads_supported(), which intel_iommu_capable() reports as
 * IOMMU_CAP_DIRTY_TRACKING.  Devices behind different IOMMU units can
 * differ (deviceN.iommu_dirty).
 */
static bool dev_iommu_dirty(const struct hs_devfd *d)
{
    return d->dev->cfg->iommu_dirty;
}

static long hwpt_create(struct hs_ictx *ctx, uint32_t ioas_id, uint32_t flags,
                        bool autodomain, uint32_t *out)
{
    struct hs_ioas *ioas = hs_ictx_ioas(ctx, ioas_id);
    struct hs_hwpt *h;
    uint32_t id;
    int slot = -1;

    for (int i = 0; i < HS_MAX_HWPT_SLOTS; i++) {
        if (!ioas->slot_used[i]) {
            slot = i;
            break;
        }
    }
    id = alloc_id(ctx);
    if (slot < 0 || !id) {
        return -ENOSPC;
    }
    /* a new domain gets the existing areas mapped, with clean PTEs */
    for (size_t i = 0; i < ioas->maps.n; i++) {
        hs_map_drop_slot(ioas->maps.v[i], slot);
    }
    h = calloc(1, sizeof(*h));
    h->ioas_id = ioas_id;
    h->slot = slot;
    h->flags = flags;
    h->autodomain = autodomain;
    ioas->slot_used[slot] = true;
    ioas->ndomains++;
    ctx->objs[id].type = HS_IOBJ_HWPT;
    ctx->objs[id].u.hwpt = h;
    *out = id;
    return 0;
}

static void hwpt_destroy(struct hs_ictx *ctx, uint32_t id)
{
    struct hs_hwpt *h = ctx->objs[id].u.hwpt;
    struct hs_ioas *ioas = hs_ictx_ioas(ctx, h->ioas_id);

    if (ioas) {
        ioas->slot_used[h->slot] = false;
        ioas->ndomains--;
        for (size_t i = 0; i < ioas->maps.n; i++) {
            hs_map_drop_slot(ioas->maps.v[i], h->slot);
        }
    }
    free(h);
    ctx->objs[id].type = HS_IOBJ_FREE;
    ctx->objs[id].u.hwpt = NULL;
}

static long hwpt_alloc(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_hwpt_alloc *cmd = arg;
    uint32_t valid = IOMMU_HWPT_ALLOC_NEST_PARENT |
                     IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    struct hs_devfd *dev;
    uint32_t id;
    long rc;

    hs_call_u64(c, "dev_id", cmd->dev_id);
    hs_call_u64(c, "pt_id", cmd->pt_id);
    hs_call_hex(c, "flags", cmd->flags);
    hs_call_u64(c, "data_type", cmd->data_type);
    if (cmd->reserved) {
        return -EOPNOTSUPP;
    }
    if ((cmd->data_type == IOMMU_HWPT_DATA_NONE && cmd->data_len) ||
        (cmd->data_type != IOMMU_HWPT_DATA_NONE && !cmd->data_len)) {
        return -EINVAL;
    }
    dev = ictx_device(ctx, cmd->dev_id);
    if (!dev) {
        return -ENOENT;
    }
    if (cmd->pt_id >= HS_MAX_IOBJ ||
        ctx->objs[cmd->pt_id].type == HS_IOBJ_FREE) {
        return -EINVAL;
    }
    if (ctx->objs[cmd->pt_id].type == HS_IOBJ_HWPT) {
        /* nested (stage-1) domains are not modelled */
        return hs_unhandled(c, IOMMU_HWPT_ALLOC, EOPNOTSUPP);
    }
    if (ctx->objs[cmd->pt_id].type != HS_IOBJ_IOAS) {
        return -EINVAL;
    }
    if (cmd->flags & ~valid) {
        return -EOPNOTSUPP;
    }
    /* iommufd_hwpt_paging_alloc(): the device's IOMMU must have the cap */
    if ((cmd->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) &&
        !dev_iommu_dirty(dev)) {
        return -EOPNOTSUPP;
    }
    if (cmd->data_type != IOMMU_HWPT_DATA_NONE) {
        return -EOPNOTSUPP;
    }
    rc = hwpt_create(ctx, cmd->pt_id, cmd->flags, false, &id);
    if (rc) {
        return rc;
    }
    cmd->out_hwpt_id = id;
    hs_call_u64(c, "hwpt_id", id);
    return 0;
}

static long get_hw_info(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_hw_info *cmd = arg;
    struct iommu_hw_info_vtd vtd = { 0 };
    struct hs_devfd *dev;
    uint32_t copy;

    hs_call_u64(c, "dev_id", cmd->dev_id);
    hs_call_u64(c, "data_len", cmd->data_len);
    if (cmd->flags || cmd->reserved[0] || cmd->reserved[1] ||
        cmd->reserved[2]) {
        return -EOPNOTSUPP;
    }
    dev = ictx_device(ctx, cmd->dev_id);
    if (!dev) {
        return -ENOENT;
    }
    /* plausible VT-d registers; ECAP bit 46 = SLADS (dirty tracking) */
    vtd.cap_reg = 0x00d2008c40660462ull;
    vtd.ecap_reg = 0x00000000f050daull;
    if (dev_iommu_dirty(dev)) {
        vtd.ecap_reg |= 1ull << 46;
    }
    copy = cmd->data_len < sizeof(vtd) ? cmd->data_len : sizeof(vtd);
    if (cmd->data_len && cmd->data_uptr) {
        memcpy((void *)(uintptr_t)cmd->data_uptr, &vtd, copy);
        if (copy < cmd->data_len) {
            memset((uint8_t *)(uintptr_t)cmd->data_uptr + copy, 0,
                   cmd->data_len - copy);
        }
    }
    cmd->data_len = sizeof(vtd);
    cmd->out_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
    cmd->out_capabilities = dev_iommu_dirty(dev) ? IOMMU_HW_CAP_DIRTY_TRACKING
                                                 : 0;
    cmd->out_max_pasid_log2 = 0;
    hs_call_hex(c, "out_capabilities", cmd->out_capabilities);
    return 0;
}

static long set_dirty_tracking(struct hs_call *c, struct hs_ictx *ctx,
                               void *arg)
{
    struct iommu_hwpt_set_dirty_tracking *cmd = arg;
    struct hs_hwpt *h;
    bool enable = cmd->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE;

    hs_call_u64(c, "hwpt_id", cmd->hwpt_id);
    hs_call_hex(c, "flags", cmd->flags);
    if (cmd->flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) {
        return -EOPNOTSUPP;
    }
    h = hs_ictx_hwpt(ctx, cmd->hwpt_id);
    if (!h) {
        return -ENOENT;
    }
    /* only domains allocated with DIRTY_TRACKING have dirty_ops */
    if (!(h->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) {
        return -EOPNOTSUPP;
    }
    if (enable) {
        /* iopt_clear_dirty_data(): a clean snapshot to start from */
        struct hs_ioas *ioas = hs_ictx_ioas(ctx, h->ioas_id);
        for (size_t i = 0; ioas && i < ioas->maps.n; i++) {
            hs_map_drop_slot(ioas->maps.v[i], h->slot);
        }
    }
    h->dirty_tracking = enable;
    hs_call_bool(c, "enable", enable);
    return 0;
}

static long get_dirty_bitmap(struct hs_call *c, struct hs_ictx *ctx,
                             void *arg)
{
    struct iommu_hwpt_get_dirty_bitmap *cmd = arg;
    struct hs_hwpt *h;
    struct hs_ioas *ioas;
    uint64_t last, cur, align, n = 0;
    bool no_clear = cmd->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    uint64_t *ubitmap = (uint64_t *)(uintptr_t)cmd->data;

    hs_call_u64(c, "hwpt_id", cmd->hwpt_id);
    hs_call_hex(c, "iova", cmd->iova);
    hs_call_hex(c, "length", cmd->length);
    hs_call_u64(c, "page_size", cmd->page_size);
    hs_call_hex(c, "flags", cmd->flags);
    if ((cmd->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) ||
        cmd->reserved) {
        return -EOPNOTSUPP;
    }
    h = hs_ictx_hwpt(ctx, cmd->hwpt_id);
    if (!h) {
        return -ENOENT;
    }
    ioas = hs_ictx_ioas(ctx, h->ioas_id);
    /* iommufd_check_iova_range() */
    if (!cmd->length) {
        return -EINVAL;
    }
    if (__builtin_add_overflow(cmd->iova, cmd->length - 1, &last)) {
        return -EOVERFLOW;
    }
    if (cmd->iova > ULONG_MAX_U64 || last > ULONG_MAX_U64) {
        return -EOVERFLOW;
    }
    align = ioas_alignment(ioas);
    if ((cmd->iova & (align - 1)) || ((last + 1) & (align - 1))) {
        return -EINVAL;
    }
    if (!cmd->page_size) {
        return -EINVAL;
    }
    if ((cmd->iova & (cmd->page_size - 1)) ||
        ((last + 1) & (cmd->page_size - 1))) {
        return -EINVAL;
    }
    if (!(h->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) {
        return -EOPNOTSUPP;
    }
    if (!ubitmap) {
        return -EFAULT;
    }
    /*
     * iommu_read_and_clear_dirty(): walk the areas contiguous from iova
     * (iopt_for_each_contig_area); a hole ends the walk.  The per-chunk
     * status is not propagated by the 6.12 code, so the ioctl succeeds.
     * With tracking off the VT-d op refuses (-EINVAL, also dropped): no
     * bits are reported.
     */
    cur = cmd->iova;
    for (;;) {
        struct hs_map *m = hs_maplist_find(&ioas->maps, cur, cur, NULL);
        uint64_t end;

        if (!m) {
            break;
        }
        end = m->iova + m->length - 1 < last ? m->iova + m->length - 1 : last;
        if (h->dirty_tracking && m->hwpt_dirty[h->slot]) {
            for (uint64_t a = cur & ~(HS_PAGE_SIZE - 1); a <= end;
                 a += HS_PAGE_SIZE) {
                uint64_t bit = (a - m->iova) / HS_PAGE_SIZE;
                if (hs_bits_test(m->hwpt_dirty[h->slot], bit)) {
                    hs_user_bit_set(ubitmap, cmd->iova, cmd->page_size, a);
                    n++;
                    /* userspace has now seen this page's dirt */
                    if (m->hwpt_unrep[h->slot]) {
                        m->hwpt_unrep[h->slot][bit / 64] &=
                            ~(1ull << (bit % 64));
                    }
                    if (!no_clear) {
                        m->hwpt_dirty[h->slot][bit / 64] &=
                            ~(1ull << (bit % 64));
                    }
                }
                if (a + HS_PAGE_SIZE < a) {
                    break;
                }
            }
        }
        if (end >= last) {
            break;
        }
        cur = end + 1;
    }
    hs_call_u64(c, "dirty_pages", n);
    return 0;
}

static long destroy(struct hs_call *c, struct hs_ictx *ctx, void *arg)
{
    struct iommu_destroy *cmd = arg;
    uint32_t id = cmd->id;

    hs_call_u64(c, "id", id);
    if (id >= HS_MAX_IOBJ || ctx->objs[id].type == HS_IOBJ_FREE) {
        return -ENOENT;
    }
    switch (ctx->objs[id].type) {
    case HS_IOBJ_IOAS: {
        struct hs_ioas *ioas = ctx->objs[id].u.ioas;
        /* HWPTs hold a reference on their IOAS */
        if (ioas->ndomains) {
            return -EBUSY;
        }
        hs_maplist_clear(&ioas->maps);
        free(ioas);
        ctx->objs[id].type = HS_IOBJ_FREE;
        return 0;
    }
    case HS_IOBJ_HWPT:
        if (ctx->objs[id].u.hwpt->attached) {
            return -EBUSY;
        }
        hwpt_destroy(ctx, id);
        return 0;
    default:
        /* device objects go away with unbind (closing the device fd) */
        return -EBUSY;
    }
}

static int iommufd_open(struct hs_obj *o, int id)
{
    (void)id;
    o->u.ictx = calloc(1, sizeof(struct hs_ictx));
    return 0;
}

static long iommufd_ioctl(struct hs_call *c, int fd, struct hs_obj *o,
                          unsigned long req, void *arg)
{
    struct hs_ictx *ctx = o->u.ictx;
    static const struct { unsigned long req; uint32_t min; } mins[] = {
        { IOMMU_DESTROY, 8 }, { IOMMU_IOAS_ALLOC, 12 },
        { IOMMU_IOAS_IOVA_RANGES, 32 }, { IOMMU_IOAS_MAP, 40 },
        { IOMMU_IOAS_MAP_FILE, 40 }, { IOMMU_IOAS_UNMAP, 24 },
        { IOMMU_HWPT_ALLOC, 24 }, { IOMMU_GET_HW_INFO, 24 },
        { IOMMU_HWPT_SET_DIRTY_TRACKING, 16 },
        { IOMMU_HWPT_GET_DIRTY_BITMAP, 48 },
        { IOMMU_IOAS_CHANGE_PROCESS, 8 },
    };
    uint32_t size;

    (void)fd;
    /* commands the modelled kernel generation does not have: ENOTTY */
    if (hs_cfg.kernel < 613 && (req == IOMMU_IOAS_MAP_FILE ||
                                req == IOMMU_VIOMMU_ALLOC ||
                                req == IOMMU_VDEVICE_ALLOC)) {
        return -ENOTTY;
    }
    if (hs_cfg.kernel < 614 && req == IOMMU_IOAS_CHANGE_PROCESS) {
        return -ENOTTY;
    }
    if (!arg) {
        return -EFAULT;
    }
    size = *(uint32_t *)arg;
    for (size_t i = 0; i < sizeof(mins) / sizeof(mins[0]); i++) {
        if (mins[i].req == req && size < mins[i].min) {
            return -EINVAL;
        }
    }
    switch (req) {
    case IOMMU_DESTROY: return destroy(c, ctx, arg);
    case IOMMU_IOAS_ALLOC: return ioas_alloc(c, ctx, arg);
    case IOMMU_IOAS_IOVA_RANGES: return ioas_iova_ranges(c, ctx, arg);
    case IOMMU_IOAS_MAP: return ioas_map(c, ctx, arg);
    case IOMMU_IOAS_MAP_FILE: return ioas_map_file(c, ctx, arg);
    case IOMMU_IOAS_UNMAP: return ioas_unmap(c, ctx, arg);
    case IOMMU_IOAS_CHANGE_PROCESS: return change_process(c, ctx, arg);
    case IOMMU_HWPT_ALLOC: return hwpt_alloc(c, ctx, arg);
    case IOMMU_GET_HW_INFO: return get_hw_info(c, ctx, arg);
    case IOMMU_HWPT_SET_DIRTY_TRACKING: return set_dirty_tracking(c, ctx, arg);
    case IOMMU_HWPT_GET_DIRTY_BITMAP: return get_dirty_bitmap(c, ctx, arg);
    default:
        return hs_unhandled(c, req, ENOTTY);
    }
}

static void iommufd_release(struct hs_obj *o)
{
    struct hs_ictx *ctx = o->u.ictx;

    for (uint32_t id = 1; id < HS_MAX_IOBJ; id++) {
        if (ctx->objs[id].type == HS_IOBJ_HWPT) {
            free(ctx->objs[id].u.hwpt);
        } else if (ctx->objs[id].type == HS_IOBJ_IOAS) {
            hs_maplist_clear(&ctx->objs[id].u.ioas->maps);
            free(ctx->objs[id].u.ioas);
        } else if (ctx->objs[id].type == HS_IOBJ_DEVICE) {
            ctx->objs[id].u.dev->bound = false;
            ctx->objs[id].u.dev->hwpt_id = 0;
        }
    }
    free(ctx);
}

const struct hs_file_ops hs_iommufd_fops = {
    .kind = HS_IOMMUFD,
    .name = "iommufd",
    .open = iommufd_open,
    .ioctl = iommufd_ioctl,
    .release = iommufd_release,
};

/* ------------------------------------------------------------ device side */

long hs_iommufd_bind(struct hs_devfd *d, struct hs_obj *ictx_obj,
                     uint32_t *devid)
{
    struct hs_ictx *ctx = ictx_obj->u.ictx;
    uint32_t id = alloc_id(ctx);

    if (!id) {
        return -ENOSPC;
    }
    ctx->objs[id].type = HS_IOBJ_DEVICE;
    ctx->objs[id].u.dev = d;
    d->bound = true;
    d->ictx_obj = ictx_obj;
    ictx_obj->refs++;   /* the binding holds the iommufd context */
    d->devid = id;
    d->hwpt_id = 0;
    *devid = id;
    return 0;
}

static void detach_current(struct hs_devfd *d)
{
    struct hs_ictx *ctx = d->ictx_obj->u.ictx;
    struct hs_hwpt *h = hs_ictx_hwpt(ctx, d->hwpt_id);

    if (h) {
        h->attached--;
        if (!h->attached && h->autodomain) {
            hwpt_destroy(ctx, d->hwpt_id);
        }
    }
    d->hwpt_id = 0;
}

long hs_iommufd_attach(struct hs_call *c, struct hs_devfd *d,
                       uint32_t *pt_id)
{
    struct hs_ictx *ctx = d->ictx_obj->u.ictx;
    uint32_t id = *pt_id, hwpt_id = 0;
    long rc;

    /* iommufd_device_change_pt(): a missing object is ENOENT */
    if (id >= HS_MAX_IOBJ || ctx->objs[id].type == HS_IOBJ_FREE) {
        return -ENOENT;
    }
    if (ctx->objs[id].type == HS_IOBJ_HWPT) {
        /*
         * intel_iommu_attach_device() -> prepare_domain_attach_device():
         * a domain with dirty_ops (allocated with DIRTY_TRACKING) on a
         * device whose IOMMU lacks SSADS is -EINVAL, which iommufd passes
         * up; the device stays where it was.  QEMU reads EINVAL as "this
         * domain is incompatible" and allocates an HWPT of its own.
         */
        if ((ctx->objs[id].u.hwpt->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) &&
            !dev_iommu_dirty(d)) {
            hs_call_str(c, "incompatible", "dirty_tracking");
            return -EINVAL;
        }
        hwpt_id = id;
    } else if (ctx->objs[id].type == HS_IOBJ_IOAS) {
        /* iommufd_device_auto_get_domain(): reuse or allocate */
        for (uint32_t i = 1; i < HS_MAX_IOBJ; i++) {
            struct hs_hwpt *h = hs_ictx_hwpt(ctx, i);
            if (h && h->autodomain && h->ioas_id == id) {
                hwpt_id = i;
                break;
            }
        }
        if (!hwpt_id) {
            rc = hwpt_create(ctx, id, 0, true, &hwpt_id);
            if (rc) {
                return rc;
            }
        }
    } else {
        return -EINVAL;
    }
    if (d->hwpt_id == hwpt_id) {
        *pt_id = hwpt_id;
        return 0;
    }
    /* attach when unattached, replace otherwise */
    ctx->objs[hwpt_id].u.hwpt->attached++;
    if (d->hwpt_id) {
        uint32_t keep = hwpt_id;
        detach_current(d);
        hwpt_id = keep;
    }
    d->hwpt_id = hwpt_id;
    *pt_id = hwpt_id;
    return 0;
}

long hs_iommufd_detach(struct hs_devfd *d)
{
    if (d->hwpt_id) {
        detach_current(d);
    }
    return 0;
}

void hs_iommufd_unbind(struct hs_devfd *d)
{
    struct hs_obj *o = d->ictx_obj;

    if (!d->bound || !o) {
        return;
    }
    hs_iommufd_detach(d);
    o->u.ictx->objs[d->devid].type = HS_IOBJ_FREE;
    o->u.ictx->objs[d->devid].u.dev = NULL;
    d->bound = false;
    d->ictx_obj = NULL;
    hs_obj_put(o);
}
