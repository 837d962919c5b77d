"""The memory-size limit of the legacy backend's dirty bitmap ("vfio/migration:
Add migration blocker if VM memory is too large to cause unmap_bitmap
failure").

The legacy type1 container harvests the dirty bits of an unmapped range
into a bitmap of at most max_dirty_bitmap_size bytes, one bit per page of
the smallest dirty page size: 256 MiB x 8 x 4 KiB = 8 TiB with the
kernel's values.  A VM with more RAM can hit an unmap the backend refuses,
late, during migration.  With the series a device that migrates with that
bitmap (legacy, enable-migration=on, no usable device dirty tracking)
fails realize when guest RAM is strictly larger than the limit, with
"vfio <dev>: Migration is currently not supported with large memory VM due
to dirty tracking limitation in backend" (the "vfio <dev>: " prefix is the
realize path's; the commit that adds the check also names the device in
the message, so the name appeared twice until "vfio/migration: Do not name
the device twice in the large memory error").  Device dirty tracking and
iommufd are not limited.

hostsim's type1.max_dirty_bitmap_size = 4096 makes the limit
4096 x 8 x 4 KiB = 128 MiB, so the boundary is tested with small VMs;
one case uses the kernel's values and more than 8 TiB of RAM
(memory-backend-ram,reserve=off: nothing is touched, realize only).

Labels (realize only, no migration):
  realize-failed[large-memory]  QEMU exited with exactly that message
  realize-failed[large-memory-doubled-name]
                                the same with the device named twice,
                                "vfio <dev>: <dev>: Migration ..."
  accepted / accepted+warning   QEMU started, no migration blocker
                                (+ the "doesn't support device and IOMMU
                                dirty tracking" warning)
  blocked[<reason>]             QEMU started with a migration blocker
  realize-failed[<reason>]      QEMU exited for another reason
"""

import os
import sys

from lib import layout
from lib import qemu
from e2e.scenario import Case, REASONS, reason_key
from e2e.steps.big_ram import big_ram_args

DEV = "0000:00:05.0"
LARGE_MEMORY = ("Migration is currently not supported with large memory VM "
                "due to dirty tracking limitation in backend")
# The end of QEMU's realize error line: "...: vfio <dev>: <message>".
LARGE_MEMORY_FMT = ": vfio %s: " + LARGE_MEMORY
LARGE_MEMORY_DOUBLED_FMT = ": vfio %s: %s: " + LARGE_MEMORY
# The fix of the doubled name and the build just before it.
NAME_FIX = "Do-not-name-the-device-twice"
LIMIT_FIX = "Do-not-apply-the-dirty-bitmap-size-li"
WARNING = REASONS["no-dirty-tracking"]

SMALL_BITMAP = 4096                        # bytes -> limit 128 MiB
SMALL_LIMIT_MB = SMALL_BITMAP * 8 * 4096 >> 20
BIG_RAM = "8200G"                          # > 8 TiB = 8192 GiB


def realize_label(ctx, prepare=None, dev=DEV, **kw):
    """prepare(vm), if given, adjusts the VM before it starts; dev is the
    device whose exact large-memory message counts."""
    msg = LARGE_MEMORY_FMT % dev
    doubled = LARGE_MEMORY_DOUBLED_FMT % (dev, dev)
    try:
        v = ctx.vm("src", **kw)
        if prepare:
            prepare(v)
        v.start()
    except qemu.RealizeError as e:
        err = e.stderr.strip()
        ctx.note("QEMU stderr: " + err.replace("\n", " | ")[-800:])
        if e.rc is not None and e.rc < 0:
            return "crashed[signal %d]" % -e.rc
        if REASONS["large-memory"] in err:
            lines = [l.rstrip() for l in err.splitlines()]
            if any(l.endswith(msg) for l in lines):
                return "realize-failed[large-memory]"
            if any(l.endswith(doubled) for l in lines):
                return "realize-failed[large-memory-doubled-name]"
            ctx.note("large-memory refusal without the exact message %r" % msg[2:])
            return "realize-failed[large-memory-inexact]"
        errors = [l for l in err.splitlines() if "warning:" not in l]
        return "realize-failed[%s]" % reason_key("\n".join(errors) or err)
    warned = [l for l in v.stderr().splitlines() if "warning:" in l and WARNING in l]
    reasons = v.blocked_reasons()
    ctx.note("blocked-reasons: %s" % reasons)
    if reasons:
        return "blocked[%s]" % reason_key(reasons[0])
    return "accepted+warning" if warned else "accepted"


# The iommufd container's own limit (docs/behaviour.md [large-memory]: an
# iommufd container has no dirty_pgsizes/max_dirty_bitmap_size, so the size
# check must not compute a zero limit for it).  An iommufd container reports dirty pages as
# soon as one of its devices got a dirty-tracking HWPT.  A second device
# in that container whose host IOMMU cannot track dirty pages (mixed IOMMU
# units) gets an HWPT of its own without it: QEMU warns "IOMMU instance for
# device ... doesn't support dirty tracking", and with enable-migration=on
# and no DMA logging it reaches the size check, where the container's
# limits are 0.  Needs a model whose devices differ in IOMMU dirty
# tracking (hostsim key deviceN.iommu_dirty); the case is left out, with a
# note on stderr, while hostsim does not accept that key.
DEV1 = "0000:00:06.0"
MIXED_WARNING = "IOMMU instance for device %s doesn't support dirty tracking" % DEV1


def hostsim_accepts(text):
    """Whether hostsim parses the configuration text (it reports a bad key
    on stderr when loaded, even into /bin/true)."""
    import subprocess
    import tempfile
    if not os.path.isfile(layout.HOSTSIM_LIB):
        return False
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        env = dict(os.environ, LD_PRELOAD=layout.HOSTSIM_LIB, HOSTSIM_CONFIG=f.name)
        p = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True)
    return "configuration error" not in p.stderr


def add_second_iommufd_device(v):
    """Device 1 (no IOMMU dirty tracking in the model) on the same iommufd
    object and address space as device 0: one container."""
    sysfs1 = qemu.hostsim.make_sysfs_device(os.path.join(v.dir, "sysfs"), name=DEV1,
                                             group=43, cdev=1)
    v.args += ["-device", "vfio-pci,id=hostdev1,sysfsdev=%s,addr=06.0,iommufd=iommufd0,"
                          "enable-migration=on" % sysfs1]


def mixed_container_label(ctx):
    # Device 1 is the one that reaches the size check (device 0 has IOMMU
    # dirty tracking), so its name is in the message.
    label = realize_label(ctx, prepare=add_second_iommufd_device, dev=DEV1, **MIXED_KW)
    err = "\n".join(v.stderr() for v in ctx.vms)
    if MIXED_WARNING not in err:
        ctx.note("the model did not give device 1 an HWPT without dirty tracking "
                 "(no %r): the container is not mixed" % MIXED_WARNING)
        return "not-mixed:" + label
    return label


MIXED_KW = dict(backend="iommufd", viommu=False, enable_migration="on",
                hostsim_cfg={"dma_logging": "off", "iommu_dirty": "on",
                             "device1.name": DEV1, "device1.group": 43, "device1.cdev": 1,
                             "device1.iommu_dirty": "off"})


def legacy_kw(ram, viommu=True, dma_logging="off", bitmap=SMALL_BITMAP, extra=()):
    cfg = {"dma_logging": dma_logging, "type1.migration_cap": "on"}
    if bitmap is not None:
        cfg["type1.max_dirty_bitmap_size"] = bitmap
    return dict(backend="legacy", enable_migration="on", viommu=viommu, ram=ram,
                hostsim_cfg=cfg, extra_args=list(extra))


def case(name, expect, doc, **kw):
    return Case("e2e/memory-limit/" + name, expect, lambda ctx: realize_label(ctx, **kw), doc)


DOUBLED = "realize-failed[large-memory-doubled-name]"


def cases():
    name_unfixed, name_fixed = layout.build_before(NAME_FIX), layout.build_with(NAME_FIX)
    above = "%dM" % (SMALL_LIMIT_MB * 2)
    equal = "%dM" % SMALL_LIMIT_MB
    out = [
        case("legacy/above-limit", {"fork": "realize-failed[large-memory]",
                                    "base": "realize-failed[vIOMMU]"},
             "legacy bitmap, vIOMMU, RAM 256M > 128M limit: realize fails with the "
             "exact large-memory message (base: the vIOMMU blocker)",
             **legacy_kw(above)),
        # upto-08 / upto-09: the queue just before / with the commit that
        # adds the check (queue position 09), which names the device twice
        # until the fix (name_fixed) and on the build just before it.
        case("legacy/above-limit-no-viommu", {"fork": "realize-failed[large-memory]",
                                              "base": "accepted+warning",
                                              "upto-08": "accepted+warning",
                                              "upto-09": DOUBLED,
                                              name_unfixed: DOUBLED,
                                              name_fixed: "realize-failed[large-memory]"},
             "legacy bitmap, no vIOMMU, RAM above the limit: the fork refuses at "
             "realize what the base accepts (and fails later, in migration), naming "
             "the device once",
             **legacy_kw(above, viommu=False)),
        case("legacy/equal-limit", {"fork": "accepted+warning",
                                    "base": "realize-failed[vIOMMU]"},
             "legacy bitmap, vIOMMU, RAM == limit (128M): accepted with the warning "
             "(strictly larger only)",
             **legacy_kw(equal)),
        case("legacy/device-dirty-tracking", {"fork": "accepted", "base": "accepted"},
             "DMA logging usable, RAM above the small limit, no vIOMMU: device dirty "
             "tracking is not limited (unchanged)",
             **legacy_kw(above, viommu=False, dma_logging="on")),
        case("iommufd/no-dirty-tracking-above-8t",
             {"fork": "accepted+warning", "base": "realize-failed[vIOMMU]"},
             "iommufd without any dirty tracking, enable-migration=on, vIOMMU, RAM > "
             "8 TiB: reaches the same check as legacy but has no bitmap limit: "
             "warning only",
             backend="iommufd", enable_migration="on", ram=BIG_RAM,
             hostsim_cfg={"dma_logging": "off", "iommu_dirty": "off"},
             extra_args=big_ram_args(BIG_RAM)),
        case("iommufd/iommu-dirty-above-8t", {"fork": "accepted", "base": "blocked[vIOMMU]"},
             "iommufd HWPT dirty tracking, vIOMMU, RAM > 8 TiB: migratable, no size "
             "limit",
             backend="iommufd", ram=BIG_RAM,
             hostsim_cfg={"dma_logging": "off", "iommu_dirty": "on"},
             extra_args=big_ram_args(BIG_RAM)),
        case("legacy/kernel-values-above-8t", {"fork": "realize-failed[large-memory]",
                                               "base": "accepted+warning"},
             "the kernel's values (256 MiB bitmap, 4 KiB pages: 8 TiB), no vIOMMU, "
             "RAM 8200G: realize fails on the fork, the base accepts it",
             **legacy_kw(BIG_RAM, viommu=False, bitmap=None, extra=big_ram_args(BIG_RAM))),
    ]
    if hostsim_accepts("device1.iommu_dirty = off\n"):
        # The queue just before / with "vfio/migration: Do not apply the
        # dirty bitmap size limit without one".
        out.append(Case("e2e/memory-limit/iommufd/mixed-dirty-container",
                        {"fork": "accepted+warning", "base": "accepted+warning",
                         layout.build_before(LIMIT_FIX): DOUBLED,
                         layout.build_with(LIMIT_FIX): "accepted+warning"},
                        mixed_container_label,
                        "two iommufd devices in one container, only device 0 with IOMMU "
                        "dirty tracking; device 1 (enable-migration=on, no DMA logging) "
                        "must realize with the warning, not hit a zero size limit"))
    else:
        sys.stderr.write("memory_limit: hostsim does not accept deviceN.iommu_dirty; "
                         "e2e/memory-limit/iommufd/mixed-dirty-container left out\n")
    return out
