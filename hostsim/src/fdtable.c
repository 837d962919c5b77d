/*
 * The fd -> object table, and the calls of the shim on model fds.
 *
 * Each model object is backed by a real fd (opened on /dev/null) so that
 * fd numbers are unique and close/poll/dup/fcntl behave; this table maps
 * those fds to objects, and every call on one goes through the object's
 * struct hs_file_ops (as the VFS goes through a file's file_operations):
 * this file knows no module, the modules register nothing but their ops.
 *
 * The table is read without the lock (an atomic load) so that the shim
 * can tell a model fd from any other fd cheaply; it is written, and the
 * objects are used, only under hs_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

pthread_mutex_t hs_lock = PTHREAD_MUTEX_INITIALIZER;

static struct hs_obj *fdtab[HS_MAX_FD];

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

void hs_fd_forget_all(void)
{
    memset(fdtab, 0, sizeof(fdtab));
}

struct hs_obj *hs_obj_new(const struct hs_file_ops *ops, void *p)
{
    struct hs_obj *o = calloc(1, sizeof(*o));

    o->ops = ops;
    o->u.p = p;
    return o;
}

static void obj_release(struct hs_obj *o)
{
    if (o->ops->release) {
        o->ops->release(o);
    }
    free(o);
}

void hs_obj_put(struct hs_obj *o)
{
    if (--o->refs == 0) {
        obj_release(o);
    }
}

int hs_new_backing_fd(int flags)
{
    hs_libc_resolve();
    return hs_real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
}

int hs_obj_install_new(const struct hs_file_ops *ops, void *p, int flags)
{
    struct hs_obj *o = hs_obj_new(ops, p);
    int fd = hs_new_backing_fd(flags);

    if (fd < 0) {
        int e = errno;

        obj_release(o);
        return -e;
    }
    hs_fd_install(fd, o);
    return fd;
}

int hs_obj_open(const struct hs_file_ops *ops, int id, int flags)
{
    struct hs_obj *o = hs_obj_new(ops, NULL);
    int rc = ops->open(o, id), fd;

    if (rc) {
        free(o);        /* nothing was created: nothing to release */
        return rc;
    }
    fd = hs_new_backing_fd(flags);
    if (fd < 0) {
        rc = -errno;
        obj_release(o);
        return rc;
    }
    hs_fd_install(fd, o);
    return fd;
}

void hs_obj_adopt(const struct hs_file_ops *ops, int id, int fd)
{
    struct hs_obj *o;

    if (fd < 0 || fd >= HS_MAX_FD) {
        return;
    }
    o = hs_obj_new(ops, NULL);
    if (ops->open(o, id)) {
        free(o);
        return;
    }
    hs_fd_install(fd, o);
}

/* ------------------------------------------------------------ calls */

bool hs_fd_ioctl(int fd, unsigned long req, void *arg, int *ret)
{
    struct hs_obj *o;
    struct hs_call c;
    long r;
    int err;

    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (!o) {
        pthread_mutex_unlock(&hs_lock);
        return false;
    }
    hs_call_begin(&c, hs_ioctl_name(o->ops->kind, req), fd);
    hs_decode_range(&c, o->ops->kind, req, arg);
    err = hs_fault_check(&c);
    if (err) {
        r = -err;
    } else if (o->ops->ioctl) {
        r = o->ops->ioctl(&c, fd, o, req, arg);
    } else {
        r = -ENOTTY;
    }
    err = r < 0 ? (int)-r : 0;
    hs_call_end(&c, r < 0 ? -1 : r, err);
    pthread_mutex_unlock(&hs_lock);
    if (r < 0) {
        errno = err;
        *ret = -1;
    } else {
        *ret = (int)r;
    }
    return true;
}

/*
 * read/write/pread/pwrite: the ops log their own call (their name and
 * arguments are theirs); a kind without the op fails like the kernel's
 * vfs_read() on a file without .read (EINVAL) or pread on a stream (ESPIPE).
 */
#define FD_CALL(fd, ret, op, nosys, ...) do { \
        struct hs_obj *o_; \
        pthread_mutex_lock(&hs_lock); \
        o_ = fd_peek(fd); \
        if (!o_) { \
            pthread_mutex_unlock(&hs_lock); \
            return false; \
        } \
        if (o_->ops->op) { \
            *(ret) = o_->ops->op((fd), o_, __VA_ARGS__); \
        } else { \
            errno = (nosys); \
            *(ret) = -1; \
        } \
        pthread_mutex_unlock(&hs_lock); \
        return true; \
    } while (0)

bool hs_fd_read(int fd, void *buf, size_t n, ssize_t *ret)
{
    FD_CALL(fd, ret, read, EINVAL, buf, n);
}

bool hs_fd_write(int fd, const void *buf, size_t n, ssize_t *ret)
{
    FD_CALL(fd, ret, write, EINVAL, buf, n);
}

bool hs_fd_pread(int fd, void *buf, size_t n, off_t off, ssize_t *ret)
{
    FD_CALL(fd, ret, pread, ESPIPE, buf, n, off);
}

bool hs_fd_pwrite(int fd, const void *buf, size_t n, off_t off,
                  ssize_t *ret)
{
    FD_CALL(fd, ret, pwrite, ESPIPE, buf, n, off);
}

void hs_fd_close(int fd)
{
    struct hs_obj *o;

    pthread_mutex_lock(&hs_lock);
    o = fd_peek(fd);
    if (o) {
        struct hs_call c;

        __atomic_store_n(&fdtab[fd], NULL, __ATOMIC_RELEASE);
        hs_call_begin(&c, "close", fd);
        hs_call_str(&c, "object", o->ops->name);
        hs_obj_put(o);
        hs_call_end(&c, 0, 0);
    }
    pthread_mutex_unlock(&hs_lock);
}

void hs_fd_dup(int oldfd, int newfd)
{
    struct hs_obj *o;

    if (newfd < 0) {
        return;
    }
    pthread_mutex_lock(&hs_lock);
    o = fd_peek(oldfd);
    if (o && newfd != oldfd) {
        struct hs_obj *prev = fd_peek(newfd);

        if (prev) {
            hs_obj_put(prev);
        }
        hs_fd_install(newfd, o);
    }
    pthread_mutex_unlock(&hs_lock);
}
