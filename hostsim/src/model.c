/*
 * Lifecycle of the model: configured from HOSTSIM_CONFIG when the library
 * is loaded into QEMU, or from configuration text by the self-test, which
 * resets it between cases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostsim.h"

void hs_model_init_from_env(void)
{
    const char *path = getenv("HOSTSIM_CONFIG");

    hs_libc_resolve();
    if (!path || !*path) {
        return;     /* inert: everything passes through */
    }
    if (hs_config_load(&hs_cfg, path)) {
        fprintf(stderr, "hostsim: configuration error, model disabled\n");
        hs_cfg.active = false;
        return;
    }
    hs_device_init();
    hs_log_open(hs_cfg.log_path);
    hs_node_adopt(hs_cfg.fd_iommufd, HS_NODE_IOMMU, 0);
    for (int i = 0; i < hs_cfg.ndevs; i++) {
        hs_node_adopt(hs_cfg.dev[i].fd, HS_NODE_CDEV, i);
    }
    if (hs_cfg.control_path[0]) {
        hs_control_start(hs_cfg.control_path);
    }
}

int hs_model_reset(const char *config_text)
{
    char err[256];

    hs_libc_resolve();
    hs_control_stop();
    pthread_mutex_lock(&hs_lock);
    /* objects still open are leaked on purpose: the test closed its fds */
    hs_fd_forget_all();
    memset(hs_groups, 0, sizeof(hs_groups));
    if (hs_config_parse_text(&hs_cfg, config_text, err, sizeof(err))) {
        fprintf(stderr, "hostsim: %s\n", err);
        pthread_mutex_unlock(&hs_lock);
        return -1;
    }
    hs_device_init();
    hs_log_open(hs_cfg.log_path);
    hs_counters_clear();
    pthread_mutex_unlock(&hs_lock);
    if (hs_cfg.control_path[0]) {
        hs_control_start(hs_cfg.control_path);
    }
    return 0;
}
