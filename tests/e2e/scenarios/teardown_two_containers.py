"""Whole-address-space teardown with two VFIO containers on one vIOMMU
address space (docs/behaviour.md [every-notifier]: intel_iommu keeps one
iova tree per address space; consuming it for the first notifier leaves
nothing for a second notifier on the same address space).

Two vfio-pci devices behind one PCIe-to-PCI bridge share the bridge's
requester ID (secondary bus, devfn 00.0), hence one intel_iommu address
space.  Each uses its own iommufd object, so each gets its own container
and its own IOMMU notifiers on that address space.  (A legacy and an
iommufd device cannot share an address space in QEMU 10.2.2 at all.)

The guest maps two IOVAs; both containers map both.  With dirty tracking
on, device 0 writes through the first IOVA and device 1 through the
second, then the guest clears the bridge's context entry and invalidates.
With "intel_iommu: Fix unmap_bitmap failure with legacy VFIO backend"
alone, the first notifier walked consumes the recorded mappings and the
other container is told nothing: it keeps both mappings (its device can
still DMA to memory the guest took away) and their dirty bits are never
read.  The follow-up "intel_iommu: Unmap recorded mappings for every
notifier of an address space" sends each recorded mapping to every
notifier.

Each container's host calls are told apart by their iommufd fd.  Label:
the two containers' judgements (steps/unmap_reads.judge), sorted and
joined with "+"; "both-harvested" when both read and unmapped each mapping.

e2e/teardown-two-containers/dirty-rate
  dirty tracking from calc-dirty-rate (the base can do this too).
  fork: both-harvested; the queue before the follow-up: one container
  "not-unmapped"; base: both unmap the address-width chunks without a read.
e2e/teardown-two-containers/migration
  the same during migration (iterative phase, VM and devices running);
  label gets "+intact" / "+stale" from the destination's pages.
  fork: both-harvested+intact; before the follow-up: the kept container's device page
  is stale; base: vIOMMU blocker.
"""

import os

from lib import layout
from e2e import guestdma as g
from lib import qemu
from lib.viommu import driver as guest_driver
from e2e.scenario import Case, reason_key
from e2e.steps.bridge import ALIAS_DEVFN, SECONDARY_BUS, number_bridge
from e2e.steps import unmap_reads as R

DID = 1
# The queue just before "intel_iommu: Unmap recorded mappings for every
# notifier of an address space".
BEFORE = layout.build_before("Unmap-recorded-mappings-for-every-notifi")
DEV1 = "0000:00:06.0"
MAPS = [g.Mapping(0x10000, 0x200000), g.Mapping(0x20000, 0x2345000)]
def two_container_vm(ctx, name, incoming=False):
    """A VM whose assigned devices 0 and 1 sit behind one bridge, each on
    its own iommufd object.  qemu.VM builds one device on the root bus; its
    argument list is rewired here before start."""
    cfg = {"dma_logging": "off", "iommu_dirty": "on",
           "device1.name": DEV1, "device1.group": 43, "device1.cdev": 1}
    v = ctx.vm(name, backend="iommufd", hostsim_cfg=cfg, incoming=incoming)
    sysfs1 = qemu.hostsim.make_sysfs_device(os.path.join(v.dir, "sysfs"), name=DEV1,
                                             group=43, cdev=1)
    i = next(n for n, a in enumerate(v.args) if a.startswith("vfio-pci,"))
    v.args[i] = v.args[i].replace("addr=05.0", "bus=br0,addr=01.0")
    v.args[i - 1:i - 1] = ["-device", "pcie-pci-bridge,id=br0,bus=pcie.0,addr=06.0"]
    v.args += ["-object", "iommufd,id=iommufd1",
               "-device", "vfio-pci,id=hostdev1,sysfsdev=%s,bus=br0,addr=02.0,"
                          "iommufd=iommufd1" % sysfs1]
    return v.start()


def bring_up(v):
    """Guest VT-d driver: the bridge's alias (secondary bus, 00.0) in
    domain DID, translation on, MAPS mapped."""
    number_bridge(v)
    drv = guest_driver(v.qt, "legacy")
    drv.init()
    drv.attach(SECONDARY_BUS, ALIAS_DEVFN, DID)
    drv.enable_translation()
    g.map_all(drv, DID, MAPS)
    return drv


def device_writes(v):
    """Device 0 writes the first mapping's page, device 1 the second's."""
    out = []
    for dev, m in ((0, MAPS[0]), (1, MAPS[1])):
        out.append((m, v.ctl.dma(m.iova, g.PAGE, g.new_pattern(m.gpa), dev=dev)))
    return out


def container_fds(v):
    """iommufd fds of the two containers: those that mapped MAPS[0]."""
    fds = []
    for e in R.H.calls(v.events(), R.H.IOAS_MAP):
        if e.get("iova") == MAPS[0].iova and e.get("fd") not in fds:
            fds.append(e.get("fd"))
    return fds


def judge_containers(ctx, v, window):
    fds = container_fds(v)
    if len(fds) != 2:
        ctx.note("expected two containers mapping 0x%x, found iommufd fds %s" % (MAPS[0].iova, fds))
        return "containers-%d" % len(fds)
    labels = []
    for fd in fds:
        sub = [e for e in window if e.get("fd") == fd]
        ctx.note("container on iommufd fd %s:" % fd)
        for line in R.H.fmt_all(sub):
            ctx.note("  " + line)
        labels.append(R.judge(ctx, "iommufd", sub, pages=[(m.iova, m.size) for m in MAPS],
                              focus=True))
    for dev in (0, 1):
        st = v.ctl.state(dev=dev)
        ctx.note("device %d host mappings after the teardown: %s" % (dev, st.get("mappings")))
    labels.sort()
    return "both-harvested" if labels == ["read-ok", "read-ok"] else "+".join(labels)


def teardown(drv):
    drv.detach(SECONDARY_BUS, ALIAS_DEVFN, DID)


def run_dirty_rate(ctx):
    v = two_container_vm(ctx, "src")
    drv = bring_up(v)
    g.fill_old(v, MAPS)
    state = {}

    def action():
        state["dma"] = device_writes(v)
        teardown(drv)

    w = R.dirty_rate_window(v, "iommufd", action, containers=2)
    if w.error:
        ctx.note("dirty-rate: " + w.error)
        return "no-tracking"
    window = R.window_events(v, w.start_seq, w.end_seq)
    periodic = R.periodic_reads(window)
    if w.ordering_lost or periodic:
        ctx.note("ordering lost: %s %s" % (w.ordering_lost or "", [R.H.fmt(e) for e in periodic]))
        return "ordering-lost"
    for m, reply in state["dma"]:
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return "dma-failed"
    return judge_containers(ctx, v, window)


def run_migration(ctx):
    src = two_container_vm(ctx, "src")
    dst = two_container_vm(ctx, "dst", incoming=True)
    reasons = src.blocked_reasons()
    drv = bring_up(src)
    g.fill_old(src, MAPS)
    state = {}

    def action():
        state["seq"] = src.event_seq()
        state["dma"] = device_writes(src)
        teardown(drv)
        state["end"] = src.event_seq()

    r = g.migrate_with_window(src, dst, MAPS, action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if r.ordering_lost:
        return "ordering-lost"
    for m, reply in state["dma"]:
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return "dma-failed"
    harvest = judge_containers(ctx, src, R.window_events(src, state["seq"], state["end"]))
    if not r.completed:
        return harvest + "+migrate-failed"
    pages = g.check_pages(dst, MAPS)
    for gpa, st in sorted(pages.items()):
        ctx.note("destination gpa 0x%x: %s" % (gpa, st))
    ctx.measures["pages_lost"] = sum(1 for st in pages.values() if st != "new")
    return harvest + ("+intact" if set(pages.values()) == {"new"} else "+stale")


def cases():
    return [
        Case("e2e/teardown-two-containers/dirty-rate",
             {"fork": "both-harvested", "base": "no-read+no-read",
              BEFORE: "not-unmapped+read-ok"}, run_dirty_rate, __doc__),
        Case("e2e/teardown-two-containers/migration",
             {"fork": "both-harvested+intact", "base": "blocked[vIOMMU]",
              BEFORE: "not-unmapped+read-ok+stale"}, run_migration, __doc__),
    ]
