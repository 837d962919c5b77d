/*
 * libc interposition: the calls QEMU (and glib) make on VFIO / iommufd
 * device nodes and on the fds they return are answered by the model; every
 * other path and fd goes to the real libc untouched.
 *
 * Each model object is backed by a real fd (opened on /dev/null) so that
 * fd numbers are unique, close/poll/dup/fcntl behave, and the table below
 * maps fd -> object.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hostsim.h"

pthread_mutex_t hs_lock = PTHREAD_MUTEX_INITIALIZER;

int (*hs_real_open)(const char *, int, ...);
int (*hs_real_close)(int);
ssize_t (*hs_real_read)(int, void *, size_t);
ssize_t (*hs_real_write)(int, const void *, size_t);
int (*hs_real_ioctl)(int, unsigned long, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fstat)(int, struct stat *);
static int (*real_stat)(const char *, struct stat *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fxstat)(int, int, struct stat *);
static int (*real_xstat)(int, const char *, struct stat *);
static int (*real_lxstat)(int, const char *, struct stat *);
static int (*real_fxstatat)(int, int, const char *, struct stat *, int);
static int (*real_statx)(int, const char *, int, unsigned, struct statx *);
static int (*real_access)(const char *, int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);

static struct hs_obj *fdtab[HS_MAX_FD];

static void resolve(void)
{
#define R(var, name) if (!var) { var = dlsym(RTLD_NEXT, name); }
    R(hs_real_open, "open");
    R(hs_real_close, "close");
    R(hs_real_read, "read");
    R(hs_real_write, "write");
    R(hs_real_ioctl, "ioctl");
    R(real_openat, "openat");
    R(real_pread, "pread64");
    R(real_pwrite, "pwrite64");
    R(real_fstat, "fstat64");
    R(real_stat, "stat64");
    R(real_lstat, "lstat64");
    R(real_fstatat, "fstatat64");
    R(real_fxstat, "__fxstat64");
    R(real_xstat, "__xstat64");
    R(real_lxstat, "__lxstat64");
    R(real_fxstatat, "__fxstatat64");
    R(real_statx, "statx");
    R(real_access, "access");
    R(real_dup, "dup");
    R(real_dup2, "dup2");
    R(real_dup3, "dup3");
    R(real_fcntl, "fcntl64");
#undef R
}

/* ------------------------------------------------------------ fd table */

static inline struct hs_obj *fd_peek(int fd)
{
    if ((unsigned)fd >= HS_MAX_FD) {
        return NULL;
    }
    return __atomic_load_n(&fdtab[fd], __ATOMIC_ACQUIRE);
}

struct hs_obj *hs_fd_get(int fd)
{
    return fd_peek(fd);
}

void hs_fd_install(int fd, struct hs_obj *o)
{
    if ((unsigned)fd < HS_MAX_FD) {
        if (o) {
            o->refs++;
        }
        __atomic_store_n(&fdtab[fd], o, __ATOMIC_RELEASE);
    }
}

struct hs_obj *hs_obj_new(enum hs_kind kind, void *p)
{
    struct hs_obj *o = calloc(1, sizeof(*o));

    o->kind = kind;
    o->u.p = p;
    return o;
}

void hs_obj_release(struct hs_obj *o)
{
    switch (o->kind) {
    case HS_CONTAINER:
        hs_container_release(o->u.container);
        break;
    case HS_GROUP:
        hs_group_release(o->u.group);
        break;
    case HS_DEVICE:
        hs_devfd_release(o->u.devfd);
        break;
    case HS_IOMMUFD:
        hs_ictx_release(o->u.ictx);
        break;
    case HS_DATAFD:
        hs_datafd_release(o->u.datafd);
        break;
    default:
        break;
    }
    free(o);
}

int hs_new_backing_fd(int flags)
{
    resolve();
    return hs_real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
}

/* ------------------------------------------------------------ paths */

enum node { NODE_NONE, NODE_CONTAINER, NODE_GROUP, NODE_IOMMU, NODE_CDEV,
            NODE_VFIO_DIR, NODE_DEVICES_DIR };

/* *id: group number for NODE_GROUP, device index for NODE_CDEV */
static enum node classify(const char *path, int *id)
{
    char buf[64];

    if (!hs_cfg.active || !path) {
        return NODE_NONE;
    }
    if (!strcmp(path, "/dev/vfio/vfio")) {
        return NODE_CONTAINER;
    }
    if (!strcmp(path, "/dev/iommu")) {
        return NODE_IOMMU;
    }
    if (!strcmp(path, "/dev/vfio") || !strcmp(path, "/dev/vfio/")) {
        return NODE_VFIO_DIR;
    }
    if (!strcmp(path, "/dev/vfio/devices")) {
        return NODE_DEVICES_DIR;
    }
    for (int i = 0; i < hs_cfg.ndevs; i++) {
        const struct hs_devcfg *d = &hs_cfg.dev[i];

        snprintf(buf, sizeof(buf), "/dev/vfio/%d", d->group);
        if (!strcmp(path, buf)) {
            *id = d->group;
            return NODE_GROUP;
        }
        snprintf(buf, sizeof(buf), "/dev/vfio/devices/vfio%d", d->cdev);
        if (!strcmp(path, buf)) {
            *id = i;
            return NODE_CDEV;
        }
        snprintf(buf, sizeof(buf), "/dev/char/%d:%d", hs_cfg.cdev_major,
                 d->cdev);
        if (!strcmp(path, buf)) {
            *id = i;
            return NODE_CDEV;
        }
    }
    return NODE_NONE;
}

/* device numbers the nodes report; the cdev one matches sysfs "dev" */
static dev_t node_rdev(enum node n, int id)
{
    switch (n) {
    case NODE_CONTAINER: return makedev(10, 196);   /* misc "vfio" */
    case NODE_IOMMU: return makedev(10, 125);       /* misc "iommu" */
    case NODE_GROUP: return makedev(243, (unsigned)id);
    case NODE_CDEV: return makedev((unsigned)hs_cfg.cdev_major,
                                   (unsigned)hs_cfg.dev[id].cdev);
    default: return 0;
    }
}

static void fill_stat(struct stat *st, enum node n, int id)
{
    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(0, 5);     /* devtmpfs */
    st->st_ino = 1000 + (ino_t)n * 100 + (ino_t)id;
    if (n == NODE_VFIO_DIR || n == NODE_DEVICES_DIR) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFCHR | 0666;
        st->st_nlink = 1;
        st->st_rdev = node_rdev(n, id);
    }
    st->st_blksize = 4096;
}

static enum node obj_node(struct hs_obj *o, int *id)
{
    *id = 0;
    switch (o->kind) {
    case HS_CONTAINER: return NODE_CONTAINER;
    case HS_GROUP:
        *id = o->u.group->id;
        return NODE_GROUP;
    case HS_DEVICE:
        *id = o->u.devfd->dev->index;
        return o->u.devfd->from_group ? NODE_NONE : NODE_CDEV;
    case HS_IOMMUFD: return NODE_IOMMU;
    default: return NODE_NONE;
    }
}

/* ------------------------------------------------------------ open */

static int model_open(const char *path, int flags, enum node n, int id)
{
    struct hs_call c;
    struct hs_obj *o = NULL;
    int fd = -1, err = 0;

    pthread_mutex_lock(&hs_lock);
    hs_call_begin(&c, "open", -1);
    hs_call_str(&c, "path", path);
    hs_call_hex(&c, "flags", (uint64_t)flags);
    err = hs_fault_check(&c);
    if (err) {
        goto out;
    }
    switch (n) {
    case NODE_CONTAINER: {
        struct hs_container *ct = calloc(1, sizeof(*ct));
        ct->dma_avail = hs_cfg.type1_dma_avail;
        o = hs_obj_new(HS_CONTAINER, ct);
        break;
    }
    case NODE_GROUP: {
        /* group.c vfio_group_fops_open: one opener at a time */
        struct hs_group *g = hs_group_open(id);
        if (!g) {
            err = EBUSY;
            goto out;
        }
        o = hs_obj_new(HS_GROUP, g);
        break;
    }
    case NODE_IOMMU:
        o = hs_obj_new(HS_IOMMUFD, calloc(1, sizeof(struct hs_ictx)));
        break;
    case NODE_CDEV:
        o = hs_obj_new(HS_DEVICE, hs_devfd_new(hs_device_get(id), false));
        break;
    default:
        err = EISDIR;
        goto out;
    }
    fd = hs_new_backing_fd(flags);
    if (fd < 0) {
        err = errno;
        hs_obj_release(o);
        goto out;
    }
    hs_fd_install(fd, o);
out:
    c.fd = fd;
    hs_call_end(&c, err ? -1 : fd, err);
    pthread_mutex_unlock(&hs_lock);
    if (err) {
        errno = err;
        return -1;
    }
    return fd;
}

static int do_open(const char *path, int flags, mode_t mode)
{
    enum node n;
    int id = 0;

    resolve();
    n = classify(path, &id);
    if (n != NODE_NONE && n != NODE_VFIO_DIR && n != NODE_DEVICES_DIR) {
        return model_open(path, flags, n, id);
    }
    return hs_real_open(path, flags, mode);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    enum node n;
    int id = 0;

    resolve();
    n = path && path[0] == '/' ? classify(path, &id) : NODE_NONE;
    if (n != NODE_NONE && n != NODE_VFIO_DIR && n != NODE_DEVICES_DIR) {
        return model_open(path, flags, n, id);
    }
    return real_openat(dirfd, path, flags, mode);
}

#define MODE_ARG(flags, mode) \
    mode_t mode = 0; \
    if ((flags) & (O_CREAT | __O_TMPFILE)) { \
        va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); \
        va_end(ap); \
    }

int open(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_open(path, flags, mode);
}

int __open_2(const char *path, int flags)
{
    return do_open(path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
    return do_open(path, flags, 0);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return do_openat(dirfd, path, flags, mode);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0);
}

/* ------------------------------------------------------------ close/dup */

int close(int fd)
{
    struct hs_obj *o;

    resolve();
    if (!fd_peek(fd)) {
        return hs_real_close(fd);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o) {
        struct hs_call c;

        __atomic_store_n(&fdtab[fd], NULL, __ATOMIC_RELEASE);
        hs_call_begin(&c, "close", fd);
        hs_call_str(&c, "object", o->kind == HS_CONTAINER ? "container" :
                    o->kind == HS_GROUP ? "group" :
                    o->kind == HS_DEVICE ? "device" :
                    o->kind == HS_IOMMUFD ? "iommufd" : "data_fd");
        if (--o->refs == 0) {
            hs_obj_release(o);
        }
        hs_call_end(&c, 0, 0);
    }
    pthread_mutex_unlock(&hs_lock);
    return hs_real_close(fd);
}

static int dup_common(int oldfd, int newfd)
{
    struct hs_obj *o;

    if (newfd < 0) {
        return newfd;
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(oldfd);
    if (o && newfd != oldfd) {
        struct hs_obj *prev = fd_peek(newfd);
        if (prev && --prev->refs == 0) {
            hs_obj_release(prev);
        }
        hs_fd_install(newfd, o);
    }
    pthread_mutex_unlock(&hs_lock);
    return newfd;
}

int dup(int fd)
{
    resolve();
    if (!fd_peek(fd)) {
        return real_dup(fd);
    }
    return dup_common(fd, real_dup(fd));
}

int dup2(int fd, int fd2)
{
    resolve();
    if (!fd_peek(fd) && !fd_peek(fd2)) {
        return real_dup2(fd, fd2);
    }
    return dup_common(fd, real_dup2(fd, fd2));
}

int dup3(int fd, int fd2, int flags)
{
    resolve();
    if (!fd_peek(fd) && !fd_peek(fd2)) {
        return real_dup3(fd, fd2, flags);
    }
    return dup_common(fd, real_dup3(fd, fd2, flags));
}

/*
 * fcntl(F_DUPFD*) duplicates model fds too (qemu_dup_flags() uses it).  The
 * third argument is passed on as a pointer-sized value, which carries an
 * int or a pointer alike on x86-64.
 */
static int do_fcntl(int fd, int cmd, void *arg)
{
    int r;

    resolve();
    r = real_fcntl(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) &&
        fd_peek(fd)) {
        dup_common(fd, r);
    }
    return r;
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl(fd, cmd, arg);
}

/* ------------------------------------------------------------ ioctl */

long hs_unhandled(struct hs_call *c, unsigned long req, int err)
{
    hs_call_str(c, "request_name", c->name);
    c->name = "unhandled";
    hs_call_hex(c, "request", req);
    return -err;
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    struct hs_obj *o;
    struct hs_call c;
    long ret;
    int err;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    resolve();
    if (!fd_peek(fd)) {
        return hs_real_ioctl(fd, req, arg);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (!o) {
        pthread_mutex_unlock(&hs_lock);
        return hs_real_ioctl(fd, req, arg);
    }
    hs_call_begin(&c, hs_ioctl_name(o->kind, req), fd);
    hs_decode_range(&c, o->kind, req, arg);
    err = hs_fault_check(&c);
    if (err) {
        ret = -err;
    } else {
        switch (o->kind) {
        case HS_CONTAINER:
            ret = hs_container_ioctl(&c, fd, o->u.container, req, arg);
            break;
        case HS_GROUP:
            ret = hs_group_ioctl(&c, fd, o->u.group, req, arg);
            break;
        case HS_DEVICE:
            ret = hs_device_ioctl(&c, fd, o->u.devfd, req, arg);
            break;
        case HS_IOMMUFD:
            ret = hs_iommufd_ioctl(&c, fd, o->u.ictx, req, arg);
            break;
        case HS_DATAFD:
            ret = hs_datafd_ioctl(&c, fd, o->u.datafd, req, arg);
            break;
        default:
            ret = -ENOTTY;
        }
    }
    err = ret < 0 ? (int)-ret : 0;
    hs_call_end(&c, ret < 0 ? -1 : ret, err);
    pthread_mutex_unlock(&hs_lock);
    if (ret < 0) {
        errno = err;
        return -1;
    }
    return (int)ret;
}

/* ------------------------------------------------------------ read/write */

ssize_t read(int fd, void *buf, size_t n)
{
    ssize_t r;
    struct hs_obj *o;

    resolve();
    if (!fd_peek(fd)) {
        return hs_real_read(fd, buf, n);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o && o->kind == HS_DATAFD) {
        r = hs_datafd_read(fd, o->u.datafd, buf, n);
    } else if (o && o->kind == HS_DEVICE) {
        r = hs_device_pread(fd, o->u.devfd, buf, n, 0);
    } else {
        errno = EINVAL;
        r = -1;
    }
    pthread_mutex_unlock(&hs_lock);
    return r;
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    (void)buflen;
    return read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    ssize_t r;
    struct hs_obj *o;

    resolve();
    if (!fd_peek(fd)) {
        return hs_real_write(fd, buf, n);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o && o->kind == HS_DATAFD) {
        r = hs_datafd_write(fd, o->u.datafd, buf, n);
    } else {
        errno = EINVAL;
        r = -1;
    }
    pthread_mutex_unlock(&hs_lock);
    return r;
}

static ssize_t do_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r;
    struct hs_obj *o;

    resolve();
    if (!fd_peek(fd)) {
        return real_pread(fd, buf, n, off);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o && o->kind == HS_DEVICE) {
        r = hs_device_pread(fd, o->u.devfd, buf, n, off);
    } else {
        errno = ESPIPE;
        r = -1;
    }
    pthread_mutex_unlock(&hs_lock);
    return r;
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t r;
    struct hs_obj *o;

    resolve();
    if (!fd_peek(fd)) {
        return real_pwrite(fd, buf, n, off);
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o && o->kind == HS_DEVICE) {
        r = hs_device_pwrite(fd, o->u.devfd, buf, n, off);
    } else {
        errno = ESPIPE;
        r = -1;
    }
    pthread_mutex_unlock(&hs_lock);
    return r;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    return do_pread(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    return do_pread(fd, buf, n, off);
}

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    (void)buflen;
    return do_pread(fd, buf, n, off);
}

ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    (void)buflen;
    return do_pread(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(fd, buf, n, off);
}

/* ------------------------------------------------------------ stat */

static bool model_fstat(int fd, struct stat *st)
{
    struct hs_obj *o = fd_peek(fd);
    enum node n;
    int id;

    if (!o) {
        return false;
    }
    n = obj_node(o, &id);
    if (n == NODE_NONE) {
        return false;   /* anon-inode fds: the real /dev/null stat is fine */
    }
    fill_stat(st, n, id);
    return true;
}

static bool model_stat(const char *path, struct stat *st)
{
    int id = 0;
    enum node n = classify(path, &id);

    if (n == NODE_NONE) {
        return false;
    }
    fill_stat(st, n, id);
    return true;
}

int fstat(int fd, struct stat *st)
{
    resolve();
    return model_fstat(fd, st) ? 0 : real_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
    return fstat(fd, (struct stat *)st);
}

int __fxstat(int ver, int fd, struct stat *st)
{
    resolve();
    return model_fstat(fd, st) ? 0 : real_fxstat(ver, fd, st);
}

int __fxstat64(int ver, int fd, struct stat64 *st)
{
    return __fxstat(ver, fd, (struct stat *)st);
}

int stat(const char *path, struct stat *st)
{
    resolve();
    return model_stat(path, st) ? 0 : real_stat(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
    return stat(path, (struct stat *)st);
}

int lstat(const char *path, struct stat *st)
{
    resolve();
    return model_stat(path, st) ? 0 : real_lstat(path, st);
}

int lstat64(const char *path, struct stat64 *st)
{
    return lstat(path, (struct stat *)st);
}

int __xstat(int ver, const char *path, struct stat *st)
{
    resolve();
    return model_stat(path, st) ? 0 : real_xstat(ver, path, st);
}

int __xstat64(int ver, const char *path, struct stat64 *st)
{
    return __xstat(ver, path, (struct stat *)st);
}

int __lxstat(int ver, const char *path, struct stat *st)
{
    resolve();
    return model_stat(path, st) ? 0 : real_lxstat(ver, path, st);
}

int __lxstat64(int ver, const char *path, struct stat64 *st)
{
    return __lxstat(ver, path, (struct stat *)st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    resolve();
    if ((flags & AT_EMPTY_PATH) && path && !*path) {
        if (model_fstat(dirfd, st)) {
            return 0;
        }
    } else if (path && path[0] == '/' && model_stat(path, st)) {
        return 0;
    }
    return real_fstatat(dirfd, path, st, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return fstatat(dirfd, path, (struct stat *)st, flags);
}

int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int fl)
{
    resolve();
    if ((fl & AT_EMPTY_PATH) && path && !*path) {
        if (model_fstat(dirfd, st)) {
            return 0;
        }
    } else if (path && path[0] == '/' && model_stat(path, st)) {
        return 0;
    }
    return real_fxstatat(ver, dirfd, path, st, fl);
}

int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st,
                 int fl)
{
    return __fxstatat(ver, dirfd, path, (struct stat *)st, fl);
}

static void stat_to_statx(const struct stat *st, struct statx *sx)
{
    memset(sx, 0, sizeof(*sx));
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_mode = (uint16_t)st->st_mode;
    sx->stx_nlink = (uint32_t)st->st_nlink;
    sx->stx_ino = st->st_ino;
    sx->stx_blksize = (uint32_t)st->st_blksize;
    sx->stx_rdev_major = major(st->st_rdev);
    sx->stx_rdev_minor = minor(st->st_rdev);
    sx->stx_dev_major = major(st->st_dev);
    sx->stx_dev_minor = minor(st->st_dev);
}

int statx(int dirfd, const char *path, int flags, unsigned mask,
          struct statx *sx)
{
    struct stat st;

    resolve();
    if ((flags & AT_EMPTY_PATH) && path && !*path) {
        if (model_fstat(dirfd, &st)) {
            stat_to_statx(&st, sx);
            return 0;
        }
    } else if (path && path[0] == '/' && model_stat(path, &st)) {
        stat_to_statx(&st, sx);
        return 0;
    }
    return real_statx(dirfd, path, flags, mask, sx);
}

int access(const char *path, int mode)
{
    resolve();
    int id;

    if (classify(path, &id) != NODE_NONE) {
        return 0;
    }
    return real_access(path, mode);
}

/* ------------------------------------------------------------ lifecycle */

static void adopt_inherited_fd(int fd, enum node n, int id)
{
    struct hs_obj *o;

    if (fd < 0 || fd >= HS_MAX_FD) {
        return;
    }
    if (n == NODE_IOMMU) {
        o = hs_obj_new(HS_IOMMUFD, calloc(1, sizeof(struct hs_ictx)));
    } else {
        o = hs_obj_new(HS_DEVICE, hs_devfd_new(hs_device_get(id), false));
    }
    hs_fd_install(fd, o);
}

void hs_model_init_from_env(void)
{
    const char *path = getenv("HOSTSIM_CONFIG");

    resolve();
    if (!path || !*path) {
        return;     /* inert: everything passes through */
    }
    if (hs_config_load(&hs_cfg, path)) {
        fprintf(stderr, "hostsim: configuration error, model disabled\n");
        hs_cfg.active = false;
        return;
    }
    hs_device_init();
    hs_log_open(hs_cfg.log_path);
    adopt_inherited_fd(hs_cfg.fd_iommufd, NODE_IOMMU, 0);
    for (int i = 0; i < hs_cfg.ndevs; i++) {
        adopt_inherited_fd(hs_cfg.dev[i].fd, NODE_CDEV, i);
    }
    if (hs_cfg.control_path[0]) {
        hs_control_start(hs_cfg.control_path);
    }
}

int hs_model_reset(const char *config_text)
{
    char err[256];

    resolve();
    hs_control_stop();
    pthread_mutex_lock(&hs_lock);
    /* objects still open are leaked on purpose: the test closed its fds */
    memset(fdtab, 0, sizeof(fdtab));
    memset(hs_groups, 0, sizeof(hs_groups));
    if (hs_config_parse_text(&hs_cfg, config_text, err, sizeof(err))) {
        fprintf(stderr, "hostsim: %s\n", err);
        pthread_mutex_unlock(&hs_lock);
        return -1;
    }
    hs_device_init();
    hs_log_open(hs_cfg.log_path);
    pthread_mutex_unlock(&hs_lock);
    if (hs_cfg.control_path[0]) {
        hs_control_start(hs_cfg.control_path);
    }
    return 0;
}
