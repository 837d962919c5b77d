/*
 * Dirty bitmaps: the model's per-page bit arrays, and writes into the
 * user's bitmaps in the uAPI layout shared by struct vfio_bitmap and the
 * iova_bitmap of iommufd / DMA logging: u64 words in host (little-endian)
 * order, bit i = the page_size unit at base + i * page_size.
 */
#include <stdlib.h>

#include "hostsim.h"

uint64_t *hs_bits_alloc(uint64_t nbits)
{
    return calloc((nbits + 63) / 64 ? (nbits + 63) / 64 : 1, 8);
}

void hs_bits_set(uint64_t *b, uint64_t bit)
{
    b[bit / 64] |= 1ull << (bit % 64);
}

bool hs_bits_test(const uint64_t *b, uint64_t bit)
{
    return b && (b[bit / 64] >> (bit % 64)) & 1;
}

/*
 * User bitmaps are arrays of u64 in host (little-endian) order, one bit per
 * pgsize unit from base: the layout of both vfio_bitmap and iova_bitmap.
 */
void hs_user_bit_set(uint64_t *ubitmap, uint64_t base, uint64_t pgsize,
                     uint64_t iova)
{
    uint64_t bit = (iova - base) / pgsize;

    ubitmap[bit / 64] |= 1ull << (bit % 64);
}

