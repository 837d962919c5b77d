/*
 * Per-call counters: how many calls of each kind the model answered, how
 * many failed, and the time spent in the model for them.  They are kept
 * whether the event log is on or off, so that a benchmark can run with the
 * log off (the log's formatting would inflate every call) and still see
 * what QEMU asked for and what the model cost.
 *
 * Keyed by the call's name as the log writes it (an ioctl name, "open",
 * "dma", "unhandled", ...): names are static strings, so a lookup compares
 * pointers first and strings only for a name seen through another pointer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hostsim.h"

#define MAX_COUNTERS 96

struct counter {
    const char *name;
    uint64_t calls, errors, ns;
};

static struct counter counters[MAX_COUNTERS];
static int ncounters;
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

static struct counter *lookup(const char *name)
{
    for (int i = 0; i < ncounters; i++) {
        if (counters[i].name == name) {
            return &counters[i];
        }
    }
    for (int i = 0; i < ncounters; i++) {
        if (!strcmp(counters[i].name, name)) {
            return &counters[i];
        }
    }
    if (ncounters == MAX_COUNTERS) {
        return NULL;    /* more kinds than the model has calls: not counted */
    }
    counters[ncounters].name = name;
    return &counters[ncounters++];
}

void hs_counters_add(const char *name, bool failed, uint64_t ns)
{
    struct counter *k;

    pthread_mutex_lock(&counters_lock);
    k = lookup(name);
    if (k) {
        k->calls++;
        k->errors += failed;
        k->ns += ns;
    }
    pthread_mutex_unlock(&counters_lock);
}

void hs_counters_clear(void)
{
    pthread_mutex_lock(&counters_lock);
    memset(counters, 0, sizeof(counters));
    ncounters = 0;
    pthread_mutex_unlock(&counters_lock);
}

size_t hs_counters_json(char *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&counters_lock);
    n = hs_putf(out, max, n, "{");
    for (int i = 0; i < ncounters; i++) {
        const struct counter *k = &counters[i];

        n = hs_putf(out, max, n, "%s\"%s\":{\"calls\":%" PRIu64
                    ",\"errors\":%" PRIu64 ",\"ns\":%" PRIu64 "}",
                    i ? "," : "", k->name, k->calls, k->errors, k->ns);
    }
    n = hs_putf(out, max, n, "}");
    pthread_mutex_unlock(&counters_lock);
    return n;
}
