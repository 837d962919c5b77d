/*
 * Event log: one JSON object per line for every kernel-interface call the
 * model answers, written with a single write() on an O_APPEND fd so lines
 * never interleave, and "flushed" by construction.
 *
 * With the log off nothing is formatted (that was a third of the model's
 * cost per call); every call is still counted (counters.c) and numbered.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostsim.h"

static int log_fd = -1;
static uint64_t log_seq;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void hs_log_open(const char *path)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0) {
        hs_real_close(log_fd);
    }
    /* read without the lock by hs_call_begin: on or off for the call */
    __atomic_store_n(&log_fd, -1, __ATOMIC_RELAXED);
    if (path && *path) {
        __atomic_store_n(&log_fd,
                         hs_real_open(path, O_WRONLY | O_CREAT | O_APPEND |
                                      O_CLOEXEC, 0644), __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&log_lock);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hs_log_calls(void)
{
    uint64_t n;

    pthread_mutex_lock(&log_lock);
    n = log_seq;
    pthread_mutex_unlock(&log_lock);
    return n;
}

void hs_call_begin(struct hs_call *c, const char *name, int fd)
{
    c->name = name;
    c->fd = fd;
    /* a call begun with the log off stays unformatted: its line is lost */
    c->logging = __atomic_load_n(&log_fd, __ATOMIC_RELAXED) >= 0;
    c->start_ns = now_ns();
    c->alen = 0;
    c->args[0] = 0;
    c->has_range = false;
    c->injected = false;
    c->delayed_ms = 0;
    c->fault_checked = false;
}

static void append(struct hs_call *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!c->logging || c->alen >= sizeof(c->args) - 1) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(c->args + c->alen, sizeof(c->args) - c->alen, fmt, ap);
    va_end(ap);
    if (n > 0) {
        c->alen += (size_t)n;
        if (c->alen >= sizeof(c->args)) {
            c->alen = sizeof(c->args) - 1;
        }
    }
}

void hs_call_u64(struct hs_call *c, const char *key, uint64_t v)
{
    append(c, ",\"%s\":%" PRIu64, key, v);
}

/* JSON has no hex: hex values are logged as numbers too, the key says it */
void hs_call_hex(struct hs_call *c, const char *key, uint64_t v)
{
    append(c, ",\"%s\":%" PRIu64, key, v);
}

void hs_call_i64(struct hs_call *c, const char *key, int64_t v)
{
    append(c, ",\"%s\":%" PRId64, key, v);
}

void hs_call_str(struct hs_call *c, const char *key, const char *v)
{
    char esc[256];
    size_t j = 0;

    if (!c->logging) {
        return;
    }
    for (size_t i = 0; v[i] && j < sizeof(esc) - 7; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '"' || ch == '\\') {
            esc[j++] = '\\';
            esc[j++] = (char)ch;
        } else if (ch < 0x20) {
            j += (size_t)snprintf(esc + j, sizeof(esc) - j, "\\u%04x", ch);
        } else {
            esc[j++] = (char)ch;
        }
    }
    esc[j] = 0;
    append(c, ",\"%s\":\"%s\"", key, esc);
}

void hs_call_bool(struct hs_call *c, const char *key, bool v)
{
    append(c, ",\"%s\":%s", key, v ? "true" : "false");
}

void hs_call_range(struct hs_call *c, uint64_t iova, uint64_t len)
{
    c->has_range = len != 0;
    c->first = iova;
    c->last = len ? iova + len - 1 : iova;
    if (c->last < c->first) {
        c->last = UINT64_MAX;
    }
}

long hs_unhandled(struct hs_call *c, unsigned long req, int err)
{
    hs_call_str(c, "request_name", c->name);
    c->name = "unhandled";
    hs_call_hex(c, "request", req);
    return -err;
}

size_t hs_putf(char *out, size_t max, size_t n, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (!max) {
        return 0;
    }
    if (n >= max) {
        n = max - 1;
    }
    va_start(ap, fmt);
    k = vsnprintf(out + n, max - n, fmt, ap);
    va_end(ap);
    if (k > 0) {
        n += (size_t)k;
    }
    return n < max ? n : max - 1;
}

void hs_call_end(struct hs_call *c, long ret, int err)
{
    char line[2048];
    size_t n = 0;

    pthread_mutex_lock(&log_lock);
    log_seq++;
    if (log_fd >= 0 && c->logging) {
        n = hs_putf(line, sizeof(line), n,
                    "{\"seq\":%" PRIu64 ",\"call\":\"%s\",\"fd\":%d%s",
                    log_seq, c->name, c->fd, c->args);
        n = hs_putf(line, sizeof(line), n, ",\"ret\":%ld,\"errno\":%d",
                    ret, err);
        if (err) {
            n = hs_putf(line, sizeof(line), n, ",\"errname\":\"%s\"",
                        hs_errno_name(err));
        }
        if (c->injected) {
            n = hs_putf(line, sizeof(line), n, ",\"injected\":true");
        }
        if (c->delayed_ms) {
            n = hs_putf(line, sizeof(line), n, ",\"delayed_ms\":%" PRIu64,
                        c->delayed_ms);
        }
        /* always terminate the object, even when truncated */
        if (n > sizeof(line) - 3) {
            n = sizeof(line) - 3;
        }
        line[n++] = '}';
        line[n++] = '\n';
        ssize_t w = hs_real_write(log_fd, line, n);
        (void)w;
    }
    pthread_mutex_unlock(&log_lock);
    hs_counters_add(c->name, err != 0, now_ns() - c->start_ns);
}
