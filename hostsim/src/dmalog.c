/*
 * Device dirty tracking (VFIO DMA logging): the device itself records the
 * IOVA pages it writes inside the ranges it was given.
 *
 * Semantics follow drivers/vfio/vfio_main.c
 * (vfio_ioctl_device_feature_logging_start: num_ranges 0 -> EINVAL, more
 * than LOG_MAX_RANGES -> E2BIG, unaligned ranges -> EINVAL, overflow ->
 * EOVERFLOW, overlap -> EINVAL; _logging_stop; _logging_report:
 * page_size < 4 KiB or not a power of two -> EINVAL, read-and-clear into
 * an iova_bitmap).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

/* PAGE_SIZE / sizeof(struct vfio_device_feature_dma_logging_range) */
#define LOG_MAX_RANGES (4096 / 16)

void hs_dmalog_reset(struct hs_device *D)
{
    for (uint32_t i = 0; i < D->log_nranges; i++) {
        free(D->log_bits[i]);
        D->log_bits[i] = NULL;
    }
    D->log_nranges = 0;
    D->log_on = false;
}

long hs_feature_log_start(struct hs_call *c, struct hs_device *D,
                          uint32_t flags, void *data, size_t datasz)
{
    struct vfio_device_feature_dma_logging_control *ctl = data;
    struct vfio_device_feature_dma_logging_range *r;
    int rc;

    if (!D->cfg->dma_logging) {
        return -ENOTTY;     /* no log_ops */
    }
    rc = hs_check_feature(flags, datasz, VFIO_DEVICE_FEATURE_SET,
                          sizeof(*ctl));
    if (rc != 1) {
        return rc;
    }
    hs_call_u64(c, "page_size", ctl->page_size);
    hs_call_u64(c, "num_ranges", ctl->num_ranges);
    if (!ctl->num_ranges) {
        return -EINVAL;
    }
    if (ctl->num_ranges > LOG_MAX_RANGES) {
        return -E2BIG;
    }
    if (!ctl->page_size || (ctl->page_size & (ctl->page_size - 1))) {
        return -EINVAL;
    }
    r = (void *)(uintptr_t)ctl->ranges;
    for (uint32_t i = 0; i < ctl->num_ranges; i++) {
        uint64_t end;

        if ((r[i].iova & (ctl->page_size - 1)) ||
            (r[i].length & (ctl->page_size - 1))) {
            return -EINVAL;
        }
        if (__builtin_add_overflow(r[i].iova, r[i].length, &end)) {
            return -EOVERFLOW;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (r[i].iova < r[j].iova + r[j].length &&
                r[j].iova < r[i].iova + r[i].length) {
                return -EINVAL;
            }
        }
    }
    /* a driver accepts one tracking session at a time */
    if (D->log_on) {
        return -EBUSY;
    }
    hs_dmalog_reset(D);
    for (uint32_t i = 0; i < ctl->num_ranges; i++) {
        D->log_ranges[i] = r[i];
        D->log_bits[i] = NULL;  /* allocated on first write */
    }
    D->log_nranges = ctl->num_ranges;
    D->log_page_size = HS_PAGE_SIZE;
    D->log_on = true;
    return 0;
}

long hs_feature_log_stop(struct hs_call *c, struct hs_device *D,
                         uint32_t flags, size_t datasz)
{
    int rc;

    (void)c;
    if (!D->cfg->dma_logging) {
        return -ENOTTY;
    }
    rc = hs_check_feature(flags, datasz, VFIO_DEVICE_FEATURE_SET, 0);
    if (rc != 1) {
        return rc;
    }
    hs_dmalog_reset(D);
    return 0;
}

void hs_dmalog_mark(struct hs_device *D, uint64_t iova, uint64_t len)
{
    if (!D->log_on || !len) {
        return;
    }
    for (uint64_t a = iova & ~(HS_PAGE_SIZE - 1); a < iova + len;
         a += HS_PAGE_SIZE) {
        for (uint32_t i = 0; i < D->log_nranges; i++) {
            struct vfio_device_feature_dma_logging_range *r =
                &D->log_ranges[i];
            if (a >= r->iova && a - r->iova < r->length) {
                if (!D->log_bits[i]) {
                    D->log_bits[i] = hs_bits_alloc(r->length /
                                                       HS_PAGE_SIZE);
                }
                hs_bits_set(D->log_bits[i], (a - r->iova) / HS_PAGE_SIZE);
            }
        }
    }
}

long hs_feature_log_report(struct hs_call *c, struct hs_device *D,
                           uint32_t flags, void *data, size_t datasz)
{
    struct vfio_device_feature_dma_logging_report *rep = data;
    uint64_t end, n = 0;
    int rc;

    if (!D->cfg->dma_logging) {
        return -ENOTTY;
    }
    rc = hs_check_feature(flags, datasz, VFIO_DEVICE_FEATURE_GET,
                          sizeof(*rep));
    if (rc != 1) {
        return rc;
    }
    hs_call_hex(c, "iova", rep->iova);
    hs_call_hex(c, "length", rep->length);
    hs_call_u64(c, "page_size", rep->page_size);
    if (rep->page_size < 4096 || (rep->page_size & (rep->page_size - 1))) {
        return -EINVAL;
    }
    if (__builtin_add_overflow(rep->iova, rep->length, &end)) {
        return -EOVERFLOW;
    }
    if (!rep->bitmap) {
        return -EFAULT;
    }
    if (!D->log_on) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < D->log_nranges; i++) {
        struct vfio_device_feature_dma_logging_range *r = &D->log_ranges[i];

        if (!D->log_bits[i]) {
            continue;
        }
        for (uint64_t p = 0; p < r->length / HS_PAGE_SIZE; p++) {
            uint64_t a = r->iova + p * HS_PAGE_SIZE;

            if (a < rep->iova || a >= end ||
                !hs_bits_test(D->log_bits[i], p)) {
                continue;
            }
            hs_user_bit_set((uint64_t *)(uintptr_t)rep->bitmap, rep->iova,
                            rep->page_size, a);
            D->log_bits[i][p / 64] &= ~(1ull << (p % 64));
            n++;
        }
    }
    hs_call_u64(c, "dirty_pages", n);
    return 0;
}
