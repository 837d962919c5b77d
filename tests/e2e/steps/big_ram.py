"""Guest RAM larger than the host has: the memory-limit cases and the
cases with RAM above 4 GiB."""


def big_ram_args(size):
    """Guest RAM from a memory backend that reserves nothing, and CPU
    physical address bits that can address it (qemu64 has 40)."""
    return ["-object", "memory-backend-ram,id=ram0,size=%s,reserve=off" % size,
            "-machine", "memory-backend=ram0", "-cpu", "qemu64,phys-bits=48"]
