/*
 * Configuration: "key = value" lines, '#' comments (see README.md).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

struct hs_config hs_cfg;

static const struct { const char *name; int err; } errnames[] = {
    { "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO },
    { "E2BIG", E2BIG }, { "EBADF", EBADF }, { "EAGAIN", EAGAIN },
    { "ENOMEM", ENOMEM }, { "EACCES", EACCES }, { "EFAULT", EFAULT },
    { "EBUSY", EBUSY }, { "EEXIST", EEXIST }, { "ENODEV", ENODEV },
    { "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "ENOTTY", ENOTTY },
    { "ERANGE", ERANGE }, { "ENOMSG", ENOMSG }, { "EOVERFLOW", EOVERFLOW },
    { "EOPNOTSUPP", EOPNOTSUPP }, { "ENXIO", ENXIO },
    { "EMSGSIZE", EMSGSIZE }, { "EADDRINUSE", EADDRINUSE },
    { "ETIMEDOUT", ETIMEDOUT }, { "EDEADLK", EDEADLK },
};

int hs_errno_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
        if (!strcmp(errnames[i].name, name)) {
            return errnames[i].err;
        }
    }
    if (isdigit((unsigned char)name[0])) {
        return atoi(name);
    }
    return 0;
}

const char *hs_errno_name(int err)
{
    for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++) {
        if (errnames[i].err == err) {
            return errnames[i].name;
        }
    }
    return "E?";
}

void hs_config_defaults(struct hs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->kernel = 614;
    for (int i = 0; i < HS_MAX_DEVS; i++) {
        struct hs_devcfg *d = &cfg->dev[i];

        snprintf(d->name, sizeof(d->name), "0000:00:%02x.0", 5 + i);
        d->group = 42 + i;
        d->cdev = i;
        d->vendor = 0x1b36;
        d->device_id = 0x0010;
        d->subsys_vendor = 0x1af4;
        d->subsys_id = 0x1100;
        d->class_code = 0xff0000;   /* "unclassified device" */
        d->bar0_size = 4096;
        d->migration = d->precopy = d->p2p = d->dma_logging = -1;
        d->iommu_dirty = -1;
        d->fd = -1;
    }
    cfg->dev[0].present = true;
    cfg->ndevs = 1;
    cfg->cdev_major = 238;
    cfg->migration = true;
    cfg->precopy = true;
    cfg->p2p = true;
    cfg->dma_logging = false;
    cfg->iommu_dirty = true;
    cfg->type1_migration_cap = true;
    cfg->type1_pgsize_bitmap = 0x1000;
    /* intel-iommu domains: 4 KiB, 2 MiB and 1 GiB pages */
    cfg->type1_iova_pgsizes = 0x40201000;
    /* DIRTY_BITMAP_SIZE_MAX = DIRTY_BITMAP_BYTES(INT_MAX) */
    cfg->type1_max_dirty_bitmap_size = ((uint64_t)INT_MAX + 63) / 64 * 8;
    cfg->type1_precise = false;
    cfg->type1_dma_avail = 65535;   /* dma_entry_limit default U16_MAX */
    cfg->aw_bits = 48;
    cfg->fd_iommufd = -1;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
        !strcmp(v, "1")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
        !strcmp(v, "0")) {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_u64(const char *v, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(v, &end, 0);
    if (errno || end == v) {
        return false;
    }
    /* allow K/M/G/T suffixes for sizes */
    switch (*end) {
    case 'K': case 'k': *out <<= 10; end++; break;
    case 'M': case 'm': *out <<= 20; end++; break;
    case 'G': case 'g': *out <<= 30; end++; break;
    case 'T': case 't': *out <<= 40; end++; break;
    default: break;
    }
    return *end == 0;
}

/* "CALL [nth=N] [iova=A-B] [errno=NAME] [delay_ms=N]" */
int hs_fault_parse(struct hs_fault *f, const char *spec)
{
    char buf[256], *save = NULL, *tok;
    bool has_errno = false;

    memset(f, 0, sizeof(*f));
    f->err = EIO;
    snprintf(buf, sizeof(buf), "%s", spec);
    tok = strtok_r(buf, " \t", &save);
    if (!tok) {
        return -1;
    }
    snprintf(f->call, sizeof(f->call), "%s", tok);
    while ((tok = strtok_r(NULL, " \t", &save))) {
        if (!strncmp(tok, "nth=", 4)) {
            if (!parse_u64(tok + 4, &f->nth) || !f->nth) {
                return -1;
            }
        } else if (!strncmp(tok, "iova=", 5)) {
            char *dash = strchr(tok + 5, '-');
            if (!dash) {
                return -1;
            }
            *dash = 0;
            if (!parse_u64(tok + 5, &f->first) ||
                !parse_u64(dash + 1, &f->last) || f->last < f->first) {
                return -1;
            }
            f->has_range = true;
        } else if (!strncmp(tok, "errno=", 6)) {
            f->err = hs_errno_from_name(tok + 6);
            if (f->err <= 0) {
                return -1;
            }
            has_errno = true;
        } else if (!strncmp(tok, "delay_ms=", 9)) {
            if (!parse_u64(tok + 9, &f->delay_ms) || !f->delay_ms ||
                f->delay_ms > 60000) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    /* a delay alone slows the call down (a slow kernel), it does not fail it */
    if (f->delay_ms && !has_errno) {
        f->err = 0;
    }
    return 0;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = 0;
    }
    return s;
}

/* "device.KEY" (device 0) or "deviceN.KEY" */
static int set_dev_key(struct hs_config *cfg, const char *k, const char *v)
{
    struct hs_devcfg *d;
    const char *dot = strchr(k, '.');
    int idx = 0;
    uint64_t n;
    bool b;

    if (dot != k + 6) {
        idx = atoi(k + 6);
        if (idx < 1 || idx >= HS_MAX_DEVS) {
            return -1;
        }
    }
    d = &cfg->dev[idx];
    d->present = true;
    if (idx + 1 > cfg->ndevs) {
        cfg->ndevs = idx + 1;
    }
    k = dot + 1;
    if (!strcmp(k, "name")) {
        snprintf(d->name, sizeof(d->name), "%s", v);
        return 0;
    }
#define DU64(name, field) \
    if (!strcmp(k, name)) { if (!parse_u64(v, &n)) return -1; \
                            d->field = n; return 0; }
#define DBOOL(name, field) \
    if (!strcmp(k, name)) { if (!parse_bool(v, &b)) return -1; \
                            d->field = b; return 0; }
    DU64("group", group)
    DU64("cdev", cdev)
    DU64("vendor", vendor)
    DU64("device_id", device_id)
    DU64("subsystem_vendor", subsys_vendor)
    DU64("subsystem_id", subsys_id)
    DU64("class", class_code)
    DU64("bar0_size", bar0_size)
    DU64("fd", fd)
    DBOOL("migration", migration)
    DBOOL("precopy", precopy)
    DBOOL("p2p", p2p)
    DBOOL("dma_logging", dma_logging)
    DBOOL("iommu_dirty", iommu_dirty)
#undef DU64
#undef DBOOL
    return -1;
}

static int set_key(struct hs_config *cfg, const char *k, const char *v)
{
    uint64_t n;

    if (!strncmp(k, "device", 6) && strchr(k, '.') &&
        strcmp(k, "device.cdev_major")) {
        return set_dev_key(cfg, k, v);
    }

#define BOOLKEY(name, field) \
    if (!strcmp(k, name)) { return parse_bool(v, &cfg->field) ? 0 : -1; }
#define U64KEY(name, field) \
    if (!strcmp(k, name)) { if (!parse_u64(v, &n)) return -1; \
                            cfg->field = n; return 0; }

    if (!strcmp(k, "kernel")) {
        if (!strcmp(v, "6.12")) {
            cfg->kernel = 612;
        } else if (!strcmp(v, "6.14")) {
            cfg->kernel = 614;
        } else {
            return -1;
        }
        return 0;
    }
    if (!strcmp(k, "log")) {
        snprintf(cfg->log_path, sizeof(cfg->log_path), "%s", v);
        return 0;
    }
    if (!strcmp(k, "control")) {
        snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", v);
        return 0;
    }
    if (!strcmp(k, "type1.dirty")) {
        if (!strcmp(v, "perpetual")) {
            cfg->type1_precise = false;
        } else if (!strcmp(v, "precise")) {
            cfg->type1_precise = true;
        } else {
            return -1;
        }
        return 0;
    }
    if (!strcmp(k, "fault")) {
        if (cfg->nfaults >= HS_MAX_FAULTS ||
            hs_fault_parse(&cfg->faults[cfg->nfaults], v)) {
            return -1;
        }
        cfg->nfaults++;
        return 0;
    }
    U64KEY("device.cdev_major", cdev_major)
    BOOLKEY("migration", migration)
    BOOLKEY("precopy", precopy)
    BOOLKEY("p2p", p2p)
    BOOLKEY("dma_logging", dma_logging)
    BOOLKEY("dma_when_stopped", dma_when_stopped)
    BOOLKEY("iommu_dirty", iommu_dirty)
    BOOLKEY("type1.migration_cap", type1_migration_cap)
    U64KEY("type1.pgsize_bitmap", type1_pgsize_bitmap)
    U64KEY("type1.iova_pgsizes", type1_iova_pgsizes)
    U64KEY("type1.max_dirty_bitmap_size", type1_max_dirty_bitmap_size)
    U64KEY("type1.dma_avail", type1_dma_avail)
    U64KEY("iommu.aw_bits", aw_bits)
    U64KEY("fd.iommufd", fd_iommufd)
    if (!strcmp(k, "fd.device")) {
        return set_dev_key(cfg, "device.fd", v);
    }
#undef BOOLKEY
#undef U64KEY
    return -1;
}

int hs_config_parse_text(struct hs_config *cfg, const char *text, char *err,
                         size_t errlen)
{
    char *copy = strdup(text), *save = NULL, *line;
    int lineno = 0, rc = 0;

    hs_config_defaults(cfg);
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#'), *eq, *k, *v;

        lineno++;
        if (hash) {
            *hash = 0;
        }
        line = trim(line);
        if (!*line) {
            continue;
        }
        eq = strchr(line, '=');
        if (!eq) {
            snprintf(err, errlen, "line %d: expected key = value", lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        k = trim(line);
        v = trim(eq + 1);
        if (set_key(cfg, k, v)) {
            snprintf(err, errlen, "line %d: bad key or value '%s = %s'",
                     lineno, k, v);
            rc = -1;
            break;
        }
    }
    for (int i = 0; i < cfg->ndevs; i++) {
        struct hs_devcfg *d = &cfg->dev[i];

        if (!d->present) {
            snprintf(err, errlen, "device%d.* keys missing (devices are "
                     "numbered without gaps)", i);
            rc = -1;
        }
        if (d->bar0_size < 64 || d->bar0_size > 4096 ||
            (d->bar0_size & (d->bar0_size - 1))) {
            snprintf(err, errlen, "device bar0_size must be a power of two "
                     "between 64 and 4096");
            rc = -1;
        }
        /* per-device feature keys default to the global ones */
        if (d->migration < 0) {
            d->migration = cfg->migration;
        }
        if (d->precopy < 0) {
            d->precopy = cfg->precopy;
        }
        if (d->p2p < 0) {
            d->p2p = cfg->p2p;
        }
        if (d->dma_logging < 0) {
            d->dma_logging = cfg->dma_logging;
        }
        if (d->iommu_dirty < 0) {
            d->iommu_dirty = cfg->iommu_dirty;
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(cfg->dev[j].name, d->name) ||
                cfg->dev[j].cdev == d->cdev) {
                snprintf(err, errlen, "devices %d and %d share a name or "
                         "cdev number", j, i);
                rc = -1;
            }
        }
    }
    free(copy);
    cfg->active = rc == 0;
    return rc;
}

int hs_config_load(struct hs_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;
    char err[256];
    int rc;

    if (!f) {
        fprintf(stderr, "hostsim: cannot open config %s\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, n + 1);
    if (fread(text, 1, n, f) != (size_t)n) {
        n = 0;
    }
    fclose(f);
    rc = hs_config_parse_text(cfg, text, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "hostsim: %s: %s\n", path, err);
    }
    free(text);
    return rc;
}
