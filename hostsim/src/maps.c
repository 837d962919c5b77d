/*
 * IOVA -> host mappings, kept sorted by IOVA, and the IOVA aperture they
 * live in.  Shared by the type1 container (vfio_dma entries) and the
 * iommufd IOAS (iopt areas).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hostsim.h"

struct hs_map *hs_map_new(uint64_t iova, uint64_t length, int prot)
{
    struct hs_map *m = calloc(1, sizeof(*m));

    m->iova = iova;
    m->length = length;
    m->prot = prot;
    m->file_fd = -1;
    return m;
}

void hs_map_free(struct hs_map *m)
{
    if (!m) {
        return;
    }
    free(m->t1_dirty);
    for (int i = 0; i < HS_MAX_HWPT_SLOTS; i++) {
        free(m->hwpt_dirty[i]);
        free(m->hwpt_unrep[i]);
    }
    if (m->file_va) {
        munmap(m->file_va, m->length);
    }
    if (m->file_fd >= 0) {
        hs_real_close(m->file_fd);
    }
    free(m);
}

/* index of the first map whose last byte is >= addr (maps never overlap) */
static size_t lower_bound(const struct hs_maplist *l, uint64_t addr)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct hs_map *m = l->v[mid];

        if (m->iova + m->length - 1 < addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void hs_maplist_insert(struct hs_maplist *l, struct hs_map *m)
{
    size_t i;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    /* a vIOMMU guest can create one map per 4 KiB page: keep it O(log n) */
    i = lower_bound(l, m->iova);
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
    l->v[i] = m;
    l->n++;
}

void hs_maplist_remove_range(struct hs_maplist *l, size_t i, size_t k)
{
    for (size_t j = i; j < k; j++) {
        hs_map_free(l->v[j]);
    }
    memmove(&l->v[i], &l->v[k], (l->n - k) * sizeof(*l->v));
    l->n -= k - i;
}

struct hs_map *hs_maplist_find(const struct hs_maplist *l, uint64_t first,
                               uint64_t last, size_t *idx)
{
    size_t i = lower_bound(l, first);

    if (i < l->n && l->v[i]->iova <= last) {
        if (idx) {
            *idx = i;
        }
        return l->v[i];
    }
    return NULL;
}

void hs_maplist_clear(struct hs_maplist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        hs_map_free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void *hs_map_host(struct hs_map *m, uint64_t iova)
{
    uint64_t off = iova - m->iova;

    if (m->file_fd >= 0) {
        if (!m->file_va) {
            /* the memfd/file QEMU maps its RAM from: share its pages */
            void *p = mmap(NULL, m->length, PROT_READ | PROT_WRITE,
                           MAP_SHARED, m->file_fd, (off_t)m->file_start);
            if (p == MAP_FAILED) {
                return NULL;
            }
            m->file_va = p;
        }
        return (char *)m->file_va + off;
    }
    return (void *)(uintptr_t)(m->vaddr + off);
}

uint64_t hs_lost_dirty_pages;

void hs_map_drop_slot(struct hs_map *m, int slot)
{
    free(m->hwpt_dirty[slot]);
    m->hwpt_dirty[slot] = NULL;
    free(m->hwpt_unrep[slot]);
    m->hwpt_unrep[slot] = NULL;
}

uint64_t hs_map_count(const struct hs_map *m, const uint64_t *bits)
{
    uint64_t n = 0, words = (m->length / HS_PAGE_SIZE + 63) / 64;

    for (uint64_t i = 0; bits && i < words; i++) {
        n += (uint64_t)__builtin_popcountll(bits[i]);
    }
    return n;
}

/* ------------------------------------------------------------ aperture */

/*
 * The IOVA space a mapping may use, the same for a type1 container and for
 * an iommufd IOAS with a domain: x86 with an Intel IOMMU, the domain
 * aperture (iommu.aw_bits) minus the IOAPIC/MSI window (intel_iommu's
 * reserved region 0xfee00000-0xfeefffff).
 */
int hs_iova_ranges(struct iommu_iova_range *r, int max)
{
    uint64_t top = hs_cfg.aw_bits >= 64 ? UINT64_MAX
                                        : (1ull << hs_cfg.aw_bits) - 1;

    if (max >= 1) {
        r[0].start = 0;
        r[0].last = 0xfedfffffull;
    }
    if (max >= 2) {
        r[1].start = 0xfef00000ull;
        r[1].last = top;
    }
    return 2;
}

bool hs_iova_valid(uint64_t first, uint64_t last)
{
    struct iommu_iova_range r[2];

    hs_iova_ranges(r, 2);
    for (int i = 0; i < 2; i++) {
        if (first >= r[i].start && last <= r[i].last) {
            return true;
        }
    }
    return false;
}
