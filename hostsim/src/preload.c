/*
 * Entry point of libhostsim.so: configure the model when the library is
 * loaded into QEMU (LD_PRELOAD).  Without HOSTSIM_CONFIG it stays inert.
 */
#include "hostsim.h"

__attribute__((constructor)) static void hostsim_init(void)
{
    hs_model_init_from_env();
}
