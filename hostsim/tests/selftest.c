/*
 * hostsim self-test (TAP).  Talks to the model the way the kernel's
 * tools/testing/selftests/iommu/iommufd.c talks to iommufd: open() the
 * device nodes and issue ioctl()s -- the model is linked in, so these calls
 * reach it exactly as QEMU's do under LD_PRELOAD.  Each case checks the
 * behaviour documented by the kernel sources named in README.md.
 *
 * Two levels, as in the kernel selftests: _op() makes the call and returns
 * 0 (or what the call returns) or -errno, for the checks that expect an
 * error; op() asserts that the call succeeds, for the steps that set a
 * case up.  A failed setup step is one "not ok" naming its line, and the
 * case stops there rather than failing later at unrelated checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hostsim.h"

static int ntests, nfailed;
static char logpath[256];
static jmp_buf case_abort;
static const char *case_name;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    ntests++;
    printf("%s %d - ", ok ? "ok" : "not ok", ntests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok) {
        nfailed++;
    }
}

/*
 * A setup step failed: one failed test that says where, then the case is
 * abandoned (the kernel harness's ASSERT_*; EXPECT_* are check()).
 */
static void setup_failed(const char *file, int line, const char *what,
                         long err)
{
    char why[64] = "";

    if (err) {
        snprintf(why, sizeof(why), ": %s", hs_errno_name((int)err));
    }
    ntests++;
    nfailed++;
    printf("not ok %d - %s: setup failed at %s:%d: %s%s\n", ntests,
           case_name, file, line, what, why);
    fflush(stdout);
    longjmp(case_abort, 1);
}

/* a _op() that must succeed; yields its value */
#define ASSERT_OK(expr) ({ \
        long r_ = (expr); \
        if (r_ < 0) { \
            setup_failed(__FILE__, __LINE__, #expr, -r_); \
        } \
        r_; \
    })
/* a libc call (-1 and errno) that must succeed; yields its value */
#define ASSERT_SYS(expr) ({ \
        long r_ = (expr); \
        if (r_ < 0) { \
            setup_failed(__FILE__, __LINE__, #expr, errno); \
        } \
        r_; \
    })
#define ASSERT_TRUE(cond) do { \
        if (!(cond)) { \
            setup_failed(__FILE__, __LINE__, #cond, 0); \
        } \
    } while (0)

static void run_case(void (*fn)(void), const char *name)
{
    case_name = name;
    if (!setjmp(case_abort)) {
        fn();
    }
}
#define RUN(fn) run_case(fn, #fn)

/* a libc call's result as _op() returns it: -errno on failure */
static int sys_err(int r)
{
    return r < 0 ? -errno : r;
}

/* errno of a failed call, 0 on success */
#define ERR(expr) ((expr) < 0 ? errno : 0)
#define CHECK_ERR(expr, want, ...) do { \
        int e_ = ERR(expr); \
        check(e_ == (want), __VA_ARGS__); \
        if (e_ != (want)) { \
            printf("#   got %s, expected %s\n", hs_errno_name(e_), \
                   hs_errno_name(want)); \
        } \
    } while (0)

static void reset(const char *extra)
{
    char text[4096];

    snprintf(text, sizeof(text), "log = %s\n%s\n", logpath, extra);
    if (hs_model_reset(text)) {
        printf("Bail out! bad test configuration\n");
        exit(1);
    }
}

static char *ctl(const char *req)
{
    static char out[65536];

    hs_control_handle(req, out, sizeof(out));
    return out;
}

/* a control request that must succeed (a DMA that must not fault, ...) */
#define CTL_OK(req) ASSERT_TRUE(strstr(ctl(req), "\"ok\":true") != NULL)

static void *buffer(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 0, len);
    return p;
}

static uint64_t popcount(const uint64_t *b, size_t words)
{
    uint64_t n = 0;

    for (size_t i = 0; i < words; i++) {
        n += (uint64_t)__builtin_popcountll(b[i]);
    }
    return n;
}

/* ================================================================ type1 */

struct legacy {
    int container, group, device;
};

/* container, group 42 in it, the IOMMU type set, device 0's fd */
static void legacy_open(struct legacy *l, int iommu_type)
{
    l->container = ASSERT_SYS(open("/dev/vfio/vfio", O_RDWR));
    l->group = ASSERT_SYS(open("/dev/vfio/42", O_RDWR));
    ASSERT_SYS(ioctl(l->group, VFIO_GROUP_SET_CONTAINER, &l->container));
    ASSERT_SYS(ioctl(l->container, VFIO_SET_IOMMU, iommu_type));
    l->device = ASSERT_SYS(ioctl(l->group, VFIO_GROUP_GET_DEVICE_FD,
                                 "0000:00:05.0"));
}

static void legacy_close(struct legacy *l)
{
    close(l->device);
    close(l->group);
    close(l->container);
}

static int _map_dma(int container, uint64_t iova, void *va, uint64_t size,
                    uint32_t flags)
{
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m), .flags = flags, .vaddr = (uintptr_t)va,
        .iova = iova, .size = size,
    };
    return sys_err(ioctl(container, VFIO_IOMMU_MAP_DMA, &m));
}

static int _unmap_dma(int container, uint64_t iova, uint64_t size,
                      uint32_t flags, uint64_t *unmapped)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u), .flags = flags, .iova = iova, .size = size,
    };
    int r = sys_err(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u));

    if (unmapped) {
        *unmapped = u.size;
    }
    return r;
}

static int _get_bitmap(int container, uint64_t iova, uint64_t size,
                       uint64_t pgsize, uint64_t *bm, uint64_t bmsize)
{
    struct {
        struct vfio_iommu_type1_dirty_bitmap d;
        struct vfio_iommu_type1_dirty_bitmap_get g;
    } a = {
        .d = { .argsz = sizeof(a),
               .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
        .g = { .iova = iova, .size = size,
               .bitmap = { .pgsize = pgsize, .size = bmsize, .data = bm } },
    };
    return sys_err(ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &a));
}

static int _dirty_ctl(int container, uint32_t flag)
{
    struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d),
                                               .flags = flag };
    return sys_err(ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &d));
}

static int _unmap_get_dirty(int container, uint64_t iova, uint64_t size,
                            uint64_t pgsize, uint64_t *bm, uint64_t bmsize)
{
    struct {
        struct vfio_iommu_type1_dma_unmap u;
        struct vfio_bitmap b;
    } a = {
        .u = { .argsz = sizeof(a),
               .flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
               .iova = iova, .size = size },
        .b = { .pgsize = pgsize, .size = bmsize, .data = bm },
    };
    return sys_err(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &a));
}

#define map_dma(...) ASSERT_OK(_map_dma(__VA_ARGS__))
#define unmap_dma(...) ASSERT_OK(_unmap_dma(__VA_ARGS__))
#define get_bitmap(...) ASSERT_OK(_get_bitmap(__VA_ARGS__))
#define dirty_ctl(...) ASSERT_OK(_dirty_ctl(__VA_ARGS__))
#define unmap_get_dirty(...) ASSERT_OK(_unmap_get_dirty(__VA_ARGS__))

static void test_type1_setup(void)
{
    struct vfio_group_status st = { .argsz = sizeof(st) };
    int c, g, g2;

    reset("");
    c = open("/dev/vfio/vfio", O_RDWR);
    check(c >= 0, "type1: open /dev/vfio/vfio");
    check(ioctl(c, VFIO_GET_API_VERSION) == VFIO_API_VERSION,
          "type1: VFIO_GET_API_VERSION is 0");
    check(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1,
          "type1: TYPE1v2 extension present");
    check(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU) == 0,
          "type1: no sPAPR extension");
    check(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR) == 0,
          "type1: UPDATE_VADDR needs an IOMMU driver set");
    CHECK_ERR(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), EINVAL,
              "type1: SET_IOMMU without a group is EINVAL");
    g = open("/dev/vfio/42", O_RDWR);
    check(g >= 0, "type1: open group /dev/vfio/42");
    g2 = open("/dev/vfio/42", O_RDWR);
    check(g2 < 0 && errno == EBUSY, "type1: a group opens only once (EBUSY)");
    check(open("/dev/vfio/43", O_RDWR) < 0, "type1: other groups absent");
    ASSERT_SYS(ioctl(g, VFIO_GROUP_GET_STATUS, &st));
    check(st.flags == VFIO_GROUP_FLAGS_VIABLE, "type1: group viable, no "
          "container");
    CHECK_ERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:05.0"), EINVAL,
              "type1: GET_DEVICE_FD before SET_IOMMU is EINVAL");
    check(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) == 0,
          "type1: GROUP_SET_CONTAINER");
    CHECK_ERR(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), EINVAL,
              "type1: second SET_CONTAINER is EINVAL");
    ASSERT_SYS(ioctl(g, VFIO_GROUP_GET_STATUS, &st));
    check(st.flags == (VFIO_GROUP_FLAGS_VIABLE |
                       VFIO_GROUP_FLAGS_CONTAINER_SET),
          "type1: status shows CONTAINER_SET");
    check(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0,
          "type1: SET_IOMMU TYPE1v2");
    CHECK_ERR(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), EINVAL,
              "type1: SET_IOMMU twice is EINVAL");
    check(ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR) == 1,
          "type1: UPDATE_VADDR once the IOMMU is set");
    CHECK_ERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:06.0"), ENODEV,
              "type1: unknown device name is ENODEV");
    {
        int d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:05.0");
        struct stat sb;

        check(d >= 0, "type1: GET_DEVICE_FD returns an fd");
    {
        int d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
        struct vfio_device_info di = { .argsz = sizeof(di) };

        check(d2 >= 100 && ioctl(d2, VFIO_DEVICE_GET_INFO, &di) == 0,
              "type1: an fcntl(F_DUPFD_CLOEXEC) copy reaches the device");
        close(d2);
    }
        CHECK_ERR(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY,
                  "type1: UNSET_CONTAINER with an open device is EBUSY");
        close(d);
        check(stat("/dev/vfio/vfio", &sb) == 0 && S_ISCHR(sb.st_mode),
              "type1: /dev/vfio/vfio is a character device");
    }
    check(ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0,
          "type1: UNSET_CONTAINER");
    close(g);
    close(c);
}

static void test_type1_info(void)
{
    struct legacy l;
    struct vfio_iommu_type1_info small = { .argsz = sizeof(small) };
    struct vfio_iommu_type1_info *info;
    struct vfio_info_cap_header *h;
    bool mig = false, avail = false, ranges = false;

    reset("type1.max_dirty_bitmap_size = 64");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    check(ioctl(l.container, VFIO_IOMMU_GET_INFO, &small) == 0 &&
          small.argsz > sizeof(small) && (small.flags & VFIO_IOMMU_INFO_CAPS),
          "type1: GET_INFO asks for a larger buffer for its capabilities");
    info = calloc(1, small.argsz);
    info->argsz = small.argsz;
    ASSERT_SYS(ioctl(l.container, VFIO_IOMMU_GET_INFO, info));
    check(info->iova_pgsizes & 4096, "type1: iova_pgsizes has 4 KiB");
    for (h = (void *)((char *)info + info->cap_offset); info->cap_offset;
         h = (void *)((char *)info + h->next)) {
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
            struct vfio_iommu_type1_info_cap_migration *m = (void *)h;
            mig = m->pgsize_bitmap == 4096 && m->max_dirty_bitmap_size == 64;
        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
            avail = ((struct vfio_iommu_type1_info_dma_avail *)h)->avail ==
                    65535;
        } else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
            ranges = r->nr_iovas == 2 && r->iova_ranges[0].end == 0xfedfffff;
        }
        if (!h->next) {
            break;
        }
    }
    check(mig, "type1: migration capability with configured limit");
    check(avail, "type1: DMA-available capability");
    check(ranges, "type1: IOVA ranges exclude the MSI window");
    free(info);
    legacy_close(&l);

    reset("type1.migration_cap = off");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    info = calloc(1, 4096);
    info->argsz = 4096;
    ASSERT_SYS(ioctl(l.container, VFIO_IOMMU_GET_INFO, info));
    mig = false;
    for (h = (void *)((char *)info + info->cap_offset); info->cap_offset;
         h = (void *)((char *)info + h->next)) {
        mig |= h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
        if (!h->next) {
            break;
        }
    }
    check(!mig, "type1: migration capability can be turned off");
    free(info);
    legacy_close(&l);
}

static void test_type1_map_unmap(void)
{
    struct legacy l;
    uint8_t *buf = buffer(0x10000);
    uint64_t n;

    reset("");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    CHECK_ERR(_map_dma(l.container, 0x100000, buf, 0x10000, 0), EINVAL,
              "type1: MAP_DMA without READ/WRITE is EINVAL");
    CHECK_ERR(_map_dma(l.container, 0x100800, buf, 0x10000, 3), EINVAL,
              "type1: unaligned IOVA is EINVAL");
    CHECK_ERR(_map_dma(l.container, 0x100000, buf, 0, 3), EINVAL,
              "type1: zero size is EINVAL");
    CHECK_ERR(_map_dma(l.container, 0xfee00000, buf, 0x10000, 3), EINVAL,
              "type1: IOVA in the reserved MSI window is EINVAL");
    check(_map_dma(l.container, 0x100000, buf, 0x10000, 3) == 0,
          "type1: MAP_DMA 64 KiB at 0x100000");
    CHECK_ERR(_map_dma(l.container, 0x108000, buf, 0x1000, 3), EEXIST,
              "type1: overlapping MAP_DMA is EEXIST");
    check(!strncmp(ctl("dma 0x104000 0x2000 0xa5a5a5a5deadbeef"),
                   "{\"ok\":true,\"pages\":2}", 21),
          "type1: device DMA through the mapping");
    check(*(uint64_t *)(buf + 0x4000) == 0xa5a5a5a5deadbeefull &&
          *(uint64_t *)(buf + 0x5ff8) == 0xa5a5a5a5deadbeefull &&
          *(uint64_t *)(buf + 0x6000) == 0,
          "type1: DMA wrote exactly the range into the mapped memory");
    check(strstr(ctl("dma 0x200000 0x1000 1"), "\"error\":\"fault\"") != NULL,
          "type1: DMA to an unmapped IOVA is a fault");
    check(strstr(ctl("dma 0x10f000 0x2000 1"), "\"iova\":1114112") != NULL &&
          buf[0xf000] == 0,
          "type1: DMA crossing the end faults and writes nothing");
    CHECK_ERR(_unmap_dma(l.container, 0x101000, 0x1000, 0, NULL), EINVAL,
              "type1 v2: unmap bisecting a mapping is EINVAL");
    check(_unmap_dma(l.container, 0x400000, 0x1000, 0, &n) == 0 && n == 0,
          "type1 v2: unmap of an empty range succeeds with size 0");
    check(_map_dma(l.container, 0x300000, buf, 0x1000, 1) == 0,
          "type1: read-only mapping");
    check(strstr(ctl("dma 0x300000 0x8 1"), "fault") != NULL,
          "type1: DMA write to a read-only mapping faults");
    CHECK_ERR(_unmap_dma(l.container, 1, 0, VFIO_DMA_UNMAP_FLAG_ALL, NULL),
              EINVAL, "type1: UNMAP_ALL with an iova is EINVAL");
    check(_unmap_dma(l.container, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &n) == 0 &&
          n == 0x11000, "type1: UNMAP_ALL removes everything (size %#llx)",
          (unsigned long long)n);
    legacy_close(&l);
    munmap(buf, 0x10000);
}

static void test_type1_dirty(void)
{
    struct legacy l;
    uint8_t *buf = buffer(0x40000);
    uint64_t bm[8];

    reset("");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x20000, 3);
    map_dma(l.container, 0x120000, buf + 0x20000, 0x20000, 3);
    memset(bm, 0, sizeof(bm));
    CHECK_ERR(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8), EINVAL,
              "type1: GET_BITMAP with tracking off is EINVAL");
    check(_dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START) == 0,
          "type1: DIRTY_PAGES start");
    CHECK_ERR(_dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
                        VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), EINVAL,
              "type1: two DIRTY_PAGES flags at once is EINVAL");
    check(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8) == 0 &&
          popcount(bm, 8) == 64,
          "type1 perpetual: every mapped page is reported dirty");
    memset(bm, 0, sizeof(bm));
    check(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8) == 0 &&
          popcount(bm, 8) == 64,
          "type1 perpetual: ... on every read");
    CHECK_ERR(_get_bitmap(l.container, 0x100000, 0x40000, 8192, bm, 8), EINVAL,
              "type1: bitmap pgsize other than the IOMMU's is EINVAL");
    CHECK_ERR(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 4), EINVAL,
              "type1: bitmap smaller than the range is EINVAL");
    CHECK_ERR(_get_bitmap(l.container, 0x110000, 0x20000, 4096, bm, 8), EINVAL,
              "type1: GET_BITMAP bisecting a mapping is EINVAL");
    CHECK_ERR(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm,
                         (256ull << 20) + 8), EINVAL,
              "type1: bitmap larger than DIRTY_BITMAP_SIZE_MAX is EINVAL");
    memset(bm, 0, sizeof(bm));
    check(_unmap_get_dirty(l.container, 0x120000, 0x20000, 4096, bm, 8) == 0 &&
          popcount(bm, 8) == 32 && bm[0] == 0xffffffffull,
          "type1: UNMAP with GET_DIRTY_BITMAP reports the range");
    {
        struct {
            struct vfio_iommu_type1_dma_unmap u;
            struct vfio_bitmap b;
        } a = { .u = { .argsz = sizeof(a),
                       .flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                                VFIO_DMA_UNMAP_FLAG_ALL },
                .b = { .pgsize = 4096, .size = 8, .data = bm } };
        CHECK_ERR(ioctl(l.container, VFIO_IOMMU_UNMAP_DMA, &a), EINVAL,
                  "type1: GET_DIRTY_BITMAP with UNMAP_ALL is EINVAL");
    }
    check(_dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) == 0,
          "type1: DIRTY_PAGES stop");
    CHECK_ERR(_unmap_get_dirty(l.container, 0x100000, 0x20000, 4096, bm, 8),
              EINVAL, "type1: UNMAP GET_DIRTY_BITMAP with tracking off is "
              "EINVAL");
    legacy_close(&l);

    /* the kernel's limit as QEMU sees it: a tiny max_dirty_bitmap_size */
    reset("type1.max_dirty_bitmap_size = 8");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x40000, 3);
    dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
    CHECK_ERR(_get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 16),
              EINVAL, "type1: bitmap above the configured maximum is EINVAL");
    legacy_close(&l);

    /* v1 (TYPE1) has no dirty tracking */
    reset("");
    legacy_open(&l, VFIO_TYPE1_IOMMU);
    CHECK_ERR(_dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START),
              EACCES, "type1 v1: DIRTY_PAGES is EACCES");
    legacy_close(&l);

    /* precise mode: only the pages the device wrote */
    reset("type1.dirty = precise");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x40000, 3);
    CTL_OK("dma 0x101000 0x10 7");
    dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
    memset(bm, 0, sizeof(bm));
    get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8);
    check(popcount(bm, 8) == 0,
          "type1 precise: writes before START are not reported");
    CTL_OK("dma 0x101000 0x10 7");
    CTL_OK("dma 0x13f000 0x1000 7");
    memset(bm, 0, sizeof(bm));
    get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8);
    check(bm[0] == (0x2 | 0x8000000000000000ull) && bm[1] == 0,
          "type1 precise: exactly the written pages are dirty");
    memset(bm, 0, sizeof(bm));
    get_bitmap(l.container, 0x100000, 0x40000, 4096, bm, 8);
    check(popcount(bm, 8) == 0, "type1 precise: a read clears");
    legacy_close(&l);
    munmap(buf, 0x40000);
}

/* the DMA-available capability of GET_INFO, or -1 */
static long dma_avail(int container)
{
    uint8_t raw[4096] = { 0 };
    struct vfio_iommu_type1_info *info = (void *)raw;
    struct vfio_info_cap_header *h;

    info->argsz = sizeof(raw);
    if (ioctl(container, VFIO_IOMMU_GET_INFO, info) || !info->cap_offset) {
        return -1;
    }
    for (h = (void *)(raw + info->cap_offset);;
         h = (void *)(raw + h->next)) {
        if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
            return ((struct vfio_iommu_type1_info_dma_avail *)h)->avail;
        }
        if (!h->next) {
            return -1;
        }
    }
}

/*
 * When the last group leaves a container, by UNSET_CONTAINER or by closing
 * the group fd, the kernel releases the container's IOMMU driver data
 * (container.c vfio_group_detach_container -> vfio_iommu_type1_release):
 * the next SET_IOMMU starts from a fresh vfio_iommu, with no mappings,
 * tracking off and dma_avail = dma_entry_limit.
 */
static void test_type1_last_group(void)
{
    uint8_t *buf = buffer(0x4000);
    uint64_t bm[1];
    int c, g;

    for (int unset = 0; unset < 2; unset++) {
        const char *how = unset ? "UNSET_CONTAINER" : "closing the group";

        reset("type1.dma_avail = 10");
        c = ASSERT_SYS(open("/dev/vfio/vfio", O_RDWR));
        g = ASSERT_SYS(open("/dev/vfio/42", O_RDWR));
        ASSERT_SYS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c));
        ASSERT_SYS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
        map_dma(c, 0x100000, buf, 0x1000, 3);
        map_dma(c, 0x101000, buf + 0x1000, 0x1000, 3);
        map_dma(c, 0x102000, buf + 0x2000, 0x1000, 3);
        dirty_ctl(c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
        check(dma_avail(c) == 7, "type1 last group (%s): 3 mappings take 3 "
              "of dma_avail", how);
        if (unset) {
            ASSERT_SYS(ioctl(g, VFIO_GROUP_UNSET_CONTAINER));
        } else {
            close(g);
            g = ASSERT_SYS(open("/dev/vfio/42", O_RDWR));
        }
        ASSERT_SYS(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c));
        ASSERT_SYS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
        check(dma_avail(c) == 10, "type1 last group (%s): a new SET_IOMMU "
              "starts with the full dma_avail (%ld)", how, dma_avail(c));
        check(_map_dma(c, 0x100000, buf, 0x1000, 3) == 0,
              "type1 last group (%s): the old mappings are gone", how);
        CHECK_ERR(_get_bitmap(c, 0x100000, 0x1000, 4096, bm, 8), EINVAL,
                  "type1 last group (%s): dirty tracking is off", how);
        close(g);
        close(c);
    }
    munmap(buf, 0x4000);
}

/* ================================================================ iommufd */

struct ifd {
    int iommufd, dev;
    uint32_t devid, ioas, hwpt;
};

static int _ioas_alloc(int fd, uint32_t *id)
{
    struct iommu_ioas_alloc a = { .size = sizeof(a) };
    int r = sys_err(ioctl(fd, IOMMU_IOAS_ALLOC, &a));

    *id = r ? 0 : a.out_ioas_id;
    return r;
}

#define ioas_alloc(fd) ({ \
        uint32_t id_; \
        ASSERT_OK(_ioas_alloc((fd), &id_)); \
        id_; \
    })

static int _ioas_map(int fd, uint32_t ioas, uint64_t iova, void *va,
                     uint64_t len, uint32_t flags, uint64_t *out)
{
    struct iommu_ioas_map m = {
        .size = sizeof(m), .flags = flags, .ioas_id = ioas,
        .user_va = (uintptr_t)va, .length = len, .iova = iova,
    };
    int r = sys_err(ioctl(fd, IOMMU_IOAS_MAP, &m));

    if (out) {
        *out = m.iova;
    }
    return r;
}

#define MAPRW (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | \
               IOMMU_IOAS_MAP_WRITEABLE)

static int _ioas_unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t len,
                       uint64_t *out)
{
    struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas,
                                  .iova = iova, .length = len };
    int r = sys_err(ioctl(fd, IOMMU_IOAS_UNMAP, &u));

    if (out) {
        *out = u.length;
    }
    return r;
}

static int _hwpt_alloc(int fd, uint32_t dev, uint32_t pt, uint32_t flags,
                       uint32_t *out)
{
    struct iommu_hwpt_alloc a = { .size = sizeof(a), .flags = flags,
                                  .dev_id = dev, .pt_id = pt };
    int r = sys_err(ioctl(fd, IOMMU_HWPT_ALLOC, &a));

    *out = a.out_hwpt_id;
    return r;
}

static int _set_dirty(int fd, uint32_t hwpt, bool on)
{
    struct iommu_hwpt_set_dirty_tracking s = {
        .size = sizeof(s), .hwpt_id = hwpt,
        .flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
    };
    return sys_err(ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &s));
}

static int _get_dirty(int fd, uint32_t hwpt, uint64_t iova, uint64_t len,
                      uint64_t pgsize, uint32_t flags, uint64_t *bm)
{
    struct iommu_hwpt_get_dirty_bitmap g = {
        .size = sizeof(g), .hwpt_id = hwpt, .flags = flags, .iova = iova,
        .length = len, .page_size = pgsize, .data = (uintptr_t)bm,
    };
    return sys_err(ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g));
}

static int _attach(int dev, uint32_t *pt)
{
    struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a),
                                               .pt_id = *pt };
    int r = sys_err(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a));

    *pt = a.pt_id;
    return r;
}

static int _dev_bind(int dev, int iommufd, uint32_t *devid)
{
    struct vfio_device_bind_iommufd b = { .argsz = sizeof(b),
                                          .iommufd = iommufd };
    int r = sys_err(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));

    if (!r) {
        *devid = b.out_devid;
    }
    return r;
}

#define ioas_map(...) ASSERT_OK(_ioas_map(__VA_ARGS__))
#define ioas_unmap(...) ASSERT_OK(_ioas_unmap(__VA_ARGS__))
#define hwpt_alloc(...) ASSERT_OK(_hwpt_alloc(__VA_ARGS__))
#define set_dirty(...) ASSERT_OK(_set_dirty(__VA_ARGS__))
#define get_dirty(...) ASSERT_OK(_get_dirty(__VA_ARGS__))
#define attach(...) ASSERT_OK(_attach(__VA_ARGS__))
#define dev_bind(...) ASSERT_OK(_dev_bind(__VA_ARGS__))

/* iommufd, cdev 0 bound, an IOAS, an HWPT on it, the device attached */
static void ifd_open(struct ifd *f, uint32_t hwpt_flags)
{
    f->iommufd = ASSERT_SYS(open("/dev/iommu", O_RDWR));
    f->dev = ASSERT_SYS(open("/dev/vfio/devices/vfio0", O_RDWR));
    dev_bind(f->dev, f->iommufd, &f->devid);
    f->ioas = ioas_alloc(f->iommufd);
    hwpt_alloc(f->iommufd, f->devid, f->ioas, hwpt_flags, &f->hwpt);
    attach(f->dev, &f->hwpt);
}

static void ifd_close(struct ifd *f)
{
    close(f->dev);
    close(f->iommufd);
}

static void test_iommufd_setup(void)
{
    struct iommu_iova_range r[4];
    struct iommu_ioas_iova_ranges q = { .size = sizeof(q) };
    struct iommu_hw_info hw = { .size = sizeof(hw) };
    struct iommu_hw_info_vtd vtd;
    struct stat sb;
    uint32_t devid = 0, ioas, hwpt, pt;
    int fd, dev;

    reset("");
    fd = open("/dev/iommu", O_RDWR);
    check(fd >= 0, "iommufd: open /dev/iommu");
    dev = open("/dev/vfio/devices/vfio0", O_RDWR);
    check(dev >= 0 && fstat(dev, &sb) == 0 && S_ISCHR(sb.st_mode) &&
          sb.st_rdev == makedev(238, 0),
          "iommufd: the vfio cdev is a char device with the sysfs dev_t");
    CHECK_ERR(ioctl(dev, VFIO_DEVICE_GET_INFO, &(struct vfio_device_info){
                  .argsz = sizeof(struct vfio_device_info) }), EINVAL,
              "cdev: ioctls before BIND are EINVAL");
    check(_dev_bind(dev, fd, &devid) == 0 && devid == 1,
          "cdev: BIND_IOMMUFD gives device id 1");
    CHECK_ERR(_dev_bind(dev, fd, &devid), EINVAL,
              "cdev: second BIND is EINVAL");
    ioas = ioas_alloc(fd);
    check(ioas == 2, "iommufd: IOAS_ALLOC takes the next free id");
    q.ioas_id = ioas;
    CHECK_ERR(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q), EMSGSIZE,
              "iommufd: IOVA_RANGES with no room is EMSGSIZE");
    check(q.num_iovas == 1, "iommufd: one range before any domain");
    q.num_iovas = 4;
    q.allowed_iovas = (uintptr_t)r;
    check(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q) == 0 && r[0].start == 0 &&
          r[0].last == UINT64_MAX && q.out_iova_alignment == 1,
          "iommufd: whole space, alignment 1, with no domain");
    hw.dev_id = devid;
    hw.data_len = sizeof(vtd);
    hw.data_uptr = (uintptr_t)&vtd;
    check(ioctl(fd, IOMMU_GET_HW_INFO, &hw) == 0 &&
          hw.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD &&
          (hw.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
          "iommufd: GET_HW_INFO reports VT-d with dirty tracking");
    hw.dev_id = 99;
    CHECK_ERR(ioctl(fd, IOMMU_GET_HW_INFO, &hw), ENOENT,
              "iommufd: GET_HW_INFO for an unknown device is ENOENT");
    CHECK_ERR(_hwpt_alloc(fd, devid, ioas, 1u << 7, &hwpt), EOPNOTSUPP,
              "iommufd: HWPT_ALLOC with unknown flags is EOPNOTSUPP");
    CHECK_ERR(_hwpt_alloc(fd, 42, ioas, 0, &hwpt), ENOENT,
              "iommufd: HWPT_ALLOC for an unknown device is ENOENT");
    CHECK_ERR(_hwpt_alloc(fd, devid, 42, 0, &hwpt), EINVAL,
              "iommufd: HWPT_ALLOC on an unknown IOAS is EINVAL");
    {
        struct iommu_hwpt_alloc a = { .size = sizeof(a), .dev_id = devid,
                                      .pt_id = ioas, .data_type = 1 };
        CHECK_ERR(ioctl(fd, IOMMU_HWPT_ALLOC, &a), EINVAL,
                  "iommufd: HWPT_ALLOC with a data type but no data is "
                  "EINVAL");
        a.size = 16;
        CHECK_ERR(ioctl(fd, IOMMU_HWPT_ALLOC, &a), EINVAL,
                  "iommufd: a struct size below the minimum is EINVAL");
    }
    pt = 42;
    CHECK_ERR(_attach(dev, &pt), ENOENT,
              "cdev: ATTACH to an unknown object is ENOENT");
    pt = devid;
    CHECK_ERR(_attach(dev, &pt), EINVAL,
              "cdev: ATTACH to a device object is EINVAL");
    check(_hwpt_alloc(fd, devid, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                     &hwpt) == 0, "iommufd: HWPT_ALLOC with DIRTY_TRACKING");
    pt = hwpt;
    check(_attach(dev, &pt) == 0 && pt == hwpt, "cdev: ATTACH to the HWPT");
    q.num_iovas = 4;
    check(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q) == 0 && q.num_iovas == 2 &&
          r[0].last == 0xfedfffff && r[1].start == 0xfef00000 &&
          q.out_iova_alignment == 4096,
          "iommufd: with a domain the MSI window is reserved, 4 KiB aligned");
    {
        struct iommu_destroy d = { .size = sizeof(d), .id = hwpt };
        CHECK_ERR(ioctl(fd, IOMMU_DESTROY, &d), EBUSY,
                  "iommufd: DESTROY of an attached HWPT is EBUSY");
        d.id = ioas;
        CHECK_ERR(ioctl(fd, IOMMU_DESTROY, &d), EBUSY,
                  "iommufd: DESTROY of an IOAS with a HWPT is EBUSY");
        d.id = 77;
        CHECK_ERR(ioctl(fd, IOMMU_DESTROY, &d), ENOENT,
                  "iommufd: DESTROY of an unknown id is ENOENT");
        struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };
        check(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt) == 0,
              "cdev: DETACH");
        d.id = hwpt;
        check(ioctl(fd, IOMMU_DESTROY, &d) == 0,
              "iommufd: DESTROY of a detached HWPT");
    }
    pt = ioas;
    check(_attach(dev, &pt) == 0 && pt != ioas && pt != 0,
          "cdev: ATTACH to an IOAS allocates an automatic domain");
    close(dev);
    close(fd);

    reset("iommu_dirty = off");
    fd = ASSERT_SYS(open("/dev/iommu", O_RDWR));
    dev = ASSERT_SYS(open("/dev/vfio/devices/vfio0", O_RDWR));
    dev_bind(dev, fd, &devid);
    ioas = ioas_alloc(fd);
    hw.dev_id = devid;
    ASSERT_SYS(ioctl(fd, IOMMU_GET_HW_INFO, &hw));
    check(!(hw.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
          "iommufd: iommu_dirty=off hides IOMMU_HW_CAP_DIRTY_TRACKING");
    CHECK_ERR(_hwpt_alloc(fd, devid, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                         &hwpt), EOPNOTSUPP,
              "iommufd: DIRTY_TRACKING HWPT without the capability is "
              "EOPNOTSUPP");
    close(dev);
    close(fd);
}

static void test_iommufd_map_unmap(void)
{
    struct ifd f;
    uint8_t *buf = buffer(0x40000);
    uint64_t out, n;

    reset("");
    ifd_open(&f, 0);
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x1000,
                       IOMMU_IOAS_MAP_FIXED_IOVA, NULL), EINVAL,
              "iommufd: MAP without READABLE/WRITEABLE is EINVAL");
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x1000,
                       MAPRW | (1u << 5), NULL), EOPNOTSUPP,
              "iommufd: MAP with unknown flags is EOPNOTSUPP");
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0x100800, buf, 0x1000, MAPRW, NULL),
              EINVAL, "iommufd: unaligned fixed IOVA is EINVAL");
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x800, MAPRW, NULL),
              EINVAL, "iommufd: unaligned length is EINVAL");
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0xfee00000, buf, 0x1000, MAPRW,
                       NULL), EINVAL, "iommufd: reserved IOVA is EINVAL");
    CHECK_ERR(_ioas_map(f.iommufd, 99, 0x100000, buf, 0x1000, MAPRW, NULL),
              ENOENT, "iommufd: unknown IOAS is ENOENT");
    check(_ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x10000, MAPRW,
                   NULL) == 0, "iommufd: MAP 64 KiB at 0x100000");
    check(_ioas_map(f.iommufd, f.ioas, 0x110000, buf + 0x10000, 0x10000, MAPRW,
                   NULL) == 0, "iommufd: MAP 64 KiB at 0x110000");
    CHECK_ERR(_ioas_map(f.iommufd, f.ioas, 0x10f000, buf, 0x2000, MAPRW, NULL),
              EEXIST, "iommufd: overlapping MAP is EEXIST");
    check(_ioas_map(f.iommufd, f.ioas, 0, buf + 0x20000, 0x10000,
                   IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                   &out) == 0 && !(out & 0xfff) &&
          (out + 0x10000 <= 0x100000 || out >= 0x120000),
          "iommufd: MAP without FIXED_IOVA picks a free aligned IOVA");
    ioas_unmap(f.iommufd, f.ioas, out, 0x10000, NULL);
    CHECK_ERR(_ioas_unmap(f.iommufd, f.ioas, 0x104000, 0x1000, NULL), ENOENT,
              "iommufd: UNMAP inside an area is ENOENT");
    CHECK_ERR(_ioas_unmap(f.iommufd, f.ioas, 0x200000, 0x1000, NULL), ENOENT,
              "iommufd: UNMAP of nothing is ENOENT");
    CHECK_ERR(_ioas_unmap(f.iommufd, f.ioas, 0x100000, 0, NULL), EINVAL,
              "iommufd: UNMAP of length 0 is EINVAL");
    CHECK_ERR(_ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x18000, NULL), ENOENT,
              "iommufd: UNMAP cutting the second area is ENOENT");
    check(strstr(ctl("dma 0x100000 8 1"), "fault") != NULL &&
          strstr(ctl("dma 0x110000 8 1"), "\"ok\":true") != NULL,
          "iommufd: ... but the wholly covered first area is gone");
    check(_ioas_unmap(f.iommufd, f.ioas, 0, UINT64_MAX, &n) == 0 &&
          n == 0x10000, "iommufd: UNMAP all reports the bytes unmapped");
    check(_ioas_unmap(f.iommufd, f.ioas, 0, UINT64_MAX, &n) == 0 && n == 0,
          "iommufd: UNMAP all of an empty IOAS succeeds");
    CHECK_ERR(_ioas_unmap(f.iommufd, f.ioas, 1, UINT64_MAX, NULL),
              EOVERFLOW, "iommufd: UNMAP length >= ULONG_MAX is EOVERFLOW");
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x10000,
             IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, NULL);
    check(strstr(ctl("dma 0x100000 8 1"), "fault") != NULL,
          "iommufd: DMA write to a read-only area faults");
    ifd_close(&f);
    munmap(buf, 0x40000);
}

static void test_iommufd_dirty(void)
{
    struct ifd f, plain;
    uint8_t *buf = buffer(0x40000);
    uint64_t bm[8];

    reset("");
    ifd_open(&plain, 0);
    CHECK_ERR(_set_dirty(plain.iommufd, plain.hwpt, true), EOPNOTSUPP,
              "iommufd: SET_DIRTY_TRACKING on a HWPT without dirty ops is "
              "EOPNOTSUPP");
    CHECK_ERR(_get_dirty(plain.iommufd, plain.hwpt, 0, 0x1000, 4096, 0, bm),
              EOPNOTSUPP, "iommufd: GET_DIRTY_BITMAP there is EOPNOTSUPP");
    ifd_close(&plain);

    reset("");
    ifd_open(&f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x20000, MAPRW, NULL);
    ioas_map(f.iommufd, f.ioas, 0x120000, buf + 0x20000, 0x20000, MAPRW,
             NULL);
    CHECK_ERR(_set_dirty(f.iommufd, 99, true), ENOENT,
              "iommufd: SET_DIRTY_TRACKING on an unknown HWPT is ENOENT");
    CTL_OK("dma 0x101000 0x10 1");
    check(_set_dirty(f.iommufd, f.hwpt, true) == 0,
          "iommufd: SET_DIRTY_TRACKING enable");
    memset(bm, 0, sizeof(bm));
    check(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096, 0, bm) == 0 &&
          popcount(bm, 8) == 0,
          "iommufd: enabling starts from clean PTEs (earlier DMA not dirty)");
    CTL_OK("dma 0x101000 0x10 1");
    CTL_OK("dma 0x11f800 0x1000 1");  /* two pages, across the area boundary */
    memset(bm, 0, sizeof(bm));
    check(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096,
                    IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, bm) == 0 &&
          bm[0] == ((1ull << 1) | (1ull << 31) | (1ull << 32)),
          "iommufd: dirty bits are exactly the written pages");
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096,
              IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, bm);
    check(popcount(bm, 8) == 3, "iommufd: NO_CLEAR leaves the bits set");
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096, 0, bm);
    check(popcount(bm, 8) == 3, "iommufd: a clearing read reports them");
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096, 0, bm);
    check(popcount(bm, 8) == 0, "iommufd: ... and clears them");
    CTL_OK("dma 0x102000 0x2000 1");
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 8192, 0, bm);
    check(bm[0] == 0x2, "iommufd: 8 KiB bitmap pages fold 4 KiB dirt");
    CHECK_ERR(_get_dirty(f.iommufd, f.hwpt, 0x100800, 0x1000, 4096, 0, bm),
              EINVAL, "iommufd: unaligned GET_DIRTY_BITMAP is EINVAL");
    CHECK_ERR(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0, 4096, 0, bm), EINVAL,
              "iommufd: zero-length GET_DIRTY_BITMAP is EINVAL");
    CHECK_ERR(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x1000, 0, 0, bm),
              EINVAL, "iommufd: page_size 0 is EINVAL");
    CHECK_ERR(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x1000, 4096, 2, bm),
              EOPNOTSUPP, "iommufd: unknown GET_DIRTY_BITMAP flags are "
              "EOPNOTSUPP");
    /* unmapping drops the range's bits with its PTEs */
    CTL_OK("dma 0x121000 0x10 1");
    ioas_unmap(f.iommufd, f.ioas, 0x120000, 0x20000, NULL);
    ioas_map(f.iommufd, f.ioas, 0x120000, buf + 0x20000, 0x20000, MAPRW,
             NULL);
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096, 0, bm);
    check(popcount(bm, 8) == 0, "iommufd: UNMAP drops the dirty bits");
    /* a hole ends the walk (iopt_for_each_contig_area) */
    ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x20000, NULL);
    CTL_OK("dma 0x121000 0x10 1");
    memset(bm, 0, sizeof(bm));
    check(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x40000, 4096,
                    IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, bm) == 0 &&
          popcount(bm, 8) == 0,
          "iommufd: a range starting in a hole reports nothing, succeeds");
    get_dirty(f.iommufd, f.hwpt, 0x120000, 0x20000, 4096, 0, bm);
    check(bm[0] == 0x2, "iommufd: the bit is there from the area's start");
    check(_set_dirty(f.iommufd, f.hwpt, false) == 0,
          "iommufd: SET_DIRTY_TRACKING disable");
    CTL_OK("dma 0x121000 0x10 1");
    memset(bm, 0, sizeof(bm));
    get_dirty(f.iommufd, f.hwpt, 0x120000, 0x20000, 4096, 0, bm);
    check(popcount(bm, 8) == 0, "iommufd: no dirt while tracking is off");
    ifd_close(&f);
    munmap(buf, 0x40000);
}

static void test_iommufd_generations(void)
{
    struct ifd f;
    struct iommu_ioas_change_process cp = { .size = sizeof(cp) };
    uint8_t *buf = buffer(0x10000);
    int mfd;

    reset("kernel = 6.12");
    ifd_open(&f, 0);
    CHECK_ERR(ioctl(f.iommufd, IOMMU_IOAS_CHANGE_PROCESS, &cp), ENOTTY,
              "6.12: IOMMU_IOAS_CHANGE_PROCESS is ENOTTY");
    {
        struct iommu_ioas_map_file mf = { .size = sizeof(mf) };
        CHECK_ERR(ioctl(f.iommufd, IOMMU_IOAS_MAP_FILE, &mf), ENOTTY,
                  "6.12: IOMMU_IOAS_MAP_FILE is ENOTTY");
    }
    ifd_close(&f);

    reset("kernel = 6.14");
    ifd_open(&f, 0);
    check(ioctl(f.iommufd, IOMMU_IOAS_CHANGE_PROCESS, &cp) == 0,
          "6.14: CHANGE_PROCESS succeeds with no mappings");
    mfd = ASSERT_SYS(memfd_create("hostsim-test", 0));
    ASSERT_SYS(ftruncate(mfd, 0x10000));
    {
        struct iommu_ioas_map_file mf = {
            .size = sizeof(mf), .flags = MAPRW, .ioas_id = f.ioas,
            .fd = mfd, .start = 0x1000, .length = 0x4000, .iova = 0x200000,
        };
        uint64_t *view = mmap(NULL, 0x10000, PROT_READ, MAP_SHARED, mfd, 0);

        check(ioctl(f.iommufd, IOMMU_IOAS_MAP_FILE, &mf) == 0,
              "6.14: IOMMU_IOAS_MAP_FILE of a memfd");
        CTL_OK("dma 0x201000 0x8 0x55");
        check(view[0x2000 / 8] == 0x55,
              "6.14: DMA lands at the file offset");
        check(ioctl(f.iommufd, IOMMU_IOAS_CHANGE_PROCESS, &cp) == 0,
              "6.14: CHANGE_PROCESS succeeds with file mappings only");
        munmap(view, 0x10000);
    }
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x10000, MAPRW, NULL);
    CHECK_ERR(ioctl(f.iommufd, IOMMU_IOAS_CHANGE_PROCESS, &cp), EINVAL,
              "6.14: CHANGE_PROCESS with anonymous mappings is EINVAL");
    {
        struct { uint32_t size, option_id; uint16_t op, res; uint32_t oid;
                 uint64_t val; } opt = { .size = sizeof(opt) };
        CHECK_ERR(ioctl(f.iommufd, IOMMU_OPTION, &opt), ENOTTY,
                  "iommufd: unmodelled IOMMU_OPTION answers ENOTTY");
    }
    close(mfd);
    ifd_close(&f);
    munmap(buf, 0x10000);
}

/* ================================================================ device */

static int _feature(int dev, uint32_t flags, void *data, size_t len)
{
    uint64_t buf[64] = { 0 };
    struct vfio_device_feature *f = (void *)buf;
    int r;

    f->argsz = (uint32_t)(sizeof(*f) + len);
    f->flags = flags;
    if (len) {
        memcpy(f->data, data, len);
    }
    r = sys_err(ioctl(dev, VFIO_DEVICE_FEATURE, f));
    if (len) {
        memcpy(data, f->data, len);
    }
    return r;
}

static int _set_state(int dev, uint32_t state, int *data_fd)
{
    struct vfio_device_feature_mig_state ms = { .device_state = state };
    int r = _feature(dev, VFIO_DEVICE_FEATURE_SET |
                     VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &ms, sizeof(ms));

    if (data_fd) {
        *data_fd = ms.data_fd;
    }
    return r;
}

#define feature(...) ASSERT_OK(_feature(__VA_ARGS__))
#define set_state(...) ASSERT_OK(_set_state(__VA_ARGS__))

static void test_device(void)
{
    struct legacy l;
    struct vfio_device_info di = { .argsz = sizeof(di) };
    struct vfio_region_info ri = { .argsz = sizeof(ri) };
    struct vfio_irq_info ii = { .argsz = sizeof(ii) };
    uint16_t vendor = 0;
    uint64_t mflags = 0, v;

    reset("device.vendor = 0x8086\ndevice.device_id = 0x1234");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    check(ioctl(l.device, VFIO_DEVICE_GET_INFO, &di) == 0 &&
          (di.flags & VFIO_DEVICE_FLAGS_PCI) && di.num_regions == 9 &&
          di.num_irqs == 5, "device: PCI device, 9 regions, 5 IRQ indexes");
    ri.index = VFIO_PCI_CONFIG_REGION_INDEX;
    ASSERT_SYS(ioctl(l.device, VFIO_DEVICE_GET_REGION_INFO, &ri));
    check(pread(l.device, &vendor, 2, (off_t)ri.offset) == 2 &&
          vendor == 0x8086, "device: config space shows the vendor id");
    ri.index = VFIO_PCI_VGA_REGION_INDEX;
    CHECK_ERR(ioctl(l.device, VFIO_DEVICE_GET_REGION_INFO, &ri), EINVAL,
              "device: no VGA region");
    ii.index = VFIO_PCI_ERR_IRQ_INDEX;
    CHECK_ERR(ioctl(l.device, VFIO_DEVICE_GET_IRQ_INFO, &ii), EINVAL,
              "device: no AER IRQ on a conventional PCI function");
    ii.index = VFIO_PCI_INTX_IRQ_INDEX;
    check(ioctl(l.device, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0 && ii.count == 0,
          "device: no INTx pin");
    check(_feature(l.device, VFIO_DEVICE_FEATURE_GET |
                  VFIO_DEVICE_FEATURE_MIGRATION, &mflags, 8) == 0 &&
          mflags == 7, "device: migration flags STOP_COPY|P2P|PRE_COPY");
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_PROBE |
                      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0), ENOTTY,
              "device: DMA logging off -> PROBE is ENOTTY");
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_GET |
                      VFIO_DEVICE_FEATURE_SET |
                      VFIO_DEVICE_FEATURE_MIGRATION, &mflags, 8), EINVAL,
              "device: GET|SET without PROBE is EINVAL");
    /* BAR0 DMA engine */
    {
        uint8_t *buf = buffer(0x2000);
        uint64_t iova = 0x500000, len = 0x1000, pat = 0x77;

        map_dma(l.container, 0x500000, buf, 0x2000, 3);
        ASSERT_SYS(pwrite(l.device, &iova, 8, 0x00));
        ASSERT_SYS(pwrite(l.device, &len, 8, 0x08));
        ASSERT_SYS(pwrite(l.device, &pat, 8, 0x10));
        v = 1;
        ASSERT_SYS(pwrite(l.device, &v, 8, 0x18));
        ASSERT_SYS(pread(l.device, &v, 8, 0x20));
        check(v == 0 && *(uint64_t *)(buf + 0xff8) == 0x77,
              "device: BAR doorbell runs a DMA");
        ASSERT_SYS(pread(l.device, &v, 8, 0x28));
        check(v == 1, "device: BAR shows the DMA counter");
        munmap(buf, 0x2000);
    }
    legacy_close(&l);

    reset("migration = off");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_GET |
                      VFIO_DEVICE_FEATURE_MIGRATION, &mflags, 8), ENOTTY,
              "device: migration = off -> MIGRATION feature is ENOTTY");
    legacy_close(&l);
}

static void test_migration(void)
{
    struct legacy l;
    uint8_t *buf = buffer(0x10000), blob[4096], tmp[4096];
    struct vfio_precopy_info pi = { .argsz = sizeof(pi) };
    size_t blen = 0;
    ssize_t r;
    int dfd, dfd2;
    uint64_t scratch = 0xfeedface;

    reset("");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x10000, 3);
    CTL_OK("dma 0x100000 0x3000 9");
    ASSERT_SYS(pwrite(l.device, &scratch, 8, 0x40));
    check(_set_state(l.device, VFIO_DEVICE_STATE_PRE_COPY, &dfd) == 0 &&
          dfd >= 0, "migration: RUNNING -> PRE_COPY returns a data fd");
    check(ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &pi) == 0 &&
          pi.initial_bytes > 0, "migration: PRECOPY_INFO has initial bytes");
    while ((r = read(dfd, blob + blen, 64)) > 0) {
        blen += (size_t)r;
    }
    check(r < 0 && errno == ENOMSG,
          "migration: PRE_COPY end of data is ENOMSG");
    check(_set_state(l.device, VFIO_DEVICE_STATE_STOP_COPY, &dfd2) == 0 &&
          dfd2 == -1, "migration: PRE_COPY -> STOP_COPY keeps the same fd");
    CHECK_ERR(ioctl(dfd, VFIO_MIG_GET_PRECOPY_INFO, &pi), EINVAL,
              "migration: PRECOPY_INFO outside PRE_COPY is EINVAL");
    while ((r = read(dfd, blob + blen, 64)) > 0) {
        blen += (size_t)r;
    }
    check(r == 0 && blen > 0, "migration: STOP_COPY ends with EOF (%zu "
          "bytes)", blen);
    CHECK_ERR(_set_state(l.device, VFIO_DEVICE_STATE_PRE_COPY, NULL), EINVAL,
              "migration: STOP_COPY -> PRE_COPY is blocked");
    check(_set_state(l.device, VFIO_DEVICE_STATE_STOP, NULL) == 0,
          "migration: STOP_COPY -> STOP");
    check(strstr(ctl("dma 0x100000 8 1"), "\"error\":\"device_stopped\"") != NULL,
          "migration: a stopped device does no DMA");
    hs_cfg.dma_when_stopped = true;
    check(strstr(ctl("dma 0x100000 8 1"), "\"ok\":true") != NULL,
          "migration: ... unless dma_when_stopped = on");
    hs_cfg.dma_when_stopped = false;
    CHECK_ERR(read(dfd, tmp, 1), ENODEV,
              "migration: the old data fd is dead");
    close(dfd);
    legacy_close(&l);

    /* a fresh device resumes from the stream */
    reset("");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    check(_set_state(l.device, VFIO_DEVICE_STATE_RESUMING, &dfd) == 0 &&
          dfd >= 0, "migration: RUNNING -> RESUMING (via P2P, STOP)");
    CHECK_ERR(read(dfd, tmp, 1), EINVAL,
              "migration: a resuming fd is not readable");
    check(write(dfd, blob, blen) == (ssize_t)blen,
          "migration: write the stream");
    check(_set_state(l.device, VFIO_DEVICE_STATE_RUNNING, NULL) == 0,
          "migration: RESUMING -> RUNNING loads the state");
    check(strstr(ctl("state"), "\"dma_writes\":1,\"dma_bytes\":12288") != NULL,
          "migration: the destination has the source's DMA counters");
    scratch = 0;
    ASSERT_SYS(pread(l.device, &scratch, 8, 0x40));
    check(scratch == 0xfeedface, "migration: BAR scratch register migrated");
    close(dfd);

    /* a corrupted stream fails the load */
    set_state(l.device, VFIO_DEVICE_STATE_RESUMING, &dfd);
    blob[20] ^= 0xff;
    ASSERT_SYS(write(dfd, blob, blen));
    CHECK_ERR(_set_state(l.device, VFIO_DEVICE_STATE_STOP, NULL), EINVAL,
              "migration: a corrupted stream fails RESUMING -> STOP");
    close(dfd);
    legacy_close(&l);

    reset("precopy = off\np2p = off");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    CHECK_ERR(_set_state(l.device, VFIO_DEVICE_STATE_PRE_COPY, NULL), EINVAL,
              "migration: PRE_COPY unsupported -> EINVAL");
    check(_set_state(l.device, VFIO_DEVICE_STATE_STOP_COPY, &dfd) == 0 &&
          dfd >= 0, "migration: RUNNING -> STOP_COPY without P2P");
    close(dfd);
    legacy_close(&l);
    munmap(buf, 0x10000);
}

static void test_dma_logging(void)
{
    struct legacy l;
    uint8_t *buf = buffer(0x20000);
    struct vfio_device_feature_dma_logging_range ranges[2] = {
        { .iova = 0x100000, .length = 0x10000 },
        { .iova = 0x110000, .length = 0x10000 },
    };
    struct vfio_device_feature_dma_logging_control c = {
        .page_size = 4096, .num_ranges = 2, .ranges = (uintptr_t)ranges };
    uint64_t bm[4] = { 0 };
    struct vfio_device_feature_dma_logging_report rep = {
        .iova = 0x100000, .length = 0x20000, .page_size = 4096,
        .bitmap = (uintptr_t)bm };

    reset("dma_logging = on");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x20000, 3);
    check(_feature(l.device, VFIO_DEVICE_FEATURE_PROBE |
                  VFIO_DEVICE_FEATURE_SET |
                  VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0) == 0,
          "dma log: PROBE succeeds");
    c.num_ranges = 0;
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_SET |
                      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c, sizeof(c)),
              EINVAL, "dma log: no ranges is EINVAL");
    c.num_ranges = 2;
    ranges[1].iova = 0x108000;
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_SET |
                      VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c, sizeof(c)),
              EINVAL, "dma log: overlapping ranges are EINVAL");
    ranges[1].iova = 0x110000;
    check(_feature(l.device, VFIO_DEVICE_FEATURE_SET |
                  VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c, sizeof(c)) == 0,
          "dma log: START");
    CTL_OK("dma 0x100000 0x10 1");
    CTL_OK("dma 0x11f000 0x10 1");
    check(_feature(l.device, VFIO_DEVICE_FEATURE_GET |
                  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep,
                  sizeof(rep)) == 0 &&
          bm[0] == (1 | (1ull << 31)) && bm[1] == 0,
          "dma log: REPORT has the written pages");
    memset(bm, 0, sizeof(bm));
    feature(l.device, VFIO_DEVICE_FEATURE_GET |
            VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep, sizeof(rep));
    check(popcount(bm, 4) == 0, "dma log: REPORT read-and-clears");
    rep.page_size = 2048;
    CHECK_ERR(_feature(l.device, VFIO_DEVICE_FEATURE_GET |
                      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep,
                      sizeof(rep)), EINVAL,
              "dma log: REPORT page size below 4 KiB is EINVAL");
    check(_feature(l.device, VFIO_DEVICE_FEATURE_SET |
                  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0) == 0,
          "dma log: STOP");
    legacy_close(&l);
    munmap(buf, 0x20000);
}

/* ================================================================ faults */

/*
 * Milliseconds one dirty bitmap read of f's mapping at 0x100000 takes;
 * -1 when it fails (a delay must not fail the call).
 */
static long elapsed_ms_of_get_dirty(struct ifd *f, uint64_t *bm)
{
    struct timespec t0, t1;
    int ret;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    ret = _get_dirty(f->iommufd, f->hwpt, 0x100000, 0x4000, 4096, 0, bm);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (ret) {
        return -1;
    }
    return (t1.tv_sec - t0.tv_sec) * 1000 +
           (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

static void test_faults(void)
{
    long ms;
    struct legacy l;
    struct ifd f;
    uint8_t *buf = buffer(0x10000);
    uint64_t bm[2];
    uint32_t id;

    reset("fault = VFIO_IOMMU_MAP_DMA nth=2 errno=ENOSPC");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    check(_map_dma(l.container, 0x100000, buf, 0x1000, 3) == 0,
          "fault: first MAP_DMA passes");
    CHECK_ERR(_map_dma(l.container, 0x101000, buf, 0x1000, 3), ENOSPC,
              "fault: the 2nd MAP_DMA fails with the chosen errno");
    check(_map_dma(l.container, 0x101000, buf, 0x1000, 3) == 0,
          "fault: the 3rd passes again");
    legacy_close(&l);

    reset("fault = IOMMU_HWPT_GET_DIRTY_BITMAP iova=0x104000-0x104fff "
          "errno=EIO");
    ifd_open(&f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x10000, MAPRW, NULL);
    set_dirty(f.iommufd, f.hwpt, true);
    check(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x4000, 4096, 0, bm) == 0,
          "fault: range rule ignores a disjoint range");
    CHECK_ERR(_get_dirty(f.iommufd, f.hwpt, 0x100000, 0x10000, 4096, 0, bm),
              EIO, "fault: range rule fires on an intersecting range");
    check(strstr(ctl("fault IOMMU_IOAS_UNMAP nth=1 errno=EBUSY"), "true") &&
          _ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x10000, NULL) < 0 &&
          errno == EBUSY, "fault: rule added over the control socket");
    check(strstr(ctl("clear-faults"), "true") &&
          _ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x10000, NULL) == 0,
          "fault: clear-faults");
    check(strstr(ctl("fault any nth=1 errno=EIO"), "true") &&
          _ioas_alloc(f.iommufd, &id) == -EIO &&
          _ioas_alloc(f.iommufd, &id) == 0 && id != 0,
          "fault: 'any' counts every call");
    check(strstr(ctl("fault dma iova=0x0-0xffffffff errno=EFAULT"), "true") &&
          strstr(ctl("dma 0x100000 8 1"), "fault"),
          "fault: device DMA can be failed too");
    ifd_close(&f);

    reset("fault = IOMMU_HWPT_GET_DIRTY_BITMAP nth=2 delay_ms=150");
    ifd_open(&f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x10000, MAPRW, NULL);
    set_dirty(f.iommufd, f.hwpt, true);
    ms = elapsed_ms_of_get_dirty(&f, bm);
    check(ms >= 0 && ms < 150,
          "fault: delay_ms leaves the calls it does not match alone");
    check(elapsed_ms_of_get_dirty(&f, bm) >= 150,
          "fault: delay_ms answers the matching call after the delay");
    check(strstr(ctl("fault IOMMU_IOAS_UNMAP delay_ms=0"), "false") != NULL,
          "fault: a zero delay is refused");
    ifd_close(&f);
    munmap(buf, 0x10000);
}

/* ================================================================ lost */

static uint64_t lost_pages(void)
{
    const char *p = strstr(ctl("state"), "\"lost_dirty_pages\":");

    return p ? strtoull(p + strlen("\"lost_dirty_pages\":"), NULL, 10)
             : ~0ull;
}

static void test_lost_dirty(void)
{
    struct ifd f;
    struct legacy l;
    uint8_t *buf = buffer(0x10000);
    uint64_t bm[2];

    reset("");
    ifd_open(&f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x4000, MAPRW, NULL);
    ioas_map(f.iommufd, f.ioas, 0x104000, buf + 0x4000, 0x4000, MAPRW, NULL);
    CTL_OK("dma 0x100000 8 1");        /* tracking off: nothing to lose */
    ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x4000, NULL);
    check(lost_pages() == 0, "lost: DMA with tracking off is not counted");
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x4000, MAPRW, NULL);
    set_dirty(f.iommufd, f.hwpt, true);
    CTL_OK("dma 0x101000 0x2000 1");
    ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x4000, NULL);
    check(lost_pages() == 2, "lost: IOAS_UNMAP discards 2 unreported dirty "
          "pages");
    CTL_OK("dma 0x105000 8 1");
    get_dirty(f.iommufd, f.hwpt, 0x104000, 0x4000, 4096,
              IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, bm);
    ioas_unmap(f.iommufd, f.ioas, 0x104000, 0x4000, NULL);
    check(lost_pages() == 2, "lost: a NO_CLEAR read before the unmap "
          "harvests them");
    ifd_close(&f);

    reset("");
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x4000, 3);
    map_dma(l.container, 0x104000, buf + 0x4000, 0x4000, 3);
    dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
    CTL_OK("dma 0x100000 8 1");
    unmap_dma(l.container, 0x100000, 0x4000, 0, NULL);
    check(lost_pages() == 1, "lost: type1 UNMAP without the bitmap discards "
          "the written page");
    CTL_OK("dma 0x104000 8 1");
    memset(bm, 0, sizeof(bm));
    unmap_get_dirty(l.container, 0x104000, 0x4000, 4096, bm, 8);
    check(lost_pages() == 1, "lost: UNMAP with GET_DIRTY_BITMAP reports it");
    legacy_close(&l);
    munmap(buf, 0x10000);
}

/* ================================================================ multi */

static void test_two_devices(void)
{
    uint8_t *a = buffer(0x2000), *b = buffer(0x2000);
    int c, g1, g2, d1, d2, d3, fd, cd;
    uint32_t devid = 0, pt;
    struct ifd f;

    reset("device1.name = 0000:00:06.0\ndevice1.group = 43\n"
          "device1.cdev = 1\ndevice2.name = 0000:00:07.0\n"
          "device2.group = 43\ndevice2.cdev = 2");
    c = ASSERT_SYS(open("/dev/vfio/vfio", O_RDWR));
    g1 = open("/dev/vfio/42", O_RDWR);
    g2 = open("/dev/vfio/43", O_RDWR);
    check(g1 >= 0 && g2 >= 0, "multi: both groups open");
    ASSERT_SYS(ioctl(g1, VFIO_GROUP_SET_CONTAINER, &c));
    check(ioctl(g2, VFIO_GROUP_SET_CONTAINER, &c) == 0,
          "multi: two groups share one container");
    ASSERT_SYS(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
    CHECK_ERR(ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, "0000:00:06.0"), ENODEV,
              "multi: a device is only reachable through its own group");
    d1 = ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, "0000:00:05.0");
    d2 = ioctl(g2, VFIO_GROUP_GET_DEVICE_FD, "0000:00:06.0");
    d3 = ioctl(g2, VFIO_GROUP_GET_DEVICE_FD, "0000:00:07.0");
    check(d1 >= 0 && d2 >= 0 && d3 >= 0,
          "multi: three devices, two of them in one group");
    map_dma(c, 0x100000, a, 0x2000, 3);
    check(strstr(ctl("dma 0x100000 8 0x11 dev=0000:00:06.0"), "true") &&
          strstr(ctl("dma 0x101000 8 0x22 dev=2"), "true") &&
          a[0] == 0x11 && a[0x1000] == 0x22,
          "multi: each device DMAs through the shared container");
    check(strstr(ctl("state dev=1"), "\"device\":\"0000:00:06.0\"") &&
          strstr(ctl("state dev=1"), "\"dma_writes\":1") &&
          strstr(ctl("state"), "\"dma_writes\":0"),
          "multi: per-device state and counters");
    check(strstr(ctl("dma 0x100000 8 1 dev=9"), "no such device") != NULL,
          "multi: unknown device selector");
    close(d1);
    close(d2);
    close(d3);
    close(g1);
    close(g2);
    close(c);

    /* iommufd: device 0 and device 1 in separate IOASes */
    ifd_open(&f, 0);
    ioas_map(f.iommufd, f.ioas, 0x100000, a, 0x2000, MAPRW, NULL);
    cd = ASSERT_SYS(open("/dev/vfio/devices/vfio1", O_RDWR));
    fd = f.iommufd;
    dev_bind(cd, fd, &devid);
    pt = ioas_alloc(fd);
    ioas_map(fd, pt, 0x100000, b, 0x2000, MAPRW, NULL);
    check(_attach(cd, &pt) == 0, "multi: second cdev attached to its IOAS");
    CTL_OK("dma 0x100000 8 0x33");
    CTL_OK("dma 0x100000 8 0x44 dev=1");
    check(a[0] == 0x33 && b[0] == 0x44,
          "multi: same IOVA, different domains, different memory");
    close(cd);
    ifd_close(&f);
    munmap(a, 0x2000);
    munmap(b, 0x2000);
}

/*
 * Devices behind different IOMMU units (deviceN.iommu_dirty): the
 * capability, HWPT_ALLOC and attach follow the device's own IOMMU.
 */
static void test_mixed_iommu_dirty(void)
{
    struct iommu_hw_info hw = { .size = sizeof(hw) };
    uint32_t dev0 = 0, dev1 = 0, ioas, hwpt_d, hwpt_p, pt;
    int fd, c0, c1;
    FILE *fp;
    char line[4096];
    bool logged = false;

    reset("device1.name = 0000:00:06.0\ndevice1.group = 43\n"
          "device1.cdev = 1\ndevice1.iommu_dirty = off");
    fd = ASSERT_SYS(open("/dev/iommu", O_RDWR));
    c0 = ASSERT_SYS(open("/dev/vfio/devices/vfio0", O_RDWR));
    c1 = ASSERT_SYS(open("/dev/vfio/devices/vfio1", O_RDWR));
    dev_bind(c0, fd, &dev0);
    dev_bind(c1, fd, &dev1);
    ioas = ioas_alloc(fd);
    hw.dev_id = dev0;
    check(ioctl(fd, IOMMU_GET_HW_INFO, &hw) == 0 &&
          (hw.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
          "mixed: device 0 (global iommu_dirty) reports DIRTY_TRACKING");
    hw.dev_id = dev1;
    check(ioctl(fd, IOMMU_GET_HW_INFO, &hw) == 0 &&
          !(hw.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING),
          "mixed: device1.iommu_dirty=off hides it for device 1 only");
    CHECK_ERR(_hwpt_alloc(fd, dev1, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                         &hwpt_p), EOPNOTSUPP,
              "mixed: DIRTY_TRACKING HWPT for device 1 is EOPNOTSUPP");
    check(_hwpt_alloc(fd, dev0, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                     &hwpt_d) == 0,
          "mixed: DIRTY_TRACKING HWPT for device 0");
    pt = hwpt_d;
    check(_attach(c0, &pt) == 0 && pt == hwpt_d,
          "mixed: device 0 attaches to the dirty-tracking HWPT");
    pt = hwpt_d;
    CHECK_ERR(_attach(c1, &pt), EINVAL,
              "mixed: device 1 attaching to the dirty-tracking HWPT is "
              "EINVAL (incompatible domain)");
    check(strstr(ctl("state dev=1"), "\"backend\":null") != NULL,
          "mixed: ... and device 1 stays unattached");
    check(_hwpt_alloc(fd, dev1, ioas, 0, &hwpt_p) == 0,
          "mixed: plain HWPT for device 1");
    pt = hwpt_p;
    check(_attach(c1, &pt) == 0 && pt == hwpt_p,
          "mixed: device 1 attaches to its own plain HWPT");
    pt = hwpt_d;
    CHECK_ERR(_attach(c1, &pt), EINVAL,
              "mixed: replacing device 1's HWPT by the dirty one is EINVAL");
    pt = hwpt_p;
    check(_attach(c0, &pt) == 0 && pt == hwpt_p,
          "mixed: device 0 can join the plain HWPT");
    fp = fopen(logpath, "r");
    while (fp && fgets(line, sizeof(line), fp)) {
        if (strstr(line, "\"call\":\"VFIO_DEVICE_ATTACH_IOMMUFD_PT\"") &&
            strstr(line, "\"incompatible\":\"dirty_tracking\"") &&
            strstr(line, "\"errname\":\"EINVAL\"")) {
            logged = true;
        }
    }
    if (fp) {
        fclose(fp);
    }
    check(logged, "mixed: the refused attach is logged with its reason");
    close(c0);
    close(c1);
    close(fd);
}

/* ================================================================ log */

static void test_log(void)
{
    FILE *fp;
    char line[4096];
    long prev = 0;
    bool mono = true, shapes = true, unhandled = false, injected = false;
    int n = 0;

    reset("fault = VFIO_GET_API_VERSION nth=1 errno=EPERM");
    {
        int c = ASSERT_SYS(open("/dev/vfio/vfio", O_RDWR));

        /* both fail on purpose; the log lines are what is checked */
        ioctl(c, VFIO_GET_API_VERSION);
        /* SPAPR-only; with no IOMMU driver set container.c says EINVAL */
        ioctl(c, VFIO_IOMMU_ENABLE);
        close(c);
    }
    fp = fopen(logpath, "r");
    while (fp && fgets(line, sizeof(line), fp)) {
        long seq;

        n++;
        if (sscanf(line, "{\"seq\":%ld,", &seq) != 1) {
            shapes = false;
            continue;
        }
        mono &= seq > prev;
        prev = seq;
        shapes &= strstr(line, "\"call\":\"") && strstr(line, "\"ret\":") &&
                  strstr(line, "\"errno\":") && line[strlen(line) - 2] == '}';
        if (strstr(line, "\"call\":\"unhandled\"") &&
            strstr(line, "\"request_name\":\"VFIO_IOMMU_ENABLE\"") &&
            strstr(line, "\"errname\":\"EINVAL\"")) {
            unhandled = true;
        }
        if (strstr(line, "VFIO_GET_API_VERSION") &&
            strstr(line, "\"injected\":true") &&
            strstr(line, "\"errname\":\"EPERM\"")) {
            injected = true;
        }
    }
    if (fp) {
        fclose(fp);
    }
    check(n == 4 && shapes, "log: %d JSON lines with seq/call/ret/errno", n);
    check(mono, "log: seq is monotonic");
    check(unhandled, "log: an unmodelled request is logged as unhandled, "
          "answered as the kernel would (EINVAL without an IOMMU driver)");
    check(injected, "log: injected faults are marked");
}

/* ================================================================ counters */

/* a field of one call's counters in a "counters" answer, or -1 */
static long long counter(const char *resp, const char *call,
                         const char *field)
{
    char key[128];
    const char *p, *end;

    snprintf(key, sizeof(key), "\"%s\":{", call);
    p = strstr(resp, key);
    if (!p) {
        return -1;
    }
    end = strchr(p, '}');
    snprintf(key, sizeof(key), "\"%s\":", field);
    p = strstr(p, key);
    if (!p || p > end) {
        return -1;
    }
    return strtoll(p + strlen(key), NULL, 10);
}

/* the calls of test_counters, run with the log on or off */
static void counted_calls(void)
{
    struct legacy l;
    struct ifd f;
    uint8_t *buf = buffer(0x4000);
    uint64_t bm[1];

    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x1000, 3);
    map_dma(l.container, 0x101000, buf + 0x1000, 0x1000, 3);
    ASSERT_TRUE(_map_dma(l.container, 0x101000, buf + 0x1000, 0x1000, 3) ==
                -EEXIST);
    dirty_ctl(l.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
    get_bitmap(l.container, 0x100000, 0x2000, 4096, bm, 8);
    unmap_dma(l.container, 0x100000, 0x2000, 0, NULL);
    legacy_close(&l);
    ifd_open(&f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    ioas_map(f.iommufd, f.ioas, 0x100000, buf, 0x4000, MAPRW, NULL);
    set_dirty(f.iommufd, f.hwpt, true);
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x4000, 4096, 0, bm);
    get_dirty(f.iommufd, f.hwpt, 0x100000, 0x4000, 4096, 0, bm);
    ioas_unmap(f.iommufd, f.ioas, 0x100000, 0x4000, NULL);
    ifd_close(&f);
    munmap(buf, 0x4000);
}

static void test_counters(void)
{
    struct stat sb;
    struct hs_call c;
    char on[8192];
    const char *off;

    /* the same calls with the log on and off count the same */
    unlink(logpath);
    reset("");
    counted_calls();
    snprintf(on, sizeof(on), "%s", ctl("counters"));
    ASSERT_TRUE(hs_model_reset("") == 0);     /* the log is off */
    counted_calls();
    off = ctl("counters");
    check(counter(off, "VFIO_IOMMU_MAP_DMA", "calls") == 3 &&
          counter(off, "VFIO_IOMMU_MAP_DMA", "errors") == 1,
          "counters: MAP_DMA counted with the log off, the EEXIST as an "
          "error");
    check(counter(off, "VFIO_IOMMU_UNMAP_DMA", "calls") == 1 &&
          counter(off, "VFIO_IOMMU_DIRTY_PAGES", "calls") == 2 &&
          counter(off, "IOMMU_HWPT_GET_DIRTY_BITMAP", "calls") == 2 &&
          counter(off, "IOMMU_IOAS_UNMAP", "calls") == 1,
          "counters: unmap and dirty-bitmap reads of both backends");
    check(counter(off, "VFIO_IOMMU_MAP_DMA", "ns") > 0,
          "counters: the time spent in the model is counted");
    {
        static const char *const calls[] = {
            "open", "close", "VFIO_SET_IOMMU", "VFIO_IOMMU_MAP_DMA",
            "VFIO_IOMMU_UNMAP_DMA", "VFIO_IOMMU_DIRTY_PAGES",
            "IOMMU_IOAS_MAP", "IOMMU_HWPT_GET_DIRTY_BITMAP",
        };
        bool same = true;

        for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
            same &= counter(on, calls[i], "calls") > 0 &&
                    counter(on, calls[i], "calls") ==
                    counter(off, calls[i], "calls") &&
                    counter(on, calls[i], "errors") ==
                    counter(off, calls[i], "errors");
        }
        check(same, "counters: the same calls and errors with the log on");
    }
    check(strstr(ctl("state"), "\"counters\":{\"open\":{\"calls\":") != NULL,
          "counters: part of the state answer");
    check(strstr(ctl("clear-counters"), "true") &&
          strstr(ctl("counters"), "\"counters\":{}") != NULL,
          "counters: clear-counters");
    /* with the log off nothing is formatted, and nothing is written */
    hs_call_begin(&c, "test", -1);
    hs_call_u64(&c, "iova", 1);
    hs_call_str(&c, "path", "/dev/null");
    check(c.alen == 0, "counters: with the log off no argument is "
          "formatted");
    hs_call_end(&c, 0, 0);
    check(stat(logpath, &sb) == 0 && sb.st_size > 0,
          "counters: the log-on run wrote its log");
    {
        off_t size = sb.st_size;

        counted_calls();
        check(stat(logpath, &sb) == 0 && sb.st_size == size,
              "counters: the log-off run wrote nothing");
    }
    reset("");
    hs_call_begin(&c, "test", -1);
    hs_call_u64(&c, "iova", 1);
    check(c.alen > 0, "counters: with the log on the arguments are "
          "formatted");
    hs_call_end(&c, 0, 0);
}

/* ================================================================ control */

static void test_control_socket(void)
{
    char cfg[512], sock[256], resp[4096];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct legacy l;
    uint8_t *buf = buffer(0x1000);
    int s;
    ssize_t n;

    snprintf(sock, sizeof(sock), "%s.sock", logpath);
    snprintf(cfg, sizeof(cfg), "control = %s", sock);
    reset(cfg);
    legacy_open(&l, VFIO_TYPE1v2_IOMMU);
    map_dma(l.container, 0x100000, buf, 0x1000, 3);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    strcpy(sa.sun_path, sock);
    check(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0,
          "control: connect to the socket");
    send(s, "dma 0x100000 16 0x42\nstate\n", 27, 0);
    n = 0;
    while (n < (ssize_t)sizeof(resp) - 1) {
        ssize_t k = recv(s, resp + n, sizeof(resp) - 1 - (size_t)n, 0);
        if (k <= 0) {
            break;
        }
        n += k;
        resp[n] = 0;
        if (strchr(resp, '\n') && strchr(strchr(resp, '\n') + 1, '\n')) {
            break;
        }
    }
    resp[n > 0 ? n : 0] = 0;
    check(strstr(resp, "{\"ok\":true,\"pages\":1}\n") == resp,
          "control: dma over the socket");
    check(strstr(resp, "\"device_state\":\"RUNNING\"") &&
          strstr(resp, "\"mappings\":[{\"iova\":1048576,\"length\":4096"),
          "control: state lists device state and mappings");
    check(buf[0] == 0x42, "control: the write reached memory");
    close(s);
    legacy_close(&l);
    munmap(buf, 0x1000);
    reset("");
    unlink(sock);
}

int main(void)
{
    snprintf(logpath, sizeof(logpath), "/tmp/hostsim-selftest-%d.log",
             (int)getpid());
    RUN(test_type1_setup);
    RUN(test_type1_info);
    RUN(test_type1_map_unmap);
    RUN(test_type1_dirty);
    RUN(test_type1_last_group);
    RUN(test_iommufd_setup);
    RUN(test_iommufd_map_unmap);
    RUN(test_iommufd_dirty);
    RUN(test_iommufd_generations);
    RUN(test_device);
    RUN(test_migration);
    RUN(test_dma_logging);
    RUN(test_faults);
    RUN(test_two_devices);
    RUN(test_mixed_iommu_dirty);
    RUN(test_lost_dirty);
    unlink(logpath);
    RUN(test_log);
    RUN(test_counters);
    RUN(test_control_socket);
    unlink(logpath);
    printf("1..%d\n", ntests);
    printf("# %d passed, %d failed\n", ntests - nfailed, nfailed);
    return nfailed ? 1 : 0;
}
