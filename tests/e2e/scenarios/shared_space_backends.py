"""A legacy and an iommufd VFIO device in one vIOMMU address space.

Both devices sit behind one PCIe-to-PCI bridge, so intel-iommu gives them
the bridge's requester ID and one address space: VFIO keeps one
VFIOAddressSpace with the containers of both backends in it.  Whichever
device comes second walks that space's containers looking for one to join,
and QEMU 10.2.2 casts each container to its own backend's type before
checking the type (iommufd_cdev_attach(); vfio_container_connect() for a
legacy device): the cast of the other backend's container fails QOM's
type check and QEMU aborts.  The fork skips containers of the other
backend, so the second device gets a container of its own in the same
space (docs/behaviour.md [shared-space-backends]).

Without a vIOMMU every device shares address_space_memory, and the same
casts abort.

e2e/shared-space-backends/<first>-then-<second>/<viommu|no-viommu>/<plug>
  coldplug: both devices on the command line; hotplug: the second one
  with device_add while the VM runs (behind the bridge, whose hot-plug
  controller takes it; without a vIOMMU coldplug only, as the root bus
  takes no hot-plug).  Then a migration: each device
  writes its page (behind the vIOMMU: one IOVA per device in the bridge's
  domain) once it was sent, and both pages are compared on the
  destination.  fork: "intact"; base: "crashed[signal 6]" (at startup,
  or at device_add).
  A legacy device needs enable-migration=on to migrate with the type1
  bitmap, and behind a vIOMMU the base refuses that at realize: there the
  legacy device that comes first keeps enable-migration=auto, so that the
  base reaches the second device; the fork then realizes both and
  refuses the migration for the legacy device, with the reason of
  docs/behaviour.md [realize-table] ("blocked[no-dirty-tracking]").
"""

import os

from e2e import guestdma as g
from lib import backends
from lib import qemu
from lib.qmp import QMPError
from e2e.scenario import Case, reason_key
from e2e.steps.bridge import BRIDGE_DEVFN, bring_up
from e2e.steps.next_migration import alive_label, next_migration_label

DEV1 = "0000:00:06.0"
# type1 with its precise dirty bitmap for the legacy device, HWPT dirty
# tracking for iommufd
CFG = {"dma_logging": "off", "iommu_dirty": "on", "type1.migration_cap": "on",
       "type1.dirty": "precise",
       "device1.name": DEV1, "device1.group": 43, "device1.cdev": 1}
WRITES_VIOMMU = [("dev0", 0, g.Mapping(0x10000, 0x200000)),
                 ("dev1", 1, g.Mapping(0x20000, 0x300000))]
WRITES_IDENTITY = [("dev0", 0, g.Mapping(0x200000, 0x200000)),
                   ("dev1", 1, g.Mapping(0x300000, 0x300000))]


def device_arg(backend, sysfs, dev_id, where, migration):
    be = backends.get(backend)
    arg = ",".join(["vfio-pci,id=%s,sysfsdev=%s,%s" % (dev_id, sysfs, where)] + be.device_props)
    if be.needs_enable_migration and migration:
        arg += ",enable-migration=on"
    return arg


def shared_vm(ctx, name, first, second, viommu, hotplug, incoming=False):
    """Device 0 (backend first) and, unless hotplug, device 1 (backend
    second); behind bridge br0 with a vIOMMU.  Returns (VM, device_add
    arguments of device 1)."""
    first_migrates = backends.get(first).needs_enable_migration and not viommu
    v = ctx.vm(name, backend=first, viommu=viommu, hostsim_cfg=dict(CFG), incoming=incoming,
               enable_migration="on" if first_migrates else None)
    sysfs1 = qemu.hostsim.make_sysfs_device(os.path.join(v.dir, "sysfs"), name=DEV1,
                                             group=43, cdev=1)
    if viommu:
        i = next(n for n, a in enumerate(v.args) if a.startswith("vfio-pci,"))
        v.args[i] = v.args[i].replace("addr=05.0", "bus=br0,addr=01.0")
        v.args[i - 1:i - 1] = ["-device", "pcie-pci-bridge,id=br0,bus=pcie.0,addr=%02x.0"
                               % (BRIDGE_DEVFN >> 3)]
        where = "bus=br0,addr=02.0"
    else:
        where = "bus=pcie.0,addr=06.0"
    if not backends.get(first).objects:
        v.args += backends.get(second).objects      # device 1's
    dev1 = device_arg(second, sysfs1, "hostdev1", where, migration=True)
    if not hotplug:
        v.args += ["-device", dev1]
    return v.start(), dev1


def hotplug(ctx, v, dev1):
    """device_add of device 1; None when it was added."""
    opts = dict(kv.split("=", 1) for kv in dev1.split(",")[1:])
    try:
        v.qmp.command("device_add", driver="vfio-pci", **opts)
        return None
    except QMPError as e:
        ctx.note("device_add refused: %s" % e.desc)
        return alive_label(ctx, v) or "hotplug-refused"
    except (OSError, EOFError) as e:
        ctx.note("device_add: %r" % e)
        try:
            v.proc.wait(timeout=5)
        except Exception:
            pass
        return alive_label(ctx, v) or "hotplug-error"


def run(ctx, first, second, viommu, plug):
    src, dev1 = shared_vm(ctx, "src", first, second, viommu, plug == "hotplug")
    if plug == "hotplug":
        bad = hotplug(ctx, src, dev1)
        if bad:
            return bad
    bad = alive_label(ctx, src)
    if bad:
        return bad
    reasons = src.blocked_reasons()
    ctx.note("blocked-reasons: %s" % reasons)
    dst, _ = shared_vm(ctx, "dst", first, second, viommu, False, incoming=True)
    writes = WRITES_VIOMMU if viommu else WRITES_IDENTITY
    if viommu:
        bring_up(src, writes)
    label = next_migration_label(ctx, src, dst, writes)
    if label == "refused":
        return "blocked[%s]" % "+".join(reason_key(r) for r in reasons)
    return label


VARIANTS = [  # (first, second, viommu, plug, fork)
    ("iommufd", "legacy", True, "coldplug", "intact"),
    ("iommufd", "legacy", True, "hotplug", "intact"),
    ("legacy", "iommufd", True, "coldplug", "blocked[no-dirty-tracking]"),
    ("legacy", "iommufd", True, "hotplug", "blocked[no-dirty-tracking]"),
    ("legacy", "iommufd", False, "coldplug", "intact"),
    ("iommufd", "legacy", False, "coldplug", "intact"),
]


def cases():
    return [Case("e2e/shared-space-backends/%s-then-%s/%s/%s"
                 % (first, second, "viommu" if viommu else "no-viommu", plug),
                 {"fork": fork, "base": "crashed[signal 6]"},
                 lambda ctx, a=(first, second, viommu, plug): run(ctx, *a), __doc__)
            for first, second, viommu, plug, fork in VARIANTS]
