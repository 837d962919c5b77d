/*
 * libc interposition: the calls QEMU (and glib) make on VFIO / iommufd
 * device nodes and on the fds they return are answered by the model; every
 * other path and fd goes to the real libc untouched.
 *
 * This file is the shim only: it tells model paths (nodes.c) and model fds
 * (fdtable.c) from the rest and hands them over; what an fd does is its
 * object's file operations.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hostsim.h"

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

static void resolve(void)
{
    hs_libc_resolve();
#define R(var, name) if (!var) { var = dlsym(RTLD_NEXT, name); }
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

/* a model fd: the table is read without the lock */
static inline bool model_fd(int fd)
{
    return hs_fd_get(fd) != NULL;
}

/* ------------------------------------------------------------ open */

/* the directories are real enough: opening them goes to libc */
static bool model_file(enum hs_node n)
{
    return n != HS_NODE_NONE && n != HS_NODE_VFIO_DIR &&
           n != HS_NODE_DEVICES_DIR;
}

static int do_open(const char *path, int flags, mode_t mode)
{
    enum hs_node n;
    int id = 0;

    resolve();
    n = hs_node_lookup(path, &id);
    if (model_file(n)) {
        return hs_node_open(path, flags, n, id);
    }
    return hs_real_open(path, flags, mode);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    enum hs_node n;
    int id = 0;

    resolve();
    n = path && path[0] == '/' ? hs_node_lookup(path, &id) : HS_NODE_NONE;
    if (model_file(n)) {
        return hs_node_open(path, flags, n, id);
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
    resolve();
    if (model_fd(fd)) {
        hs_fd_close(fd);
    }
    return hs_real_close(fd);
}

static int dup_common(int oldfd, int newfd)
{
    hs_fd_dup(oldfd, newfd);
    return newfd;
}

int dup(int fd)
{
    resolve();
    if (!model_fd(fd)) {
        return real_dup(fd);
    }
    return dup_common(fd, real_dup(fd));
}

int dup2(int fd, int fd2)
{
    resolve();
    if (!model_fd(fd) && !model_fd(fd2)) {
        return real_dup2(fd, fd2);
    }
    return dup_common(fd, real_dup2(fd, fd2));
}

int dup3(int fd, int fd2, int flags)
{
    resolve();
    if (!model_fd(fd) && !model_fd(fd2)) {
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
        model_fd(fd)) {
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

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    resolve();
    if (model_fd(fd) && hs_fd_ioctl(fd, req, arg, &ret)) {
        return ret;
    }
    return hs_real_ioctl(fd, req, arg);
}

/* ------------------------------------------------------------ read/write */

ssize_t read(int fd, void *buf, size_t n)
{
    ssize_t r;

    resolve();
    if (model_fd(fd) && hs_fd_read(fd, buf, n, &r)) {
        return r;
    }
    return hs_real_read(fd, buf, n);
}

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    (void)buflen;
    return read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    ssize_t r;

    resolve();
    if (model_fd(fd) && hs_fd_write(fd, buf, n, &r)) {
        return r;
    }
    return hs_real_write(fd, buf, n);
}

static ssize_t do_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r;

    resolve();
    if (model_fd(fd) && hs_fd_pread(fd, buf, n, off, &r)) {
        return r;
    }
    return real_pread(fd, buf, n, off);
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t r;

    resolve();
    if (model_fd(fd) && hs_fd_pwrite(fd, buf, n, off, &r)) {
        return r;
    }
    return real_pwrite(fd, buf, n, off);
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

int fstat(int fd, struct stat *st)
{
    resolve();
    return hs_node_fstat(fd, st) ? 0 : real_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
    return fstat(fd, (struct stat *)st);
}

int __fxstat(int ver, int fd, struct stat *st)
{
    resolve();
    return hs_node_fstat(fd, st) ? 0 : real_fxstat(ver, fd, st);
}

int __fxstat64(int ver, int fd, struct stat64 *st)
{
    return __fxstat(ver, fd, (struct stat *)st);
}

int stat(const char *path, struct stat *st)
{
    resolve();
    return hs_node_stat(path, st) ? 0 : real_stat(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
    return stat(path, (struct stat *)st);
}

int lstat(const char *path, struct stat *st)
{
    resolve();
    return hs_node_stat(path, st) ? 0 : real_lstat(path, st);
}

int lstat64(const char *path, struct stat64 *st)
{
    return lstat(path, (struct stat *)st);
}

int __xstat(int ver, const char *path, struct stat *st)
{
    resolve();
    return hs_node_stat(path, st) ? 0 : real_xstat(ver, path, st);
}

int __xstat64(int ver, const char *path, struct stat64 *st)
{
    return __xstat(ver, path, (struct stat *)st);
}

int __lxstat(int ver, const char *path, struct stat *st)
{
    resolve();
    return hs_node_stat(path, st) ? 0 : real_lxstat(ver, path, st);
}

int __lxstat64(int ver, const char *path, struct stat64 *st)
{
    return __lxstat(ver, path, (struct stat *)st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    resolve();
    if ((flags & AT_EMPTY_PATH) && path && !*path) {
        if (hs_node_fstat(dirfd, st)) {
            return 0;
        }
    } else if (path && path[0] == '/' && hs_node_stat(path, st)) {
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
        if (hs_node_fstat(dirfd, st)) {
            return 0;
        }
    } else if (path && path[0] == '/' && hs_node_stat(path, st)) {
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
        if (hs_node_fstat(dirfd, &st)) {
            stat_to_statx(&st, sx);
            return 0;
        }
    } else if (path && path[0] == '/' && hs_node_stat(path, &st)) {
        stat_to_statx(&st, sx);
        return 0;
    }
    return real_statx(dirfd, path, flags, mask, sx);
}

int access(const char *path, int mode)
{
    int id;

    resolve();
    if (hs_node_lookup(path, &id) != HS_NODE_NONE) {
        return 0;
    }
    return real_access(path, mode);
}
