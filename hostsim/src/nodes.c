/*
 * The device nodes the model owns: /dev/vfio/vfio (container), /dev/vfio/N
 * (groups), /dev/iommu and the VFIO cdevs (/dev/vfio/devices/vfioN and
 * their /dev/char/MAJOR:MINOR links).  A path is looked up here, open()
 * creates the node's object through its file operations' open, and stat()
 * reports what devtmpfs would, with the device numbers QEMU compares
 * against sysfs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "hostsim.h"

static const struct hs_file_ops *node_fops(enum hs_node n)
{
    switch (n) {
    case HS_NODE_CONTAINER: return &hs_container_fops;
    case HS_NODE_GROUP: return &hs_group_fops;
    case HS_NODE_IOMMU: return &hs_iommufd_fops;
    case HS_NODE_CDEV: return &hs_device_fops;
    default: return NULL;
    }
}

enum hs_node hs_node_lookup(const char *path, int *id)
{
    char buf[64];

    if (!hs_cfg.active || !path) {
        return HS_NODE_NONE;
    }
    if (!strcmp(path, "/dev/vfio/vfio")) {
        return HS_NODE_CONTAINER;
    }
    if (!strcmp(path, "/dev/iommu")) {
        return HS_NODE_IOMMU;
    }
    if (!strcmp(path, "/dev/vfio") || !strcmp(path, "/dev/vfio/")) {
        return HS_NODE_VFIO_DIR;
    }
    if (!strcmp(path, "/dev/vfio/devices")) {
        return HS_NODE_DEVICES_DIR;
    }
    for (int i = 0; i < hs_cfg.ndevs; i++) {
        const struct hs_devcfg *d = &hs_cfg.dev[i];

        snprintf(buf, sizeof(buf), "/dev/vfio/%d", d->group);
        if (!strcmp(path, buf)) {
            *id = d->group;
            return HS_NODE_GROUP;
        }
        snprintf(buf, sizeof(buf), "/dev/vfio/devices/vfio%d", d->cdev);
        if (!strcmp(path, buf)) {
            *id = i;
            return HS_NODE_CDEV;
        }
        snprintf(buf, sizeof(buf), "/dev/char/%d:%d", hs_cfg.cdev_major,
                 d->cdev);
        if (!strcmp(path, buf)) {
            *id = i;
            return HS_NODE_CDEV;
        }
    }
    return HS_NODE_NONE;
}

/* device numbers the nodes report; the cdev one matches sysfs "dev" */
static dev_t node_rdev(enum hs_node n, int id)
{
    switch (n) {
    case HS_NODE_CONTAINER: return makedev(10, 196);    /* misc "vfio" */
    case HS_NODE_IOMMU: return makedev(10, 125);        /* misc "iommu" */
    case HS_NODE_GROUP: return makedev(243, (unsigned)id);
    case HS_NODE_CDEV: return makedev((unsigned)hs_cfg.cdev_major,
                                      (unsigned)hs_cfg.dev[id].cdev);
    default: return 0;
    }
}

static void fill_stat(struct stat *st, enum hs_node n, int id)
{
    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(0, 5);     /* devtmpfs */
    st->st_ino = 1000 + (ino_t)n * 100 + (ino_t)id;
    if (n == HS_NODE_VFIO_DIR || n == HS_NODE_DEVICES_DIR) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFCHR | 0666;
        st->st_nlink = 1;
        st->st_rdev = node_rdev(n, id);
    }
    st->st_blksize = 4096;
}

/* the node a model fd was opened from; anon-inode fds have none */
static enum hs_node obj_node(struct hs_obj *o, int *id)
{
    *id = 0;
    switch (o->ops->kind) {
    case HS_CONTAINER: return HS_NODE_CONTAINER;
    case HS_GROUP:
        *id = o->u.group->id;
        return HS_NODE_GROUP;
    case HS_DEVICE:
        *id = o->u.devfd->dev->index;
        return o->u.devfd->from_group ? HS_NODE_NONE : HS_NODE_CDEV;
    case HS_IOMMUFD: return HS_NODE_IOMMU;
    default: return HS_NODE_NONE;
    }
}

bool hs_node_stat(const char *path, struct stat *st)
{
    int id = 0;
    enum hs_node n = hs_node_lookup(path, &id);

    if (n == HS_NODE_NONE) {
        return false;
    }
    fill_stat(st, n, id);
    return true;
}

bool hs_node_fstat(int fd, struct stat *st)
{
    struct hs_obj *o = hs_fd_get(fd);
    enum hs_node n;
    int id;

    if (!o) {
        return false;
    }
    n = obj_node(o, &id);
    if (n == HS_NODE_NONE) {
        return false;   /* anon-inode fds: the real /dev/null stat is fine */
    }
    fill_stat(st, n, id);
    return true;
}

int hs_node_open(const char *path, int flags, enum hs_node n, int id)
{
    const struct hs_file_ops *ops = node_fops(n);
    struct hs_call c;
    int fd = -1, err = 0;

    pthread_mutex_lock(&hs_lock);
    hs_call_begin(&c, "open", -1);
    hs_call_str(&c, "path", path);
    hs_call_hex(&c, "flags", (uint64_t)flags);
    err = hs_fault_check(&c);
    if (!err && !ops) {
        err = EISDIR;
    }
    if (!err) {
        fd = hs_obj_open(ops, id, flags);
        if (fd < 0) {
            err = -fd;
            fd = -1;
        }
    }
    c.fd = fd;
    hs_call_end(&c, err ? -1 : fd, err);
    pthread_mutex_unlock(&hs_lock);
    if (err) {
        errno = err;
        return -1;
    }
    return fd;
}

void hs_node_adopt(int fd, enum hs_node n, int id)
{
    if (node_fops(n)) {
        hs_obj_adopt(node_fops(n), id, fd);
    }
}
