"""The nested suite: our QEMU builds on a real kernel in a TCG guest."""
