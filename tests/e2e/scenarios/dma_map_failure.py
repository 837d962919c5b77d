"""The host refuses the DMA mapping of a guest RAM section once the VFIO
container is set up (hostsim fault on IOMMU_IOAS_MAP / VFIO_IOMMU_MAP_DMA,
ENOMEM).  QEMU 10.2.2 stops with hw_error() ("hardware error: vfio: DMA
mapping failed, unable to continue") and dumps core: a device must not
run with guest RAM it cannot reach.  The fork keeps that guarantee
without the abort (docs/behaviour.md [dma-map-failure]):

e2e/dma-map-failure/<backend>/machine-start
  the failed map is the one of RAM above 1 MiB that the initial reset
  lays out again after the devices were realized (the fail-nth sweep's
  startup points).  fork: QEMU refuses to start the machine: it exits
  with status 1 and an error naming the region, the range and the
  errno: "refused-start"; base: "crashed[signal 6]".
e2e/dma-map-failure/<backend>/running
  the VM runs (vIOMMU translation off: the device's address space is
  guest RAM); the guest opens 0xc0000-0xc7fff as RAM (PAM1 of the q35
  host bridge), whose map fails.  Nothing can refuse that from the
  listener.  fork: the error names the range and the errno, the VM stops
  with the QMP event STOP, query-status says "internal-error", "cont" is
  refused, QEMU answers QMP: "stopped[internal-error]"; base:
  "crashed[signal 6]".
"""

import time

from lib import qemu
from lib.qmp import QMPError
from e2e.scenario import Case
from e2e.steps.migration_window import dirty_rate_kw
from e2e.steps.next_migration import alive_label

MAP_CALL = {"iommufd": "IOMMU_IOAS_MAP", "legacy": "VFIO_IOMMU_MAP_DMA"}
ENOMEM_TEXT = "Cannot allocate memory"
# RAM above 1 MiB: mapped at realize, then again after the initial reset
RAM_1M = (0x100000, 0x100fff)
# what PAM1 = 0x33 turns into RAM
PAM1_RANGE = (0xc0000, 0xc7fff)
PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA = 0xCF8, 0xCFC
PAM1 = 0x91


def machine_start(ctx, backend):
    kw = dirty_rate_kw(backend)
    cfg = dict(kw.pop("hostsim_cfg"))
    cfg["fault"] = "%s nth=2 iova=%#x-%#x errno=ENOMEM" % ((MAP_CALL[backend],) + RAM_1M)
    v = ctx.vm("src", hostsim_cfg=cfg, **kw)
    try:
        v.start()
    except qemu.RealizeError as e:
        ctx.note("QEMU stderr: " + e.stderr.strip().replace("\n", " | ")[-800:])
        if e.rc < 0:
            return "crashed[signal %d]" % -e.rc
        named = ENOMEM_TEXT in e.stderr and "0x100000" in e.stderr
        return "refused-start" if e.rc == 1 and named else "exited[%d]" % e.rc
    bad = alive_label(ctx, v)
    return bad or "started"


def running(ctx, backend):
    kw = dirty_rate_kw(backend)
    v = ctx.vm("src", **kw).start()
    v.qmp.poll_events()
    v.ctl.add_fault(MAP_CALL[backend], iova_range=PAM1_RANGE, errno="ENOMEM")
    v.qt.outl(PCI_CONFIG_ADDRESS, 0x80000000 | (PAM1 & ~3))
    try:
        v.qt.outb(PCI_CONFIG_DATA + (PAM1 & 3), 0x33)
    except (OSError, EOFError) as e:
        ctx.note("qtest: %r" % e)
    time.sleep(0.3)
    if not v.alive():
        try:
            v.proc.wait(timeout=5)
        except Exception:
            pass
    bad = alive_label(ctx, v)
    if bad:
        return bad
    err = v.stderr()
    ctx.note("stderr: " + err.strip().replace("\n", " | ")[-600:])
    # the section that failed: RAM from 0 up to the end of the PAM1 range
    if ENOMEM_TEXT not in err or "0x0, 0xc8000," not in err:
        return "no-error-named"
    try:
        v.qmp.wait_event("STOP", timeout=5)
    except Exception as e:
        ctx.note("no STOP event: %r" % e)
        return "no-stop-event"
    status = v.status()
    try:
        v.qmp.command("cont")
        return "cont-accepted[%s]" % status
    except QMPError as e:
        ctx.note("cont refused: %s" % e.desc)
    return "stopped[%s]" % status


def cases():
    out = []
    for backend in ("iommufd", "legacy"):
        out.append(Case("e2e/dma-map-failure/%s/machine-start" % backend,
                        {"fork": "refused-start", "base": "crashed[signal 6]"},
                        lambda ctx, b=backend: machine_start(ctx, b), __doc__))
        out.append(Case("e2e/dma-map-failure/%s/running" % backend,
                        {"fork": "stopped[internal-error]", "base": "crashed[signal 6]"},
                        lambda ctx, b=backend: running(ctx, b), __doc__))
    return out
