/*
 * Fault injection: make the Nth matching call, or every call whose IOVA
 * range intersects a given range, fail with a chosen errno before the model
 * acts on it (like the kernel's fail-nth / fault-injection points), or
 * answer it only after a delay (a kernel that is slow to walk its tables).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "hostsim.h"

int hs_fault_check(struct hs_call *c)
{
    c->fault_checked = true;
    for (int i = 0; i < hs_cfg.nfaults; i++) {
        struct hs_fault *f = &hs_cfg.faults[i];

        if (strcmp(f->call, "any") && strcmp(f->call, c->name)) {
            continue;
        }
        if (f->has_range) {
            if (!c->has_range || c->last < f->first || c->first > f->last) {
                continue;
            }
        }
        f->seen++;
        if (f->nth && f->seen != f->nth) {
            continue;
        }
        if (f->delay_ms) {
            struct timespec ts = {
                .tv_sec = f->delay_ms / 1000,
                .tv_nsec = (f->delay_ms % 1000) * 1000000,
            };

            while (nanosleep(&ts, &ts) && errno == EINTR) {
                /* sleep the rest */
            }
            c->delayed_ms += f->delay_ms;
        }
        if (!f->err) {
            continue;
        }
        c->injected = true;
        return f->err;
    }
    return 0;
}

int hs_fault_add(const char *spec)
{
    if (hs_cfg.nfaults >= HS_MAX_FAULTS) {
        return -1;
    }
    if (hs_fault_parse(&hs_cfg.faults[hs_cfg.nfaults], spec)) {
        return -1;
    }
    hs_cfg.nfaults++;
    return 0;
}

void hs_fault_clear(void)
{
    hs_cfg.nfaults = 0;
    memset(hs_cfg.faults, 0, sizeof(hs_cfg.faults));
}
