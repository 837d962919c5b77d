"""The hostsim end-to-end suite: the model against real QEMU binaries."""
