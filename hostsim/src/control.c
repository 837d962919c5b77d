/*
 * Control socket: a UNIX stream socket the test harness talks to, one text
 * line per request and one JSON line per response (see README.md).  Each
 * connection gets its own thread; requests run under the model lock like
 * any kernel-interface call.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hostsim.h"

static int listen_fd = -1;
static pthread_t accept_thread;
static bool accept_running;

static bool parse_num(const char *s, uint64_t *v)
{
    char *end;

    if (!s) {
        return false;
    }
    errno = 0;
    *v = strtoull(s, &end, 0);
    return !errno && end != s && !*end;
}

/*
 * "dev=N" or "dev=NAME" anywhere in a dma/read/state request selects the
 * device (default: device 0); it is removed from the line.
 */
static struct hs_device *take_device(char *buf, bool *bad)
{
    char *p = strstr(buf, "dev=");
    char sel[64];
    size_t n;
    struct hs_device *D;

    *bad = false;
    if (!p || (p != buf && p[-1] != ' ' && p[-1] != '\t')) {
        return hs_device_get(0);
    }
    n = strcspn(p + 4, " \t\r\n");
    snprintf(sel, sizeof(sel), "%.*s", (int)(n < 63 ? n : 63), p + 4);
    memmove(p, p + 4 + n, strlen(p + 4 + n) + 1);
    D = hs_device_by_name(sel);
    if (!D) {
        char *end;
        long idx = strtol(sel, &end, 0);
        D = (*sel && !*end) ? hs_device_get((int)idx) : NULL;
    }
    *bad = D == NULL;
    return D;
}

void hs_control_handle(const char *line, char *out, size_t max)
{
    char buf[512], *save = NULL, *cmd;
    struct hs_device *D;
    bool bad = false;

    snprintf(buf, sizeof(buf), "%s", line);
    pthread_mutex_lock(&hs_lock);
    D = strncmp(buf, "fault", 5) ? take_device(buf, &bad) : hs_device_get(0);
    pthread_mutex_unlock(&hs_lock);
    cmd = strtok_r(buf, " \t\r\n", &save);
    if (!cmd) {
        snprintf(out, max, "{\"ok\":false,\"error\":\"empty request\"}");
        return;
    }
    if (bad) {
        snprintf(out, max, "{\"ok\":false,\"error\":\"no such device\"}");
        return;
    }
    if (!strcmp(cmd, "dma")) {
        uint64_t iova, len, pat;
        struct hs_dma_result r;

        if (!parse_num(strtok_r(NULL, " \t\r\n", &save), &iova) ||
            !parse_num(strtok_r(NULL, " \t\r\n", &save), &len) ||
            !parse_num(strtok_r(NULL, " \t\r\n", &save), &pat)) {
            snprintf(out, max, "{\"ok\":false,\"error\":\"usage: dma IOVA "
                     "LEN PATTERN\"}");
            return;
        }
        pthread_mutex_lock(&hs_lock);
        hs_dma_write(D, iova, len, pat, &r);
        pthread_mutex_unlock(&hs_lock);
        if (r.ok) {
            snprintf(out, max, "{\"ok\":true,\"pages\":%" PRIu64 "}", r.pages);
        } else {
            snprintf(out, max, "{\"ok\":false,\"error\":\"%s\",\"iova\":%"
                     PRIu64 ",\"errno\":%d,\"device_state\":\"%s\"}",
                     r.err == EFAULT ? "fault" :
                     r.err == EBUSY ? "device_stopped" : hs_errno_name(r.err),
                     r.fault_iova, r.err, hs_mig_state_name(D->mig_state));
        }
        return;
    }
    if (!strcmp(cmd, "read")) {
        uint64_t iova, len, fault = 0;
        uint8_t data[1024];
        bool ok;

        if (!parse_num(strtok_r(NULL, " \t\r\n", &save), &iova) ||
            !parse_num(strtok_r(NULL, " \t\r\n", &save), &len) ||
            len > sizeof(data)) {
            snprintf(out, max, "{\"ok\":false,\"error\":\"usage: read IOVA "
                     "LEN (LEN <= 1024)\"}");
            return;
        }
        pthread_mutex_lock(&hs_lock);
        ok = hs_dma_read(D, iova, data, len, &fault);
        pthread_mutex_unlock(&hs_lock);
        if (!ok) {
            snprintf(out, max, "{\"ok\":false,\"error\":\"fault\",\"iova\":%"
                     PRIu64 "}", fault);
            return;
        }
        size_t n = (size_t)snprintf(out, max, "{\"ok\":true,\"hex\":\"");
        for (uint64_t i = 0; i < len && n + 4 < max; i++) {
            n += (size_t)snprintf(out + n, max - n, "%02x", data[i]);
        }
        snprintf(out + n, max - n, "\"}");
        return;
    }
    if (!strcmp(cmd, "state")) {
        size_t n;

        pthread_mutex_lock(&hs_lock);
        n = (size_t)snprintf(out, max,
                "{\"ok\":true,\"device\":\"%s\",\"device_state\":\"%s\","
                "\"dma_writes\":%" PRIu64 ",\"dma_bytes\":%" PRIu64 ","
                "\"dma_faults\":%" PRIu64 ",\"resets\":%" PRIu64 ","
                "\"loaded_from_migration\":%" PRIu64 ","
                "\"dma_logging\":%s,\"kernel\":\"%s\",\"devices\":%d,"
                "\"lost_dirty_pages\":%" PRIu64,
                D->cfg->name, hs_mig_state_name(D->mig_state),
                D->dma_writes, D->dma_bytes, D->dma_faults,
                D->resets, D->loaded_from_migration,
                D->log_on ? "true" : "false",
                hs_cfg.kernel == 612 ? "6.12" : "6.14", hs_cfg.ndevs,
                hs_lost_dirty_pages);
        /* before the mappings: a long mapping list is cut, these are not */
        if (n < max) {
            n += (size_t)snprintf(out + n, max - n, ",\"counters\":");
        }
        if (n < max) {
            n += hs_counters_json(out + n, max - n);
        }
        if (n < max) {
            n += hs_dma_describe(D, out + n, max - n);
        }
        pthread_mutex_unlock(&hs_lock);
        if (n < max - 2) {
            snprintf(out + n, max - n, "}");
        }
        return;
    }
    if (!strcmp(cmd, "fault")) {
        const char *spec = line + (cmd - buf) + strlen("fault");
        int rc;

        while (*spec == ' ' || *spec == '\t') {
            spec++;
        }
        char spec2[256];
        snprintf(spec2, sizeof(spec2), "%s", spec);
        spec2[strcspn(spec2, "\r\n")] = 0;
        pthread_mutex_lock(&hs_lock);
        rc = hs_fault_add(spec2);
        pthread_mutex_unlock(&hs_lock);
        snprintf(out, max, rc ? "{\"ok\":false,\"error\":\"bad fault rule\"}"
                              : "{\"ok\":true}");
        return;
    }
    if (!strcmp(cmd, "clear-faults")) {
        pthread_mutex_lock(&hs_lock);
        hs_fault_clear();
        pthread_mutex_unlock(&hs_lock);
        snprintf(out, max, "{\"ok\":true}");
        return;
    }
    if (!strcmp(cmd, "counters")) {
        size_t n = (size_t)snprintf(out, max, "{\"ok\":true,\"calls\":%"
                                    PRIu64 ",\"counters\":", hs_log_calls());

        if (n < max) {
            n += hs_counters_json(out + n, max - n);
        }
        if (n < max - 2) {
            snprintf(out + n, max - n, "}");
        }
        return;
    }
    if (!strcmp(cmd, "clear-counters")) {
        hs_counters_clear();
        snprintf(out, max, "{\"ok\":true}");
        return;
    }
    if (!strcmp(cmd, "calls")) {
        snprintf(out, max, "{\"ok\":true,\"calls\":%" PRIu64 "}",
                 hs_log_calls());
        return;
    }
    snprintf(out, max, "{\"ok\":false,\"error\":\"unknown request\"}");
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char in[1024];
    size_t have = 0;

    for (;;) {
        ssize_t r = recv(fd, in + have, sizeof(in) - 1 - have, 0);
        char *nl;

        if (r <= 0) {
            break;
        }
        have += (size_t)r;
        in[have] = 0;
        while ((nl = strchr(in, '\n'))) {
            char out[65536];
            size_t olen;

            *nl = 0;
            hs_control_handle(in, out, sizeof(out) - 1);
            olen = strlen(out);
            out[olen++] = '\n';
            if (send(fd, out, olen, MSG_NOSIGNAL) < 0) {
                goto done;
            }
            have -= (size_t)(nl + 1 - in);
            memmove(in, nl + 1, have + 1);
        }
        if (have >= sizeof(in) - 1) {
            break;  /* request line too long */
        }
    }
done:
    hs_real_close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        pthread_t t;

        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd)) {
            hs_real_close(fd);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

/*
 * QEMU -daemonize forks after the library is loaded: threads do not survive
 * fork(), so the child starts its own accept thread on the inherited socket,
 * and the model lock is taken across fork so no half-done request is
 * inherited.
 */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&hs_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&hs_lock);
}

static void atfork_child(void)
{
    sigset_t all, old;

    pthread_mutex_unlock(&hs_lock);
    if (listen_fd >= 0) {
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        accept_running = pthread_create(&accept_thread, NULL, accept_main,
                                        NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
}

void hs_control_start(const char *path)
{
    static bool atfork_done;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    sigset_t all, old;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "hostsim: control socket path too long\n");
        return;
    }
    strcpy(sa.sun_path, path);
    unlink(path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        listen(listen_fd, 8)) {
        fprintf(stderr, "hostsim: cannot listen on %s: %s\n", path,
                strerror(errno));
        if (listen_fd >= 0) {
            hs_real_close(listen_fd);
            listen_fd = -1;
        }
        return;
    }
    if (!atfork_done) {
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        atfork_done = true;
    }
    /* the model's threads must not take QEMU's signals */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    accept_running = pthread_create(&accept_thread, NULL, accept_main,
                                    NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void hs_control_stop(void)
{
    if (listen_fd >= 0) {
        shutdown(listen_fd, SHUT_RDWR);
        if (accept_running) {
            pthread_join(accept_thread, NULL);
            accept_running = false;
        }
        hs_real_close(listen_fd);
        listen_fd = -1;
    }
}
