/*
 * The VFIO PCI device: device info, regions (config space + BAR0), IRQ
 * info, reset, the VFIO_DEVICE_FEATURE dispatcher and the cdev's iommufd
 * bind/attach/detach.
 *
 * Semantics follow drivers/vfio/pci/vfio_pci_core.c
 * (vfio_pci_ioctl_get_info, _get_region_info, _get_irq_info, _set_irqs,
 * vfio_pci_get_irq_count, vfio_pci_ioctl_get_pci_hot_reset_info),
 * drivers/vfio/vfio_main.c (vfio_ioctl_device_feature,
 * vfio_device_fops_unl_ioctl), drivers/vfio/device_cdev.c
 * (vfio_df_ioctl_bind_iommufd, vfio_df_ioctl_attach_pt, _detach_pt) and
 * include/linux/vfio.h (vfio_check_feature).
 *
 * The device is a conventional PCI function (no capabilities, no
 * interrupt pin) with one 32-bit memory BAR holding a small DMA engine:
 *   0x00 DMA_IOVA   0x08 DMA_LEN   0x10 DMA_PATTERN
 *   0x18 DMA_GO (write: run the DMA)   0x20 DMA_STATUS (0 ok, 1 fault)
 *   0x28 DMA_WRITES (ro)  0x30 DMA_BYTES (ro)  0x38 MAGIC (ro)
 *   0x40 SCRATCH (rw, part of the migrated state)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

struct hs_device hs_devs[HS_MAX_DEVS];
struct hs_devfd *hs_devfds[HS_MAX_DEVFDS];

#define BAR_DMA_IOVA 0x00
#define BAR_DMA_LEN 0x08
#define BAR_DMA_PATTERN 0x10
#define BAR_DMA_GO 0x18
#define BAR_DMA_STATUS 0x20
#define BAR_DMA_WRITES 0x28
#define BAR_DMA_BYTES 0x30
#define BAR_MAGIC 0x38
#define BAR_SCRATCH 0x40
#define HS_MAGIC 0x004d495354534f48ull     /* "HOSTSIM" */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void device_init_one(struct hs_device *D, int index)
{
    const struct hs_devcfg *cfg = &hs_cfg.dev[index];
    uint8_t *c = D->config;

    memset(D, 0, sizeof(*D));
    D->index = index;
    D->cfg = cfg;
    put16(c + 0x00, (uint16_t)cfg->vendor);
    put16(c + 0x02, (uint16_t)cfg->device_id);
    c[0x08] = 0x01;                             /* revision */
    c[0x09] = (uint8_t)cfg->class_code;         /* prog-if */
    c[0x0a] = (uint8_t)(cfg->class_code >> 8);
    c[0x0b] = (uint8_t)(cfg->class_code >> 16);
    c[0x0e] = 0x00;                             /* type 0 header */
    /* BAR0: 32-bit non-prefetchable memory, address bits zero */
    put16(c + 0x2c, (uint16_t)cfg->subsys_vendor);
    put16(c + 0x2e, (uint16_t)cfg->subsys_id);
    c[0x3d] = 0;                                /* no INTx pin */
    D->mig_state = VFIO_DEVICE_STATE_RUNNING;
    for (int i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        D->irq_efd[i] = -1;
    }
}

void hs_device_init(void)
{
    memset(hs_devfds, 0, sizeof(hs_devfds));
    hs_lost_dirty_pages = 0;
    for (int i = 0; i < HS_MAX_DEVS; i++) {
        device_init_one(&hs_devs[i], i);
    }
}

struct hs_device *hs_device_get(int index)
{
    if (index < 0 || index >= hs_cfg.ndevs) {
        return NULL;
    }
    return &hs_devs[index];
}

struct hs_device *hs_device_by_name(const char *name)
{
    for (int i = 0; i < hs_cfg.ndevs; i++) {
        if (!strcmp(hs_cfg.dev[i].name, name)) {
            return &hs_devs[i];
        }
    }
    return NULL;
}

struct hs_devfd *hs_devfd_new(struct hs_device *dev, bool from_group)
{
    struct hs_devfd *d = calloc(1, sizeof(*d));

    d->dev = dev;
    d->from_group = from_group;
    for (int i = 0; i < HS_MAX_DEVFDS; i++) {
        if (!hs_devfds[i]) {
            hs_devfds[i] = d;
            break;
        }
    }
    return d;
}

/* a cdev open: the device fd of the device with index id */
static int cdev_open(struct hs_obj *o, int id)
{
    o->u.devfd = hs_devfd_new(hs_device_get(id), false);
    return 0;
}

static void devfd_release(struct hs_obj *o)
{
    struct hs_devfd *d = o->u.devfd;

    for (int i = 0; i < HS_MAX_DEVFDS; i++) {
        if (hs_devfds[i] == d) {
            hs_devfds[i] = NULL;
        }
    }
    if (d->from_group && d->group && --d->group->device_fds == 0 &&
        d->group->closed) {
        free(d->group);
    }
    if (d->bound) {
        hs_iommufd_unbind(d);
    }
    free(d);
}

/* ------------------------------------------------------------ info */

static uint32_t irq_count(struct hs_device *D, uint32_t index)
{
    switch (index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
        return D->config[0x3d] ? 1 : 0;
    case VFIO_PCI_MSI_IRQ_INDEX:
    case VFIO_PCI_MSIX_IRQ_INDEX:
        return 0;       /* no MSI / MSI-X capability */
    case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
    default:
        return 0;
    }
}

static long get_info(struct hs_call *c, void *arg)
{
    struct vfio_device_info *info = arg;

    if (info->argsz < offsetof(struct vfio_device_info, cap_offset)) {
        return -EINVAL;
    }
    info->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
    info->num_regions = VFIO_PCI_NUM_REGIONS;
    info->num_irqs = VFIO_PCI_NUM_IRQS;
    if (info->argsz >= sizeof(*info)) {
        info->cap_offset = 0;
    }
    hs_call_hex(c, "flags", info->flags);
    hs_call_u64(c, "num_regions", info->num_regions);
    hs_call_u64(c, "num_irqs", info->num_irqs);
    return 0;
}

static long get_region_info(struct hs_call *c, struct hs_device *D,
                            void *arg)
{
    struct vfio_region_info *info = arg;

    if (info->argsz < sizeof(*info)) {
        return -EINVAL;
    }
    hs_call_u64(c, "index", info->index);
    info->cap_offset = 0;
    info->offset = (uint64_t)info->index << VFIO_PCI_OFFSET_SHIFT;
    switch (info->index) {
    case VFIO_PCI_CONFIG_REGION_INDEX:
        info->size = sizeof(D->config);
        info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        break;
    case VFIO_PCI_BAR0_REGION_INDEX:
        /* readable/writable, not mmap-able: every access reaches us */
        info->size = D->cfg->bar0_size;
        info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        break;
    case VFIO_PCI_BAR1_REGION_INDEX ... VFIO_PCI_BAR5_REGION_INDEX:
    case VFIO_PCI_ROM_REGION_INDEX:
        info->size = 0;
        info->flags = 0;
        break;
    case VFIO_PCI_VGA_REGION_INDEX:
        return -EINVAL;     /* not a VGA device */
    default:
        return -EINVAL;
    }
    hs_call_hex(c, "size", info->size);
    hs_call_hex(c, "offset", info->offset);
    hs_call_hex(c, "flags", info->flags);
    return 0;
}

static long get_irq_info(struct hs_call *c, struct hs_device *D, void *arg)
{
    struct vfio_irq_info *info = arg;

    if (info->argsz < sizeof(*info) || info->index >= VFIO_PCI_NUM_IRQS) {
        return -EINVAL;
    }
    hs_call_u64(c, "index", info->index);
    switch (info->index) {
    case VFIO_PCI_INTX_IRQ_INDEX ... VFIO_PCI_MSIX_IRQ_INDEX:
        break;
    case VFIO_PCI_ERR_IRQ_INDEX:
        return -EINVAL;     /* only PCI Express functions have it */
    case VFIO_PCI_REQ_IRQ_INDEX:
        break;
    }
    info->flags = VFIO_IRQ_INFO_EVENTFD;
    info->count = irq_count(D, info->index);
    if (info->index == VFIO_PCI_INTX_IRQ_INDEX) {
        info->flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    } else if (info->index != VFIO_PCI_REQ_IRQ_INDEX) {
        info->flags |= VFIO_IRQ_INFO_NORESIZE;
    }
    hs_call_u64(c, "count", info->count);
    hs_call_hex(c, "flags", info->flags);
    return 0;
}

static long set_irqs(struct hs_call *c, struct hs_device *D, void *arg)
{
    struct vfio_irq_set *s = arg;
    uint32_t max, dsize;
    uint32_t dtype = s->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint32_t atype = s->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;

    hs_call_u64(c, "index", s->index);
    hs_call_hex(c, "flags", s->flags);
    hs_call_u64(c, "start", s->start);
    hs_call_u64(c, "count", s->count);
    /* vfio_set_irqs_validate_and_prepare() */
    if (s->argsz < offsetof(struct vfio_irq_set, data) ||
        s->index >= VFIO_PCI_NUM_IRQS ||
        (s->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK |
                      VFIO_IRQ_SET_ACTION_TYPE_MASK))) {
        return -EINVAL;
    }
    if (__builtin_popcount(dtype) != 1 || __builtin_popcount(atype) != 1) {
        return -EINVAL;
    }
    switch (dtype) {
    case VFIO_IRQ_SET_DATA_NONE: dsize = 0; break;
    case VFIO_IRQ_SET_DATA_BOOL: dsize = 1; break;
    default: dsize = sizeof(int32_t); break;
    }
    max = irq_count(D, s->index);
    if (s->count >= UINT32_MAX - s->start || s->start + s->count > max) {
        return -EINVAL;
    }
    if (dsize && s->argsz - offsetof(struct vfio_irq_set, data) <
                 (uint64_t)s->count * dsize) {
        return -EINVAL;
    }
    if (atype == VFIO_IRQ_SET_ACTION_TRIGGER && dtype ==
        VFIO_IRQ_SET_DATA_EVENTFD && s->count == 1) {
        int32_t efd;
        memcpy(&efd, s->data, sizeof(efd));
        D->irq_efd[s->index] = efd;
        hs_call_i64(c, "eventfd", efd);
    } else if (atype == VFIO_IRQ_SET_ACTION_TRIGGER && s->count == 0 &&
               dtype == VFIO_IRQ_SET_DATA_NONE) {
        D->irq_efd[s->index] = -1;
    }
    return 0;
}

static void device_reset(struct hs_device *D)
{
    /* registers back to power-on values; counters are observation aids */
    memset(D->bar0, 0, sizeof(D->bar0));
    D->config[0x04] = 0;
    D->config[0x05] = 0;
    memset(D->config + 0x10, 0, 4);
    D->resets++;
    hs_migration_reset(D);
}

/* ------------------------------------------------------------ features */

static const char *feature_name(uint32_t f)
{
    switch (f) {
    case VFIO_DEVICE_FEATURE_MIGRATION: return "MIGRATION";
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: return "MIG_DEVICE_STATE";
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START: return "DMA_LOGGING_START";
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: return "DMA_LOGGING_STOP";
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: return "DMA_LOGGING_REPORT";
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: return "MIG_DATA_SIZE";
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: return "LOW_POWER_ENTRY";
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
        return "LOW_POWER_ENTRY_WITH_WAKEUP";
    case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: return "LOW_POWER_EXIT";
    default: return "unknown";
    }
}

static long device_feature(struct hs_call *c, struct hs_devfd *d, void *arg)
{
    struct vfio_device_feature *f = arg;
    size_t minsz = offsetof(struct vfio_device_feature, data);
    uint32_t id = f->flags & VFIO_DEVICE_FEATURE_MASK;
    size_t datasz;

    hs_call_str(c, "feature", feature_name(id));
    hs_call_hex(c, "flags", f->flags);
    if (f->argsz < minsz) {
        return -EINVAL;
    }
    if (f->flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET |
                     VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) {
        return -EINVAL;
    }
    if (!(f->flags & VFIO_DEVICE_FEATURE_PROBE) &&
        (f->flags & VFIO_DEVICE_FEATURE_SET) &&
        (f->flags & VFIO_DEVICE_FEATURE_GET)) {
        return -EINVAL;
    }
    datasz = f->argsz - minsz;
    switch (id) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        return hs_feature_migration(c, d, f->flags, f->data, datasz);
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return hs_feature_mig_state(c, d, f->flags, f->data, datasz);
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return hs_feature_mig_data_size(c, d, f->flags, f->data, datasz);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
        return hs_feature_log_start(c, d->dev, f->flags, f->data, datasz);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return hs_feature_log_stop(c, d->dev, f->flags, datasz);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return hs_feature_log_report(c, d->dev, f->flags, f->data, datasz);
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
    case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
        /* vfio-pci has these; the model does not */
        return hs_unhandled(c, VFIO_DEVICE_FEATURE, ENOTTY);
    default:
        return -ENOTTY;     /* vfio_pci_core_ioctl_feature() default */
    }
}

/* ------------------------------------------------------------ ioctl */

static long device_ioctl(struct hs_call *c, int fd, struct hs_obj *o,
                         unsigned long req, void *arg)
{
    struct hs_devfd *d = o->u.devfd;

    (void)fd;
    /* cdev fds are usable only after VFIO_DEVICE_BIND_IOMMUFD */
    if (!d->from_group && !d->bound && req != VFIO_DEVICE_BIND_IOMMUFD) {
        if (!strcmp(c->name, "unknown")) {
            return hs_unhandled(c, req, EINVAL);
        }
        return -EINVAL;
    }
    switch (req) {
    case VFIO_DEVICE_GET_INFO:
        return get_info(c, arg);
    case VFIO_DEVICE_GET_REGION_INFO:
        return get_region_info(c, d->dev, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
        return get_irq_info(c, d->dev, arg);
    case VFIO_DEVICE_SET_IRQS:
        return set_irqs(c, d->dev, arg);
    case VFIO_DEVICE_RESET:
        device_reset(d->dev);
        return 0;
    case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
        /* neither slot nor bus reset is possible for this function */
        return -ENODEV;
    case VFIO_DEVICE_PCI_HOT_RESET:
        return -ENODEV;
    case VFIO_DEVICE_FEATURE:
        return device_feature(c, d, arg);
    case VFIO_DEVICE_IOEVENTFD:
        /* vfio-pci supports it for BARs; the model does not */
        return hs_unhandled(c, req, ENOTTY);
    case VFIO_DEVICE_BIND_IOMMUFD: {
        struct vfio_device_bind_iommufd *b = arg;
        struct hs_obj *io;
        uint32_t devid;
        long rc;

        if (d->from_group) {
            return -ENOTTY;     /* group device fds have no bind */
        }
        hs_call_i64(c, "iommufd", b->iommufd);
        if (b->argsz < offsetof(struct vfio_device_bind_iommufd, out_devid) + 4
            || b->flags || b->iommufd < 0) {
            return -EINVAL;
        }
        if (d->bound) {
            return -EINVAL;
        }
        io = hs_fd_get(b->iommufd);
        if (!io) {
            return -EBADF;
        }
        if (io->ops->kind != HS_IOMMUFD) {
            return -EBADFD;
        }
        rc = hs_iommufd_bind(d, io, &devid);
        if (rc) {
            return rc;
        }
        b->out_devid = devid;
        hs_call_u64(c, "devid", devid);
        return 0;
    }
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT: {
        struct vfio_device_attach_iommufd_pt *a = arg;
        uint32_t pt;
        long rc;

        if (d->from_group) {
            return -ENOTTY;
        }
        if (a->argsz < offsetof(struct vfio_device_attach_iommufd_pt, pt_id)
                       + 4 || a->flags) {
            return -EINVAL;
        }
        pt = a->pt_id;
        hs_call_u64(c, "pt_id", pt);
        rc = hs_iommufd_attach(c, d, &pt);
        if (rc) {
            return rc;
        }
        a->pt_id = pt;
        hs_call_u64(c, "hwpt_id", pt);
        return 0;
    }
    case VFIO_DEVICE_DETACH_IOMMUFD_PT: {
        struct vfio_device_detach_iommufd_pt *dt = arg;

        if (d->from_group) {
            return -ENOTTY;
        }
        if (dt->argsz < sizeof(*dt) || dt->flags) {
            return -EINVAL;
        }
        return hs_iommufd_detach(d);
    }
    default:
        return hs_unhandled(c, req, ENOTTY);
    }
}

/* ------------------------------------------------------------ regions */

static uint64_t bar_read64(struct hs_device *D, uint64_t reg)
{
    switch (reg) {
    case BAR_DMA_WRITES: return D->dma_writes;
    case BAR_DMA_BYTES: return D->dma_bytes;
    case BAR_MAGIC: return HS_MAGIC;
    case BAR_DMA_GO: return 0;
    default: return get64(D->bar0 + reg);
    }
}

static void bar_write(struct hs_device *D, uint64_t off, const uint8_t *buf,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t a = off + i;

        if (a >= BAR_DMA_STATUS && a < BAR_SCRATCH) {
            /* status and counters are read-only, GO is a doorbell */
            continue;
        }
        D->bar0[a] = buf[i];
    }
    if (off <= BAR_DMA_GO && off + n > BAR_DMA_GO) {
        struct hs_dma_result r;

        hs_dma_write(D, get64(D->bar0 + BAR_DMA_IOVA),
                     get64(D->bar0 + BAR_DMA_LEN),
                     get64(D->bar0 + BAR_DMA_PATTERN), &r);
        put64(D->bar0 + BAR_DMA_STATUS, r.ok ? 0 : 1);
    }
}

static long region_check(struct hs_device *D, uint64_t off, size_t n,
                         uint32_t *index,
                         uint64_t *roff, uint64_t *rsize)
{
    *index = (uint32_t)(off >> VFIO_PCI_OFFSET_SHIFT);
    *roff = off & ((1ull << VFIO_PCI_OFFSET_SHIFT) - 1);
    if (*index == VFIO_PCI_CONFIG_REGION_INDEX) {
        *rsize = sizeof(D->config);
    } else if (*index == VFIO_PCI_BAR0_REGION_INDEX) {
        *rsize = D->cfg->bar0_size;
    } else {
        return -EINVAL;
    }
    if (*roff >= *rsize || n > *rsize - *roff) {
        return -EINVAL;
    }
    return 0;
}

/*
 * What pread and pwrite on the device fd share: log the call, check the fd
 * may access regions, that [off, off + n) lies in one region, and fault
 * injection.  Returns 0 or -errno.
 */
static long region_access_begin(struct hs_call *c, const char *name, int fd,
                                struct hs_devfd *d, off_t off, size_t n,
                                uint32_t *index, uint64_t *roff)
{
    uint64_t rsize;
    long rc;

    hs_call_begin(c, name, fd);
    hs_call_hex(c, "offset", (uint64_t)off);
    hs_call_u64(c, "count", n);
    rc = (!d->from_group && !d->bound) ? -EINVAL :
         region_check(d->dev, (uint64_t)off, n, index, roff, &rsize);
    if (!rc) {
        int e = hs_fault_check(c);
        rc = e ? -e : 0;
    }
    return rc;
}

/* Log the result and turn -errno into the libc convention. */
static ssize_t region_access_end(struct hs_call *c, long rc)
{
    hs_call_end(c, rc < 0 ? -1 : rc, rc < 0 ? (int)-rc : 0);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

static ssize_t device_pread(int fd, struct hs_obj *o, void *buf, size_t n,
                            off_t off)
{
    struct hs_devfd *d = o->u.devfd;
    struct hs_call c;
    uint32_t index;
    uint64_t roff;
    long rc = region_access_begin(&c, "pread", fd, d, off, n, &index, &roff);

    if (!rc) {
        hs_call_u64(&c, "region", index);
        if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
            memcpy(buf, d->dev->config + roff, n);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint64_t a = roff + i;
                uint64_t v = bar_read64(d->dev, a & ~7ull);
                ((uint8_t *)buf)[i] = (uint8_t)(v >> ((a & 7) * 8));
            }
        }
        rc = (long)n;
    }
    return region_access_end(&c, rc);
}

static void config_write(struct hs_device *D, uint64_t off,
                         const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t a = off + i;

        /* command register, BAR0 address bits and interrupt line */
        if (a == 0x04 || a == 0x05 || a == 0x3c) {
            D->config[a] = buf[i];
        } else if (a >= 0x10 && a < 0x14) {
            uint32_t bar;
            D->config[a] = buf[i];
            memcpy(&bar, D->config + 0x10, 4);
            bar &= ~(uint32_t)(D->cfg->bar0_size - 1);
            memcpy(D->config + 0x10, &bar, 4);
        }
    }
}

static ssize_t device_pwrite(int fd, struct hs_obj *o, const void *buf,
                             size_t n, off_t off)
{
    struct hs_devfd *d = o->u.devfd;
    struct hs_call c;
    uint32_t index;
    uint64_t roff;
    long rc = region_access_begin(&c, "pwrite", fd, d, off, n, &index, &roff);

    if (!rc) {
        uint64_t v = 0;

        memcpy(&v, buf, n < 8 ? n : 8);
        hs_call_u64(&c, "region", index);
        hs_call_hex(&c, "value", v);
        if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
            config_write(d->dev, roff, buf, n);
        } else {
            bar_write(d->dev, roff, buf, n);
        }
        rc = (long)n;
    }
    return region_access_end(&c, rc);
}

/* read() on a device fd reads the config space from offset 0 */
static ssize_t device_read(int fd, struct hs_obj *o, void *buf, size_t n)
{
    return device_pread(fd, o, buf, n, 0);
}

const struct hs_file_ops hs_device_fops = {
    .kind = HS_DEVICE,
    .name = "device",
    .open = cdev_open,
    .ioctl = device_ioctl,
    .read = device_read,
    .pread = device_pread,
    .pwrite = device_pwrite,
    .release = devfd_release,
};
