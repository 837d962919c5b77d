/*
 * hostsim: an in-process model of the Linux VFIO / iommufd kernel interfaces
 * and of one VFIO PCI device, loaded into QEMU with LD_PRELOAD.
 *
 * Internal declarations shared by the model's source files.  Every model
 * entry point runs under hs_lock (one big lock): QEMU's threads and the
 * control-socket thread never see a half-updated model.
 */
#ifndef HOSTSIM_H
#define HOSTSIM_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "uapi.h"

#define HS_PAGE_SIZE 4096ull
#define HS_PAGE_SHIFT 12
#define HS_MAX_FD 65536
#define HS_MAX_FAULTS 32
#define HS_MAX_HWPT_SLOTS 8     /* HWPTs (IOMMU domains) per IOAS */
#define HS_MAX_IOBJ 256         /* iommufd object ids per context */

/* ------------------------------------------------------------ config */
struct hs_fault {
    char call[64];          /* ioctl name as logged, or "any" */
    uint64_t nth;           /* 0: every matching call */
    bool has_range;
    uint64_t first, last;   /* inclusive IOVA range */
    int err;                /* 0: the call is only delayed */
    uint64_t delay_ms;      /* slept before the call is answered */
    uint64_t seen;          /* matching calls counted so far */
};

#define HS_MAX_DEVS 4

/* one modelled VFIO PCI device ("device." keys, or "deviceN." for N >= 1) */
struct hs_devcfg {
    bool present;
    char name[64];
    int group;
    int cdev;
    unsigned vendor, device_id, subsys_vendor, subsys_id, class_code;
    uint64_t bar0_size;
    /* -1 while parsing: then the global key's value */
    int migration, precopy, p2p, dma_logging;
    int iommu_dirty;            /* its IOMMU instance tracks dirty pages */
    int fd;                     /* inherited fd to treat as its cdev */
};

struct hs_config {
    bool active;
    int kernel;                 /* 612 or 614 */
    char log_path[PATH_MAX];
    char control_path[PATH_MAX];
    int ndevs;
    struct hs_devcfg dev[HS_MAX_DEVS];
    int cdev_major;
    bool migration, precopy, p2p;
    bool dma_logging;
    bool dma_when_stopped;      /* let a stopped device DMA (test aid) */
    bool iommu_dirty;
    bool type1_migration_cap;
    uint64_t type1_pgsize_bitmap;       /* migration cap: dirty page sizes */
    uint64_t type1_iova_pgsizes;        /* IOMMU_GET_INFO iova_pgsizes */
    uint64_t type1_max_dirty_bitmap_size;
    bool type1_precise;
    uint32_t type1_dma_avail;
    unsigned aw_bits;
    int fd_iommufd;             /* inherited fd to treat as /dev/iommu */
    int nfaults;
    struct hs_fault faults[HS_MAX_FAULTS];
};

extern struct hs_config hs_cfg;
extern pthread_mutex_t hs_lock;

int hs_config_parse_text(struct hs_config *cfg, const char *text, char *err,
                         size_t errlen);
int hs_config_load(struct hs_config *cfg, const char *path);
void hs_config_defaults(struct hs_config *cfg);
int hs_fault_parse(struct hs_fault *f, const char *spec);
int hs_errno_from_name(const char *name);
const char *hs_errno_name(int err);

/* ------------------------------------------------------------ log */
/* One in-flight kernel-interface call: its name and decoded arguments. */
struct hs_call {
    const char *name;
    int fd;
    /* the log is on: arguments are formatted into args, else skipped */
    bool logging;
    uint64_t start_ns;          /* CLOCK_MONOTONIC at hs_call_begin */
    char args[1536];
    size_t alen;
    bool has_range;
    uint64_t first, last;
    bool injected;
    uint64_t delayed_ms;
    bool fault_checked;
};

void hs_call_begin(struct hs_call *c, const char *name, int fd);
void hs_call_u64(struct hs_call *c, const char *key, uint64_t v);
void hs_call_hex(struct hs_call *c, const char *key, uint64_t v);
void hs_call_i64(struct hs_call *c, const char *key, int64_t v);
void hs_call_str(struct hs_call *c, const char *key, const char *v);
void hs_call_bool(struct hs_call *c, const char *key, bool v);
void hs_call_range(struct hs_call *c, uint64_t iova, uint64_t len);
/* Emit the log line; ret is the syscall's return, err its errno. */
void hs_call_end(struct hs_call *c, long ret, int err);
void hs_log_open(const char *path);
uint64_t hs_log_calls(void);
/*
 * Append printf output at out[n], never past out[max - 1] (out stays
 * NUL-terminated; what does not fit is cut); returns the new length.
 */
size_t hs_putf(char *out, size_t max, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Per-call counters, kept with the log on or off (counters.c). */
void hs_counters_add(const char *name, bool failed, uint64_t ns);
void hs_counters_clear(void);
/* {"NAME":{"calls":N,"errors":N,"ns":N},...}; returns its length */
size_t hs_counters_json(char *out, size_t max);

enum hs_kind {
    HS_NONE = 0,
    HS_CONTAINER,       /* /dev/vfio/vfio */
    HS_GROUP,           /* /dev/vfio/N */
    HS_DEVICE,          /* device fd from a group or the cdev */
    HS_IOMMUFD,         /* /dev/iommu */
    HS_DATAFD,          /* migration data fd */
};

/* Mark the call as not implemented: logged as "unhandled"; returns -err. */
long hs_unhandled(struct hs_call *c, unsigned long req, int err);

/* ------------------------------------------------------------ faults */
/* Decode the IOVA range an ioctl acts on, for range-filtered faults. */
void hs_decode_range(struct hs_call *c, enum hs_kind kind, unsigned long req,
                     const void *arg);
/* Returns an errno to inject for this call, or 0. Counts the call. */
int hs_fault_check(struct hs_call *c);
int hs_fault_add(const char *spec);
void hs_fault_clear(void);

/* ------------------------------------------------------------ mappings */
#define HS_PROT_READ 1
#define HS_PROT_WRITE 2

struct hs_map {
    uint64_t iova, length;
    uint64_t vaddr;             /* host VA (0 when file backed) */
    int file_fd;                /* dup of IOAS_MAP_FILE fd, or -1 */
    uint64_t file_start;
    void *file_va;              /* our own mapping of the file, lazily */
    int prot;
    /* dirty bits, one per 4 KiB page from iova, allocated lazily */
    uint64_t *t1_dirty;     /* type1: written by the device, not reported */
    uint64_t *hwpt_dirty[HS_MAX_HWPT_SLOTS]; /* iommufd PTE dirty bits */
    /* iommufd: dirty bits no GET_DIRTY_BITMAP has returned yet */
    uint64_t *hwpt_unrep[HS_MAX_HWPT_SLOTS];
};

/* Drop a slot's dirty state in every area (free both bitmaps). */
void hs_map_drop_slot(struct hs_map *m, int slot);
/* Bits set in a lazily allocated per-page bitmap of m. */
uint64_t hs_map_count(const struct hs_map *m, const uint64_t *bits);
/*
 * Pages the device wrote while dirty tracking was on that no dirty report
 * returned before their mapping went away: dirty state the kernel
 * discarded unseen (data a migration would lose).
 */
extern uint64_t hs_lost_dirty_pages;

struct hs_maplist {
    struct hs_map **v;
    size_t n, cap;
};

struct hs_map *hs_map_new(uint64_t iova, uint64_t length, int prot);
void hs_map_free(struct hs_map *m);
void hs_maplist_insert(struct hs_maplist *l, struct hs_map *m);
/* Free and drop entries [i, k) with one move (large unmaps stay linear). */
void hs_maplist_remove_range(struct hs_maplist *l, size_t i, size_t k);
/* First map intersecting [first,last], or NULL; *idx receives its index. */
struct hs_map *hs_maplist_find(const struct hs_maplist *l, uint64_t first,
                               uint64_t last, size_t *idx);
void hs_maplist_clear(struct hs_maplist *l);
/* Host address for iova inside m (maps file-backed areas on demand). */
void *hs_map_host(struct hs_map *m, uint64_t iova);
/*
 * The IOVA aperture: ranges usable for DMA (type1, and iommufd with a
 * domain).  Fills up to max ranges, returns how many there are.
 */
int hs_iova_ranges(struct iommu_iova_range *r, int max);
/* [first, last] lies inside one range of the aperture */
bool hs_iova_valid(uint64_t first, uint64_t last);

/* ------------------------------------------------------------ bitmaps */
uint64_t *hs_bits_alloc(uint64_t nbits);
void hs_bits_set(uint64_t *b, uint64_t bit);
bool hs_bits_test(const uint64_t *b, uint64_t bit);
/* Set user-bitmap bit for iova (relative to base, in pgsize units). */
void hs_user_bit_set(uint64_t *ubitmap, uint64_t base, uint64_t pgsize,
                     uint64_t iova);

/* ------------------------------------------------------------ objects */
struct hs_container;
struct hs_group;
struct hs_devfd;
struct hs_ictx;
struct hs_datafd;
struct hs_obj;

/*
 * What each kind of model fd does, as the kernel's struct file_operations:
 * the shim finds the object behind an fd in the table (fdtable.c) and calls
 * through these, so it knows no module.  A NULL entry is an operation the
 * kind does not have (read/write: EINVAL, pread/pwrite: ESPIPE, ioctl:
 * ENOTTY).  read/write/pread/pwrite return -1 with errno set, like libc;
 * open and ioctl return -errno.
 */
struct hs_file_ops {
    enum hs_kind kind;
    const char *name;           /* "object" of the close log line */
    /* device nodes only: create the object for node instance id */
    int (*open)(struct hs_obj *o, int id);
    long (*ioctl)(struct hs_call *c, int fd, struct hs_obj *o,
                  unsigned long req, void *arg);
    ssize_t (*read)(int fd, struct hs_obj *o, void *buf, size_t n);
    ssize_t (*write)(int fd, struct hs_obj *o, const void *buf, size_t n);
    ssize_t (*pread)(int fd, struct hs_obj *o, void *buf, size_t n,
                     off_t off);
    ssize_t (*pwrite)(int fd, struct hs_obj *o, const void *buf, size_t n,
                      off_t off);
    /* the last fd (or holder) is gone */
    void (*release)(struct hs_obj *o);
};

extern const struct hs_file_ops hs_container_fops;
extern const struct hs_file_ops hs_group_fops;
extern const struct hs_file_ops hs_device_fops;
extern const struct hs_file_ops hs_iommufd_fops;
extern const struct hs_file_ops hs_datafd_fops;

struct hs_obj {
    const struct hs_file_ops *ops;
    int refs;           /* fds referring to it (dup), and holders */
    union {
        struct hs_container *container;
        struct hs_group *group;
        struct hs_devfd *devfd;
        struct hs_ictx *ictx;
        struct hs_datafd *datafd;
        void *p;
    } u;
};

/* the object behind a model fd, or NULL for every other fd */
struct hs_obj *hs_fd_get(int fd);
/* fd now refers to o (takes a reference) */
void hs_fd_install(int fd, struct hs_obj *o);
struct hs_obj *hs_obj_new(const struct hs_file_ops *ops, void *p);
/* Drop a reference; the last one releases the object. */
void hs_obj_put(struct hs_obj *o);
/* A new object of ops behind a new real fd: the fd, or -errno. */
int hs_obj_install_new(const struct hs_file_ops *ops, void *p, int flags);
/* open() of a device node: ops->open(id) behind a new fd; fd or -errno */
int hs_obj_open(const struct hs_file_ops *ops, int id, int flags);
/* An inherited fd stands for a node instance (fd passing). */
void hs_obj_adopt(const struct hs_file_ops *ops, int id, int fd);
int hs_new_backing_fd(int flags);   /* a real fd to stand for an object */
/* Forget every fd (the self-test's model reset; objects are leaked). */
void hs_fd_forget_all(void);

/*
 * The calls of the shim on model fds (fdtable.c).  Each takes the model
 * lock, and returns false when fd is not (or no longer) a model fd: the
 * shim then passes the call to libc.  *ret follows the libc convention.
 */
bool hs_fd_ioctl(int fd, unsigned long req, void *arg, int *ret);
bool hs_fd_read(int fd, void *buf, size_t n, ssize_t *ret);
bool hs_fd_write(int fd, const void *buf, size_t n, ssize_t *ret);
bool hs_fd_pread(int fd, void *buf, size_t n, off_t off, ssize_t *ret);
bool hs_fd_pwrite(int fd, const void *buf, size_t n, off_t off,
                  ssize_t *ret);
/* Before the real close: fd no longer refers to its object. */
void hs_fd_close(int fd);
/* After a real dup of a model fd to newfd. */
void hs_fd_dup(int oldfd, int newfd);

/* ------------------------------------------------------------ nodes */
/* The device nodes the model owns (nodes.c). */
enum hs_node { HS_NODE_NONE, HS_NODE_CONTAINER, HS_NODE_GROUP,
               HS_NODE_IOMMU, HS_NODE_CDEV, HS_NODE_VFIO_DIR,
               HS_NODE_DEVICES_DIR };

/* *id: group number for a group, device index for a cdev */
enum hs_node hs_node_lookup(const char *path, int *id);
/* open() of a node that is not a directory: the fd, or -1 with errno */
int hs_node_open(const char *path, int flags, enum hs_node n, int id);
/* Treat an inherited fd as an open node (fd passing). */
void hs_node_adopt(int fd, enum hs_node n, int id);
/* What stat() reports for a node path / a model fd; false: not ours. */
bool hs_node_stat(const char *path, struct stat *st);
bool hs_node_fstat(int fd, struct stat *st);

/* real libc entry points (libc.c, resolved with dlsym(RTLD_NEXT)) */
extern int (*hs_real_open)(const char *, int, ...);
extern int (*hs_real_close)(int);
extern ssize_t (*hs_real_read)(int, void *, size_t);
extern ssize_t (*hs_real_write)(int, const void *, size_t);
extern int (*hs_real_ioctl)(int, unsigned long, ...);
void hs_libc_resolve(void);

/* ------------------------------------------------------------ type1 */
struct hs_container {
    bool iommu_set;
    bool v2;
    int ngroups;
    struct hs_maplist maps;
    bool dirty_tracking;
    uint32_t dma_avail;
};

struct hs_group {
    int id;
    struct hs_container *container;
    struct hs_obj *container_obj;
    int device_fds;     /* open device fds obtained from this group */
    /*
     * The group fd is closed (detached, no longer in hs_groups) but device
     * fds obtained from it are still open: they keep the memory, and the
     * last of them frees it.
     */
    bool closed;
};

/* open groups (a group node opens once at a time) */
extern struct hs_group *hs_groups[HS_MAX_DEVS];

uint64_t hs_type1_pgsize(void);

/* ------------------------------------------------------------ iommufd */
enum hs_iobj_type { HS_IOBJ_FREE = 0, HS_IOBJ_IOAS, HS_IOBJ_HWPT, HS_IOBJ_DEVICE };

struct hs_ioas {
    struct hs_maplist maps;
    int ndomains;               /* HWPTs on this IOAS */
    bool slot_used[HS_MAX_HWPT_SLOTS];
};

struct hs_hwpt {
    uint32_t ioas_id;
    int slot;                   /* index in hs_map.hwpt_dirty */
    uint32_t flags;
    bool dirty_tracking;
    int attached;               /* devices attached */
    bool autodomain;
};

struct hs_iobj {
    enum hs_iobj_type type;
    union {
        struct hs_ioas *ioas;
        struct hs_hwpt *hwpt;
        struct hs_devfd *dev;
    } u;
};

struct hs_ictx {
    struct hs_iobj objs[HS_MAX_IOBJ];   /* index = object id, 0 unused */
};

struct hs_ioas *hs_ictx_ioas(struct hs_ictx *ctx, uint32_t id);
struct hs_hwpt *hs_ictx_hwpt(struct hs_ictx *ctx, uint32_t id);
/* device side of iommufd (called from the device fd ioctls) */
long hs_iommufd_bind(struct hs_devfd *d, struct hs_obj *ictx_obj,
                     uint32_t *devid);
long hs_iommufd_attach(struct hs_call *c, struct hs_devfd *d,
                       uint32_t *pt_id);
long hs_iommufd_detach(struct hs_devfd *d);
void hs_iommufd_unbind(struct hs_devfd *d);

/* ------------------------------------------------------------ device */
struct hs_device;
struct hs_devfd {
    struct hs_device *dev;
    bool from_group;            /* legacy: obtained by GROUP_GET_DEVICE_FD */
    struct hs_group *group;
    bool bound;                 /* cdev: bound to an iommufd */
    struct hs_obj *ictx_obj;
    uint32_t devid;
    uint32_t hwpt_id;           /* 0 when not attached */
};

#define HS_MIG_BLOB_MAX 4096
struct hs_device {
    int index;
    const struct hs_devcfg *cfg;
    uint8_t config[256];
    uint8_t bar0[4096];         /* register file, see device.c */
    uint32_t mig_state;
    uint64_t dma_writes, dma_bytes, dma_faults;
    uint64_t resets;
    uint64_t loaded_from_migration;
    int irq_efd[VFIO_PCI_NUM_IRQS];
    /* device dirty tracking (DMA logging) */
    bool log_on;
    uint64_t log_page_size;
    uint32_t log_nranges;
    struct vfio_device_feature_dma_logging_range log_ranges[256];
    uint64_t *log_bits[256];
    struct hs_datafd *data;     /* current migration data fd, if any */
    struct hs_obj *data_obj;
};
extern struct hs_device hs_devs[HS_MAX_DEVS];

void hs_device_init(void);
/* device by index, or by name; NULL if not configured */
struct hs_device *hs_device_get(int index);
struct hs_device *hs_device_by_name(const char *name);
/* open device fds (the DMA engine looks for the one with a translation) */
#define HS_MAX_DEVFDS 8
extern struct hs_devfd *hs_devfds[HS_MAX_DEVFDS];
struct hs_devfd *hs_devfd_new(struct hs_device *dev, bool from_group);

/* migration (migration.c) */
struct hs_datafd {
    struct hs_device *dev;
    bool saving;                /* STOP_COPY/PRE_COPY source side */
    uint8_t buf[HS_MIG_BLOB_MAX];
    size_t len, pos;
    bool precopy;               /* currently in a PRE_COPY state */
    bool dead;                  /* device left the data states */
};
long hs_feature_migration(struct hs_call *c, struct hs_devfd *d,
                          uint32_t flags, void *data, size_t datasz);
long hs_feature_mig_state(struct hs_call *c, struct hs_devfd *d,
                          uint32_t flags, void *data, size_t datasz);
long hs_feature_mig_data_size(struct hs_call *c, struct hs_devfd *d,
                              uint32_t flags, void *data, size_t datasz);
const char *hs_mig_state_name(uint32_t s);
void hs_migration_reset(struct hs_device *D);

/* DMA logging (dmalog.c) */
long hs_feature_log_start(struct hs_call *c, struct hs_device *D,
                          uint32_t flags, void *data, size_t datasz);
long hs_feature_log_stop(struct hs_call *c, struct hs_device *D,
                         uint32_t flags, size_t datasz);
long hs_feature_log_report(struct hs_call *c, struct hs_device *D,
                           uint32_t flags, void *data, size_t datasz);
void hs_dmalog_mark(struct hs_device *D, uint64_t iova, uint64_t len);
void hs_dmalog_reset(struct hs_device *D);

/*
 * include/linux/vfio.h vfio_check_feature(), an inline there too: the
 * feature handlers of migration.c and dmalog.c share it without calling
 * back into device.c.  1: go on, 0: PROBE answered, -errno.
 */
static inline int hs_check_feature(uint32_t flags, size_t argsz,
                                   uint32_t supported, size_t minsz)
{
    if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) &
        ~supported) {
        return -EINVAL;
    }
    if (flags & VFIO_DEVICE_FEATURE_PROBE) {
        return 0;
    }
    if (!(flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET))) {
        return -EINVAL;
    }
    if (argsz < minsz) {
        return -EINVAL;
    }
    return 1;
}

/* ------------------------------------------------------------ DMA */
struct hs_dma_result {
    bool ok;
    uint64_t pages;
    uint64_t fault_iova;
    int err;
};
/* The device writes pattern over [iova, iova+len) through its IOMMU. */
void hs_dma_write(struct hs_device *D, uint64_t iova, uint64_t len,
                  uint64_t pattern, struct hs_dma_result *res);
/* Read back through the IOMMU (for tests); returns false on fault. */
bool hs_dma_read(struct hs_device *D, uint64_t iova, void *out, uint64_t len,
                 uint64_t *fault);
/* Describe the device's translation for `state`. */
size_t hs_dma_describe(struct hs_device *D, char *out, size_t max);

/* ------------------------------------------------------------ control */
void hs_control_start(const char *path);
void hs_control_stop(void);
/* Handle one request line; writes one JSON line (no newline) into out. */
void hs_control_handle(const char *line, char *out, size_t max);

/* ------------------------------------------------------------ lifecycle */
/* (Re)initialise the model from config text: for the self-test. */
int hs_model_reset(const char *config_text);
void hs_model_init_from_env(void);

/* names of ioctls for the log */
const char *hs_ioctl_name(enum hs_kind kind, unsigned long req);

#endif
