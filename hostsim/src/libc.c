/*
 * The real libc entry points the model itself needs (its log, its file
 * mappings, the fds that stand for its objects).  The shim in interpose.c
 * replaces these symbols, so the model reaches the real ones through
 * dlsym(RTLD_NEXT) -- in the self-test, where the model is linked in
 * rather than preloaded, RTLD_NEXT finds libc just the same.
 */
#include <dlfcn.h>

#include "hostsim.h"

int (*hs_real_open)(const char *, int, ...);
int (*hs_real_close)(int);
ssize_t (*hs_real_read)(int, void *, size_t);
ssize_t (*hs_real_write)(int, const void *, size_t);
int (*hs_real_ioctl)(int, unsigned long, ...);

void hs_libc_resolve(void)
{
#define R(var, name) if (!var) { var = dlsym(RTLD_NEXT, name); }
    R(hs_real_open, "open");
    R(hs_real_close, "close");
    R(hs_real_read, "read");
    R(hs_real_write, "write");
    R(hs_real_ioctl, "ioctl");
#undef R
}
