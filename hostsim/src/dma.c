/*
 * The device's DMA engine.  A write goes through the IOMMU the device is
 * attached to -- the type1 container of its group, or the iommufd HWPT of
 * its cdev -- to the host address QEMU mapped (guest RAM of this very
 * process), and leaves the traces the kernel would: IOMMU dirty bits
 * (HWPT dirty tracking, type1 precise bitmap) and the device's own DMA log.
 * An IOVA with no writable mapping is an IOMMU fault: nothing is written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hostsim.h"

struct xlate {
    struct hs_maplist *maps;
    struct hs_container *ct;    /* type1 */
    struct hs_hwpt *hwpt;       /* iommufd */
};

static bool find_xlate(struct hs_device *D, struct xlate *x)
{
    memset(x, 0, sizeof(*x));
    for (int i = 0; i < HS_MAX_DEVFDS; i++) {
        struct hs_devfd *d = hs_devfds[i];

        if (!d || d->dev != D) {
            continue;
        }
        if (d->bound && d->hwpt_id && d->ictx_obj) {
            struct hs_ictx *ctx = d->ictx_obj->u.ictx;
            struct hs_hwpt *h = hs_ictx_hwpt(ctx, d->hwpt_id);
            struct hs_ioas *ioas = h ? hs_ictx_ioas(ctx, h->ioas_id) : NULL;

            if (ioas) {
                x->maps = &ioas->maps;
                x->hwpt = h;
                return true;
            }
        }
        /* a closed group has no container any more */
        if (d->from_group && d->group &&
            d->group->container && d->group->container->iommu_set) {
            x->ct = d->group->container;
            x->maps = &x->ct->maps;
            return true;
        }
    }
    return false;
}

static void mark_dirty(struct xlate *x, struct hs_map *m, uint64_t page_iova)
{
    uint64_t bit = (page_iova - m->iova) / HS_PAGE_SIZE;
    uint64_t nbits = m->length / HS_PAGE_SIZE;

    if (x->hwpt && x->hwpt->dirty_tracking) {
        uint64_t **b = &m->hwpt_dirty[x->hwpt->slot];
        uint64_t **u = &m->hwpt_unrep[x->hwpt->slot];
        if (!*b) {
            *b = hs_bits_alloc(nbits);
        }
        if (!*u) {
            *u = hs_bits_alloc(nbits);
        }
        hs_bits_set(*b, bit);
        hs_bits_set(*u, bit);
    }
    /* type1: kept in both modes (perpetual reports every page anyway) */
    if (x->ct && x->ct->dirty_tracking) {
        if (!m->t1_dirty) {
            m->t1_dirty = hs_bits_alloc(nbits);
        }
        hs_bits_set(m->t1_dirty, bit);
    }
}

void hs_dma_write(struct hs_device *D, uint64_t iova, uint64_t len,
                  uint64_t pattern, struct hs_dma_result *res)
{
    struct hs_call c;
    struct xlate x;
    uint64_t a, end;
    int e;

    memset(res, 0, sizeof(*res));
    hs_call_begin(&c, "dma", -1);
    hs_call_str(&c, "device", D->cfg->name);
    hs_call_hex(&c, "iova", iova);
    hs_call_hex(&c, "length", len);
    hs_call_hex(&c, "pattern", pattern);
    hs_call_range(&c, iova, len);
    e = hs_fault_check(&c);
    if (e) {
        res->err = e;
        res->fault_iova = iova;
        goto out;
    }
    if (!len || iova + len - 1 < iova) {
        res->err = EINVAL;
        goto out;
    }
    /*
     * A stopped device does not DMA (uAPI: "STOP - The device does not
     * change its internal state... and does not DMA"): the device is
     * quiescent in STOP, STOP_COPY, RESUMING and ERROR.
     */
    if (!hs_cfg.dma_when_stopped &&
        D->mig_state != VFIO_DEVICE_STATE_RUNNING &&
        D->mig_state != VFIO_DEVICE_STATE_RUNNING_P2P &&
        D->mig_state != VFIO_DEVICE_STATE_PRE_COPY &&
        D->mig_state != VFIO_DEVICE_STATE_PRE_COPY_P2P) {
        res->err = EBUSY;
        goto out;
    }
    if (!find_xlate(D, &x)) {
        /* no domain: every DMA is blocked */
        res->err = EFAULT;
        res->fault_iova = iova;
        D->dma_faults++;
        goto out;
    }
    hs_call_str(&c, "via", x.hwpt ? "iommufd" : "type1");
    end = iova + len;
    /* translate the whole range first: a fault writes nothing */
    for (a = iova; a < end;) {
        struct hs_map *m = hs_maplist_find(x.maps, a, a, NULL);

        if (!m || !(m->prot & HS_PROT_WRITE) || !hs_map_host(m, a)) {
            res->err = EFAULT;
            res->fault_iova = a;
            D->dma_faults++;
            goto out;
        }
        a = m->iova + m->length;
        if (a == 0) {
            break;
        }
    }
    for (a = iova; a < end;) {
        struct hs_map *m = hs_maplist_find(x.maps, a, a, NULL);
        uint64_t page_end = (a | (HS_PAGE_SIZE - 1)) + 1;
        uint64_t chunk_end = page_end < end ? page_end : end;
        uint8_t *host = hs_map_host(m, a);

        /* the pattern is a little-endian u64 aligned to the IOVA */
        for (uint64_t b = a; b < chunk_end; b++) {
            host[b - a] = (uint8_t)(pattern >> ((b & 7) * 8));
        }
        mark_dirty(&x, m, a & ~(HS_PAGE_SIZE - 1));
        res->pages++;
        a = chunk_end;
    }
    hs_dmalog_mark(D, iova, len);
    D->dma_writes++;
    D->dma_bytes += len;
    res->ok = true;
out:
    if (!res->ok) {
        hs_call_str(&c, "error", res->err == EFAULT ? "fault" :
                    res->err == EBUSY ? "device_stopped" : "error");
        hs_call_hex(&c, "fault_iova", res->fault_iova);
    }
    hs_call_u64(&c, "pages", res->pages);
    hs_call_end(&c, res->ok ? 0 : -1, res->ok ? 0 : res->err);
}

bool hs_dma_read(struct hs_device *D, uint64_t iova, void *out, uint64_t len,
                 uint64_t *fault)
{
    struct xlate x;

    if (!find_xlate(D, &x)) {
        *fault = iova;
        return false;
    }
    for (uint64_t i = 0; i < len; i++) {
        struct hs_map *m = hs_maplist_find(x.maps, iova + i, iova + i, NULL);
        uint8_t *host;

        if (!m || !(m->prot & HS_PROT_READ) ||
            !(host = hs_map_host(m, iova + i))) {
            *fault = iova + i;
            return false;
        }
        ((uint8_t *)out)[i] = *host;
    }
    return true;
}

size_t hs_dma_describe(struct hs_device *D, char *out, size_t max)
{
    struct xlate x;
    size_t n = 0;

    if (!find_xlate(D, &x)) {
        return hs_putf(out, max, n, ",\"backend\":null,\"mappings\":[]");
    }
    n = hs_putf(out, max, n, ",\"backend\":\"%s\"",
                x.hwpt ? "iommufd" : "type1");
    if (x.hwpt) {
        n = hs_putf(out, max, n, ",\"hwpt_dirty_tracking\":%s",
                    x.hwpt->dirty_tracking ? "true" : "false");
    } else {
        n = hs_putf(out, max, n, ",\"type1_dirty_tracking\":%s",
                    x.ct->dirty_tracking ? "true" : "false");
    }
    /* the list is cut when the answer would exceed the buffer */
    n = hs_putf(out, max, n, ",\"mappings_count\":%zu,\"mappings\":[",
                x.maps->n);
    for (size_t i = 0; i < x.maps->n && n < max - 128; i++) {
        struct hs_map *m = x.maps->v[i];

        n = hs_putf(out, max, n, "%s{\"iova\":%" PRIu64 ",\"length\":%"
                    PRIu64 ",\"writable\":%s}", i ? "," : "", m->iova,
                    m->length, (m->prot & HS_PROT_WRITE) ? "true" : "false");
    }
    n = hs_putf(out, max, n, "]");
    return n;
}
