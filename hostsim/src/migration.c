/*
 * VFIO migration v2 of the model device: the MIGRATION,
 * MIG_DEVICE_STATE and MIG_DATA_SIZE features, the state machine, and the
 * data fd (read on the source, written on the destination, plus
 * VFIO_MIG_GET_PRECOPY_INFO).
 *
 * Semantics follow drivers/vfio/vfio_main.c (vfio_mig_get_next_state and
 * its FSM table, vfio_ioctl_device_feature_mig_device_state,
 * vfio_ioctl_device_feature_migration, _migration_data_size) and the uAPI
 * text of include/uapi/linux/vfio.h (VFIO_MIG_GET_PRECOPY_INFO: ENOMSG at
 * the temporary end of stream in PRE_COPY, EOF in STOP_COPY), with the
 * data-fd lifetime of a variant driver such as
 * drivers/vfio/pci/mlx5/main.c (mlx5vf_pci_step_device_state_locked:
 * PRE_COPY_P2P -> STOP_COPY keeps the same fd).
 *
 * Migrated device state ("the blob"): magic, version, the device name,
 * its DMA counters and the BAR scratch register.  The destination device
 * takes them over on RESUMING -> STOP, so a test can see the destination
 * report the source's counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

#define BLOB_MAGIC "HSIMMIG1"
#define PRE_MAGIC "HSIMPRE1"

struct blob {
    char magic[8];
    uint32_t version;
    uint32_t len;           /* bytes of this chunk, header included */
    char name[64];
    uint64_t dma_writes, dma_bytes, dma_faults;
    uint64_t scratch;
    uint64_t checksum;
};

static const char *const state_names[] = {
    "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P",
    "PRE_COPY", "PRE_COPY_P2P",
};

const char *hs_mig_state_name(uint32_t s)
{
    return s < VFIO_DEVICE_NUM_STATES ? state_names[s] : "INVALID";
}

static uint32_t mig_flags(const struct hs_device *D)
{
    uint32_t f = VFIO_MIGRATION_STOP_COPY;

    if (D->cfg->p2p) {
        f |= VFIO_MIGRATION_P2P;
    }
    if (D->cfg->precopy) {
        f |= VFIO_MIGRATION_PRE_COPY;
    }
    return f;
}

/* vfio_mig_get_next_state(): the same next-step relation as the kernel */
enum { S_ERR = VFIO_DEVICE_STATE_ERROR, S_STOP = VFIO_DEVICE_STATE_STOP,
       S_RUN = VFIO_DEVICE_STATE_RUNNING, S_SC = VFIO_DEVICE_STATE_STOP_COPY,
       S_RES = VFIO_DEVICE_STATE_RESUMING,
       S_RP2P = VFIO_DEVICE_STATE_RUNNING_P2P,
       S_PC = VFIO_DEVICE_STATE_PRE_COPY,
       S_PCP2P = VFIO_DEVICE_STATE_PRE_COPY_P2P };

static const uint8_t fsm[8][8] = {
    [S_STOP] = { [S_STOP] = S_STOP, [S_RUN] = S_RP2P, [S_PC] = S_RP2P,
                 [S_PCP2P] = S_RP2P, [S_SC] = S_SC, [S_RES] = S_RES,
                 [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_RUN] = { [S_STOP] = S_RP2P, [S_RUN] = S_RUN, [S_PC] = S_PC,
                [S_PCP2P] = S_RP2P, [S_SC] = S_RP2P, [S_RES] = S_RP2P,
                [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_PC] = { [S_STOP] = S_RUN, [S_RUN] = S_RUN, [S_PC] = S_PC,
               [S_PCP2P] = S_PCP2P, [S_SC] = S_PCP2P, [S_RES] = S_RUN,
               [S_RP2P] = S_RUN, [S_ERR] = S_ERR },
    [S_PCP2P] = { [S_STOP] = S_RP2P, [S_RUN] = S_RP2P, [S_PC] = S_PC,
                  [S_PCP2P] = S_PCP2P, [S_SC] = S_SC, [S_RES] = S_RP2P,
                  [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_SC] = { [S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_PC] = S_ERR,
               [S_PCP2P] = S_ERR, [S_SC] = S_SC, [S_RES] = S_STOP,
               [S_RP2P] = S_STOP, [S_ERR] = S_ERR },
    [S_RES] = { [S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_PC] = S_STOP,
                [S_PCP2P] = S_STOP, [S_SC] = S_STOP, [S_RES] = S_RES,
                [S_RP2P] = S_STOP, [S_ERR] = S_ERR },
    [S_RP2P] = { [S_STOP] = S_STOP, [S_RUN] = S_RUN, [S_PC] = S_RUN,
                 [S_PCP2P] = S_PCP2P, [S_SC] = S_STOP, [S_RES] = S_STOP,
                 [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_ERR] = { 0 },
};

static uint32_t state_needs(uint32_t s)
{
    switch (s) {
    case S_PC: return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
    case S_PCP2P: return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
                         VFIO_MIGRATION_PRE_COPY;
    case S_RP2P: return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
    case S_ERR: return ~0u;
    default: return VFIO_MIGRATION_STOP_COPY;
    }
}

static int next_state(const struct hs_device *D, uint32_t cur,
                      uint32_t target, uint32_t *next)
{
    uint32_t f = mig_flags(D);

    if (cur >= 8 || (state_needs(cur) & f) != state_needs(cur)) {
        return -EINVAL;
    }
    if (target >= 8 || (state_needs(target) & f) != state_needs(target)) {
        return -EINVAL;
    }
    *next = fsm[cur][target];
    while (*next != S_ERR && (state_needs(*next) & f) != state_needs(*next)) {
        *next = fsm[*next][target];
    }
    return *next != S_ERR ? 0 : -EINVAL;
}

/* ------------------------------------------------------------ blobs */

static uint64_t checksum(const struct blob *b)
{
    const uint8_t *p = (const uint8_t *)b;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < offsetof(struct blob, checksum); i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static void make_blob(const struct hs_device *D, struct blob *b,
                      const char *magic)
{
    memset(b, 0, sizeof(*b));
    memcpy(b->magic, magic, 8);
    b->version = 1;
    b->len = sizeof(*b);
    snprintf(b->name, sizeof(b->name), "%s", D->cfg->name);
    b->dma_writes = D->dma_writes;
    b->dma_bytes = D->dma_bytes;
    b->dma_faults = D->dma_faults;
    memcpy(&b->scratch, D->bar0 + 0x40, 8);
    b->checksum = checksum(b);
}

static void append_blob(struct hs_datafd *df, const char *magic)
{
    struct blob b;

    make_blob(df->dev, &b, magic);
    if (df->len + sizeof(b) <= sizeof(df->buf)) {
        memcpy(df->buf + df->len, &b, sizeof(b));
        df->len += sizeof(b);
    }
}

/* Parse what the destination received: precopy chunks, then the state. */
static int load_stream(struct hs_datafd *df)
{
    size_t pos = 0;
    bool have = false;
    struct blob last = { 0 };

    while (pos + sizeof(struct blob) <= df->len) {
        struct blob b;

        memcpy(&b, df->buf + pos, sizeof(b));
        if ((memcmp(b.magic, BLOB_MAGIC, 8) && memcmp(b.magic, PRE_MAGIC, 8))
            || b.len != sizeof(b) || b.checksum != checksum(&b)) {
            return -EINVAL;
        }
        if (!memcmp(b.magic, BLOB_MAGIC, 8)) {
            last = b;
            have = true;
        }
        pos += sizeof(b);
    }
    if (pos != df->len || !have) {
        return -EINVAL;
    }
    df->dev->dma_writes = last.dma_writes;
    df->dev->dma_bytes = last.dma_bytes;
    df->dev->dma_faults = last.dma_faults;
    memcpy(df->dev->bar0 + 0x40, &last.scratch, 8);
    df->dev->loaded_from_migration++;
    return 0;
}

/* ------------------------------------------------------------ data fd */

static int new_datafd(struct hs_device *D, bool saving,
                      struct hs_datafd **out)
{
    struct hs_datafd *df = calloc(1, sizeof(*df));
    int fd;

    df->dev = D;
    df->saving = saving;
    fd = hs_obj_install_new(&hs_datafd_fops, df, O_CLOEXEC);
    if (fd < 0) {
        return -EMFILE;
    }
    if (D->data) {
        D->data->dead = true;
    }
    D->data = df;
    *out = df;
    return fd;
}

static void kill_datafd(struct hs_device *D)
{
    if (D->data) {
        D->data->dead = true;
        D->data = NULL;
    }
}

static void datafd_release(struct hs_obj *o)
{
    struct hs_datafd *df = o->u.datafd;

    if (df->dev->data == df) {
        df->dev->data = NULL;
    }
    free(df);
}

void hs_migration_reset(struct hs_device *D)
{
    /* a device reset returns a variant driver's FSM to RUNNING */
    if (D->mig_state != S_RUN) {
        kill_datafd(D);
        D->mig_state = S_RUN;
    }
}

/* one FSM arc; returns a new data fd, -1 for none, or -errno */
static int step(struct hs_device *D, uint32_t from, uint32_t to)
{
    struct hs_datafd *df;
    int fd = -1;

    if ((from == S_RUN && to == S_PC) || (from == S_RP2P && to == S_PCP2P)) {
        fd = new_datafd(D, true, &df);
        if (fd >= 0) {
            df->precopy = true;
            append_blob(df, PRE_MAGIC);
        }
    } else if ((from == S_PC || from == S_PCP2P) && to == S_SC) {
        /* the precopy fd carries on with the final state */
        if (!D->data) {
            return -EINVAL;
        }
        D->data->precopy = false;
        append_blob(D->data, BLOB_MAGIC);
    } else if (from == S_STOP && to == S_SC) {
        fd = new_datafd(D, true, &df);
        if (fd >= 0) {
            append_blob(df, BLOB_MAGIC);
        }
    } else if (from == S_STOP && to == S_RES) {
        fd = new_datafd(D, false, &df);
    } else if (from == S_RES && to == S_STOP) {
        int rc = D->data ? load_stream(D->data) : -EINVAL;
        kill_datafd(D);
        if (rc) {
            return rc;
        }
    } else if (from == S_SC && to == S_STOP) {
        kill_datafd(D);
    } else if ((from == S_PC && to == S_RUN) ||
               (from == S_PCP2P && to == S_RP2P)) {
        kill_datafd(D);
    }
    D->mig_state = to;
    return fd;
}

long hs_feature_migration(struct hs_call *c, struct hs_devfd *d,
                          uint32_t flags, void *data, size_t datasz)
{
    struct vfio_device_feature_migration *m = data;
    int rc;

    if (!d->dev->cfg->migration) {
        return -ENOTTY;     /* no mig_ops */
    }
    rc = hs_check_feature(flags, datasz, VFIO_DEVICE_FEATURE_GET,
                          sizeof(*m));
    if (rc != 1) {
        return rc;
    }
    m->flags = mig_flags(d->dev);
    hs_call_hex(c, "migration_flags", m->flags);
    return 0;
}

long hs_feature_mig_state(struct hs_call *c, struct hs_devfd *d,
                          uint32_t flags, void *data, size_t datasz)
{
    struct vfio_device_feature_mig_state *ms = data;
    struct hs_device *D = d->dev;
    uint32_t target, cur, next;
    int rc, fd = -1;

    if (!D->cfg->migration) {
        return -ENOTTY;
    }
    rc = hs_check_feature(flags, datasz,
                          VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET,
                          sizeof(*ms));
    if (rc != 1) {
        return rc;
    }
    if (flags & VFIO_DEVICE_FEATURE_GET) {
        ms->device_state = D->mig_state;
        ms->data_fd = -1;
        hs_call_str(c, "state", hs_mig_state_name(ms->device_state));
        return 0;
    }
    target = ms->device_state;
    hs_call_str(c, "from", hs_mig_state_name(D->mig_state));
    hs_call_str(c, "state", hs_mig_state_name(target));
    cur = D->mig_state;
    while (cur != target) {
        rc = next_state(D, cur, target, &next);
        if (rc) {
            ms->data_fd = -1;
            return rc;
        }
        rc = step(D, cur, next);
        if (rc < -1) {
            /* a failed arc leaves the device in ERROR */
            D->mig_state = S_ERR;
            ms->data_fd = -1;
            return rc;
        }
        if (rc >= 0) {
            /* only the last arc's file reaches the user (none of the
             * multi-arc paths creates a file before its last arc) */
            fd = rc;
        }
        cur = next;
    }
    ms->data_fd = fd;
    hs_call_i64(c, "data_fd", fd);
    if (D->loaded_from_migration && target != S_RES) {
        hs_call_u64(c, "dma_writes", D->dma_writes);
    }
    return 0;
}

long hs_feature_mig_data_size(struct hs_call *c, struct hs_devfd *d,
                              uint32_t flags, void *data, size_t datasz)
{
    struct vfio_device_feature_mig_data_size *ds = data;
    int rc;

    if (!d->dev->cfg->migration) {
        return -ENOTTY;
    }
    rc = hs_check_feature(flags, datasz, VFIO_DEVICE_FEATURE_GET,
                          sizeof(*ds));
    if (rc != 1) {
        return rc;
    }
    ds->stop_copy_length = sizeof(struct blob);
    hs_call_u64(c, "stop_copy_length", ds->stop_copy_length);
    return 0;
}

static long datafd_ioctl(struct hs_call *c, int fd, struct hs_obj *o,
                         unsigned long req, void *arg)
{
    struct hs_datafd *df = o->u.datafd;
    struct vfio_precopy_info *pi = arg;

    (void)fd;
    if (req != VFIO_MIG_GET_PRECOPY_INFO) {
        return hs_unhandled(c, req, ENOTTY);
    }
    if (pi->argsz < sizeof(*pi)) {
        return -EINVAL;
    }
    if (df->dead || !df->saving ||
        (df->dev->mig_state != S_PC && df->dev->mig_state != S_PCP2P)) {
        return -EINVAL;
    }
    pi->flags = 0;
    pi->initial_bytes = df->len - df->pos;
    pi->dirty_bytes = 0;
    hs_call_u64(c, "initial_bytes", pi->initial_bytes);
    hs_call_u64(c, "dirty_bytes", pi->dirty_bytes);
    return 0;
}

static ssize_t datafd_read(int fd, struct hs_obj *o, void *buf, size_t n)
{
    struct hs_datafd *df = o->u.datafd;
    struct hs_call c;
    long rc;
    int e;

    hs_call_begin(&c, "read", fd);
    hs_call_u64(&c, "count", n);
    e = hs_fault_check(&c);
    if (e) {
        rc = -e;
    } else if (df->dead) {
        rc = -ENODEV;
    } else if (!df->saving) {
        rc = -EINVAL;
    } else if (df->pos < df->len) {
        size_t k = df->len - df->pos < n ? df->len - df->pos : n;
        memcpy(buf, df->buf + df->pos, k);
        df->pos += k;
        rc = (long)k;
    } else if (df->precopy) {
        rc = -ENOMSG;   /* temporary end of stream in PRE_COPY */
    } else {
        rc = 0;         /* end of stream in STOP_COPY */
    }
    hs_call_str(&c, "state", hs_mig_state_name(df->dev->mig_state));
    hs_call_end(&c, rc < 0 ? -1 : rc, rc < 0 ? (int)-rc : 0);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

static ssize_t datafd_write(int fd, struct hs_obj *o, const void *buf,
                            size_t n)
{
    struct hs_datafd *df = o->u.datafd;
    struct hs_call c;
    long rc;
    int e;

    hs_call_begin(&c, "write", fd);
    hs_call_u64(&c, "count", n);
    e = hs_fault_check(&c);
    if (e) {
        rc = -e;
    } else if (df->dead) {
        rc = -ENODEV;
    } else if (df->saving) {
        rc = -EINVAL;
    } else if (df->len + n > sizeof(df->buf)) {
        rc = -ENOSPC;
    } else {
        memcpy(df->buf + df->len, buf, n);
        df->len += n;
        rc = (long)n;
    }
    hs_call_end(&c, rc < 0 ? -1 : rc, rc < 0 ? (int)-rc : 0);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

const struct hs_file_ops hs_datafd_fops = {
    .kind = HS_DATAFD,
    .name = "data_fd",
    .ioctl = datafd_ioctl,
    .read = datafd_read,
    .write = datafd_write,
    .release = datafd_release,
};
