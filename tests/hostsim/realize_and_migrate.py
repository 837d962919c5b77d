#!/usr/bin/env python3
"""End-to-end check of hostsim against real QEMU binaries (TAP output).

For each binary (QEMU_BASE, and QEMU_FORK when it exists):
- q35 + intel-iommu + vfio-pci (legacy group path and iommufd cdev path)
  realizes under -accel qtest and under TCG, answers QMP, and the event log
  shows the realize sequence with no unhandled request;
- the model device's DMA lands in guest RAM (read back with qtest), and an
  unmapped IOVA is an IOMMU fault;
- with kernel = 6.12 on the iommufd path the unpatched base crashes at
  realize (the known prerequisite bug) while a patched build realizes;
- a VM without vIOMMU migrates (iommufd: IOMMU dirty tracking; legacy:
  enable-migration=on) and the destination device reports the source's DMA
  counters; both logs show the state transitions and the data transfer.

Environment: QEMU_BASE, QEMU_FORK, HOSTSIM_LIB (defaults below), OUT.
"""

import os
import shutil
import signal
import sys
import tempfile
import time

# tests/: the harness (lib) and this suite (hostsim) are packages there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lib import backends  # noqa: E402
from lib import hostsim  # noqa: E402
from lib import layout  # noqa: E402
from lib import migration  # noqa: E402
from lib import tap as tap_writer  # noqa: E402
from lib import qemu  # noqa: E402
from lib import viommu  # noqa: E402

QEMU_BASE = layout.QEMU_BASE
QEMU_FORK = layout.QEMU_FORK
LIB = layout.HOSTSIM_LIB
DEV_NAME = "0000:00:05.0"
DEV_NAME2 = "0000:00:06.0"
PATTERN = 0x1122334455667788
PATTERN2 = 0x0badc0ffee0ddf00
# Guest RAM the VT-d driver keeps its root, context and page tables in
# (16 MiB up: no DMA target of these checks is there).
VTD_POOL, VTD_POOL_SIZE = 0x1000000, 0x100000
DID = 1




def Qemu(binary, workdir, name, config, args, qtest=False, incoming=None, pass_fds=()):
    """A q35 QEMU on its own hostsim instance, under qtest or TCG; files in
    <workdir>/<name>/.  start() launches it and connects."""
    return qemu.Qemu(binary, name, os.path.join(workdir, name),
                     ["-machine", "q35", "-m", "256"] + list(args),
                     accel="qtest" if qtest else "tcg", incoming=incoming,
                     hostsim_cfg=config, pass_fds=pass_fds, merge_output=True)


TAP = tap_writer.Writer()


def tap(ok, name, diag=None):
    TAP.result(ok, name, diag=diag)


def skip(name, why):
    TAP.result(True, name, skip=why)


def has_subsequence(calls, seq):
    it = iter(calls)
    return all(any(c == s for c in it) for s in seq)


def device_args(sysfs, backend, viommu, extra=""):
    be = backends.get(backend)
    args = list(be.objects)
    dev = ",".join(["vfio-pci,sysfsdev=%s,id=hostdev0%s" % (sysfs, extra)] + be.device_props)
    if viommu:
        args += ["-device", "intel-iommu,caching-mode=on"]
    return args + ["-device", dev]


def realize_checks(q, backend, label, seq=None):
    pci, _ = q.qmp.try_command("query-pci")
    found = any(d["id"]["vendor"] == 0x1b36 and d["id"]["device"] == 0x0010
                for b in pci or [] for d in b["devices"])
    tap(found, "%s: vfio-pci realized and visible in query-pci" % label,
        q.stderr())
    ev = q.events()
    calls = [e["call"] for e in ev]
    if seq is None:
        seq = backends.get(backend).realize_calls
    tap(has_subsequence(calls, seq),
        "%s: event log shows the %s realize sequence" % (label, backend),
        " ".join(calls[:80]))
    bad = hostsim.unhandled(ev)
    tap(not bad, "%s: no unhandled request" % label, bad)
    st, err = q.qmp.try_command("query-status")
    tap(err is None, "%s: QMP answers (status %s)" %
        (label, (st or {}).get("status")), err)


def dma_checks(q, label):
    r = q.ctl.dma(0x200000, 0x2000, PATTERN)
    tap(r.get("ok") and r.get("pages") == 2,
        "%s: device DMA through the IOMMU succeeds" % label, r)
    mem = q.qt.read(0x200000, 16)
    want = PATTERN.to_bytes(8, "little") * 2
    tap(mem == want, "%s: DMA data is in guest RAM" % label, mem.hex())
    r = q.ctl.dma(0x40000000, 0x1000, PATTERN)
    tap(not r.get("ok") and r.get("error") == "fault",
        "%s: DMA to an unmapped IOVA is an IOMMU fault" % label, r)
    st = q.ctl.state()
    tap(st.get("dma_writes") == 1 and st.get("dma_bytes") == 0x2000,
        "%s: DMA counters count the write" % label, st)
    ev = q.events()
    tap(any(e["call"] == "dma" and e.get("errname") == "EFAULT" for e in ev),
        "%s: the fault is in the event log" % label)
    before = q.ctl.state().get("resets", 0)
    q.qmp.try_command("system_reset")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            q.ctl.state().get("resets", 0) == before:
        time.sleep(0.05)
    tap(q.ctl.state().get("resets", 0) > before and
        not hostsim.unhandled(q.events()),
        "%s: system_reset resets the device (VFIO_DEVICE_RESET)" % label)


def bar_dma_check(q, label, devfn=0x28, bar=0xfe000000):
    """The guest programs BAR0 (config cycles through 0xcf8/0xcfc) and
    drives the device's DMA engine through it: QEMU forwards the MMIO to
    the device fd (pwrite), the device writes guest RAM."""
    def cfg_write(off, val):
        q.qt.cmd("outl 0xcf8 %#x" % (0x80000000 | (devfn << 8) | off))
        q.qt.cmd("outl 0xcfc %#x" % val)
    cfg_write(0x10, bar)
    cfg_write(0x04, 0x6)            # memory decoding + bus master
    q.qt.writeq(bar + 0x00, 0x280000)     # IOVA
    q.qt.writeq(bar + 0x08, 0x1000)       # LEN
    q.qt.writeq(bar + 0x10, PATTERN2)
    q.qt.writeq(bar + 0x18, 1)            # GO
    status = q.qt.readq(bar + 0x20)
    magic = q.qt.readq(bar + 0x38)
    mem = q.qt.read(0x280ff8, 8)
    tap(status == 0 and magic == 0x004d495354534f48 and
        mem == PATTERN2.to_bytes(8, "little"),
        "%s: DMA driven through the BAR lands in guest RAM" % label,
        "%#x %#x %s" % (status, magic, mem.hex()))


def with_qemu(label, start, checks, what="QEMU started and answered"):
    """checks(q) on the QEMU that start() creates, once connected.  An
    exception (a crash, a hang) is a failure of the group, "label: what";
    the QEMU is stopped in any case."""
    q = None
    try:
        q = start()
        q.start()
        checks(q)
    except Exception as e:
        tap(False, "%s: %s" % (label, what),
            "%r\n%s" % (e, q.stderr() if q else ""))
    finally:
        if q:
            q.stop()


def run_realize(binary, tag, backend, qtest, workdir, sysfs, kernel="6.14"):
    label = "%s %s %s" % (tag, backend, "qtest" if qtest else "tcg")

    def checks(q):
        realize_checks(q, backend, label)
        if qtest:
            dma_checks(q, label)
            bar_dma_check(q, label)

    with_qemu(label, lambda: Qemu(binary, workdir, "r-%s-%s-%s" % (tag, backend, qtest),
        {"kernel": kernel, "device.name": DEV_NAME},
        device_args(sysfs, backend, viommu=True, extra=",addr=5"),
        qtest=qtest), checks)


def run_612(binary, tag, workdir, sysfs, expect_crash):
    label = "%s iommufd kernel 6.12" % tag
    q = Qemu(binary, workdir, "k612-%s" % tag,
             {"kernel": "6.12", "device.name": DEV_NAME},
             device_args(sysfs, "iommufd", viommu=True), qtest=True)
    try:
        q.start()
        crashed = False
        _, err = q.qmp.try_command("query-pci")
        ok = err is None
    except Exception:
        crashed = True
        ok = False
    rc = q.proc.wait(timeout=10) if crashed else None
    if expect_crash:
        tap(crashed and rc == -signal.SIGSEGV,
            "%s: unpatched QEMU crashes at realize (known bug)" % label,
            "rc=%r" % rc)
    else:
        tap(ok, "%s: realizes" % label, q.stderr())
    ev = hostsim.read_log(q.log_path)
    tap(any(e["call"] == "IOMMU_IOAS_CHANGE_PROCESS" and
            e.get("errname") == "ENOTTY" for e in ev),
        "%s: IOMMU_IOAS_CHANGE_PROCESS answered ENOTTY" % label)
    q.stop()


def run_fd_passing(binary, tag, workdir):
    """-object iommufd,fd=N -device vfio-pci,fd=M with memfd-backed RAM:
    no sysfs at all, IOMMU_IOAS_MAP_FILE for guest RAM (kernel 6.14)."""
    label = "%s fd passing + memfd RAM" % tag
    ifd = os.open("/dev/null", os.O_RDWR)
    dfd = os.open("/dev/null", os.O_RDWR)
    args = ["-object", "memory-backend-memfd,id=mem,size=256M",
            "-machine", "memory-backend=mem",
            "-object", "iommufd,id=ifd0,fd=%d" % ifd,
            "-device", "intel-iommu,caching-mode=on",
            "-device", "vfio-pci,fd=%d,iommufd=ifd0,id=hostdev0" % dfd]

    def checks(q):
        seq = [c for c in backends.IOMMUFD.realize_calls if c != "open"]
        seq[seq.index("IOMMU_IOAS_MAP")] = "IOMMU_IOAS_MAP_FILE"
        realize_checks(q, "iommufd", label, seq)
        ev = q.events()
        tap(any(e["call"] == "IOMMU_IOAS_MAP_FILE" and e["ret"] == 0
                for e in ev),
            "%s: guest RAM mapped with IOMMU_IOAS_MAP_FILE" % label)
        tap(not any(e["call"] == "open" for e in ev),
            "%s: no device node opened" % label)
        dma_checks(q, label)

    try:
        with_qemu(label, lambda: Qemu(binary, workdir, "fd-%s" % tag,
            {"kernel": "6.14", "device.name": DEV_NAME,
             "fd.iommufd": ifd, "fd.device": dfd}, args, qtest=True,
            pass_fds=(ifd, dfd)), checks)
    finally:
        os.close(ifd)
        os.close(dfd)


def run_two_devices(binary, tag, workdir, sysfs, sysfs2, shared_as):
    """Two model devices.  shared_as=False: one legacy device on the root
    bus, one iommufd device behind a PCIe-to-PCI bridge.  shared_as=True:
    both behind one bridge, so they share one vIOMMU address space, each
    with its own iommufd object -- two containers, two IOMMU notifiers on
    one address space.  (QEMU 10.2.2 aborts when a legacy and an iommufd
    device share an address space: iommufd_cdev_attach() casts every
    container with VFIO_IOMMU_IOMMUFD() before checking its class.)"""
    label = "%s two devices (%s)" % (
        tag, "iommufd x2, one address space" if shared_as else
        "legacy + iommufd")
    args = ["-object", "iommufd,id=ifd0", "-object", "iommufd,id=ifd1",
            "-device", "intel-iommu,caching-mode=on",
            "-device", "pcie-pci-bridge,id=br0"]
    if shared_as:
        args += ["-device", "vfio-pci,sysfsdev=%s,bus=br0,addr=1,id=hd0,"
                            "iommufd=ifd0" % sysfs]
    else:
        args += ["-device", "vfio-pci,sysfsdev=%s,id=hd0" % sysfs]
    args += ["-device", "vfio-pci,sysfsdev=%s,bus=br0,addr=2,id=hd1,"
                        "iommufd=ifd1" % sysfs2]

    def checks(q):
        # query-pci does not show devices behind a bridge the firmware has
        # not numbered yet: ask QOM instead
        real = [q.qmp.try_command("qom-get", path="/machine/peripheral/" + d,
                                  property="realized")[0]
                for d in ("hd0", "hd1")]
        tap(real == [True, True], "%s: both realized" % label, real)
        ev = q.events()
        tap(not hostsim.unhandled(ev), "%s: no unhandled request" % label)
        r0 = q.ctl.dma(0x200000, 0x1000, PATTERN)
        r1 = q.ctl.request("dma 0x201000 0x1000 %#x dev=1" % PATTERN2)
        tap(r0.get("ok") and r1.get("ok"), "%s: both devices DMA" % label,
            "%r %r" % (r0, r1))
        mem = q.qt.read(0x200ff8, 16)
        tap(mem == PATTERN.to_bytes(8, "little") +
            PATTERN2.to_bytes(8, "little"),
            "%s: both writes are in guest RAM" % label, mem.hex())
        want = "iommufd" if shared_as else "type1"
        tap(q.ctl.request("state dev=1").get("backend") == "iommufd" and
            q.ctl.state().get("backend") == want,
            "%s: each device uses its own backend" % label)
        ioas = {e.get("ioas_id") for e in ev if e["call"] == "IOMMU_IOAS_ALLOC"}
        if shared_as:
            tap(sum(1 for e in ev if e["call"] == "open" and
                    e.get("path") == "/dev/iommu") == 2,
                "%s: two iommufd contexts" % label, ioas)

    with_qemu(label, lambda: Qemu(binary, workdir, "two-%s-%s" % (tag, shared_as),
        {"kernel": "6.14", "device.name": DEV_NAME,
         "device1.name": DEV_NAME2, "device1.group": 43,
         "device1.cdev": 1}, args, qtest=True), checks)


def run_viommu(binary, tag, backend, workdir, sysfs):
    """The guest (qtest) turns on VT-d translation: QEMU must map exactly
    the guest's IOVA -> GPA entries, and the device's DMA must follow."""
    label = "%s vIOMMU translation %s" % (tag, backend)

    def checks(q):
        vtd = viommu.driver(q.qt, "legacy", queued=False, pool_base=VTD_POOL,
                            pool_size=VTD_POOL_SIZE)
        vtd.init()
        vtd.attach(0, 5 << 3, DID)          # 00:05.0 (addr=5)
        vtd.map(DID, 0x10000, 0x200000, 0x2000)
        vtd.enable_translation()
        st = q.ctl.state()
        maps = [(m["iova"], m["length"]) for m in st.get("mappings", [])]
        tap(maps == [(0x10000, 0x2000)] or maps == [(0x10000, 0x1000),
                                                   (0x11000, 0x1000)],
            "%s: only the guest's IOVA mappings are in the host IOMMU" %
            label, maps)
        r = q.ctl.dma(0x10000, 0x2000, PATTERN)
        mem = q.qt.read(0x201ff8, 8)
        tap(r.get("ok") and mem == PATTERN.to_bytes(8, "little"),
            "%s: DMA to IOVA 0x10000 lands at GPA 0x200000" % label,
            "%r %s" % (r, mem.hex()))
        r = q.ctl.dma(0x200000, 0x1000, PATTERN)
        tap(r.get("error") == "fault",
            "%s: GPA-as-IOVA is not mapped any more" % label, r)
        vtd.unmap(DID, 0x10000, 0x2000)     # zero the PTEs, then invalidate
        r = q.ctl.dma(0x10000, 0x1000, PATTERN)
        ev = q.events()
        unmap = backends.get(backend).unmap_call
        tap(r.get("error") == "fault" and
            any(e["call"] == unmap and e.get("iova") == 0x10000 for e in ev),
            "%s: guest unmap + invalidation unmaps in the host" % label, r)
        tap(not hostsim.unhandled(ev), "%s: no unhandled request" % label)

    with_qemu(label, lambda: Qemu(binary, workdir, "viommu-%s-%s" % (tag, backend),
        {"kernel": "6.14", "device.name": DEV_NAME},
        device_args(sysfs, backend, viommu=True, extra=",addr=5"),
        qtest=True), checks, what="run")


def run_migration(binary, tag, backend, qtest, workdir, sysfs, dirty=True,
                  dmalog=False):
    """dirty=False: iommufd without IOMMU dirty tracking, forced with
    enable-migration=on.  On the base it is the negative control: the page
    the device writes during migration is lost (10.2.2 never queries a
    container whose dirty tracking had nothing to start).  The fork
    ("vfio/container: Report memory dirty when nothing tracks the
    devices' DMA") reports all its memory dirty at every sync instead, so
    the page reaches the destination; the downtime limit is raised after
    the device wrote, so that such a migration converges."""
    label = "%s migrate %s%s%s %s" % (tag, backend, "" if dirty else
                                      " (no dirty tracking)",
                                      " (device DMA logging)" if dmalog else "",
                                      "qtest" if qtest else "tcg")
    extra = ",enable-migration=on" if (backends.get(backend).needs_enable_migration
                                       and not dmalog) or not dirty else ""
    args = device_args(sysfs, backend, viommu=False, extra=extra)
    cfg = {"kernel": "6.14", "device.name": DEV_NAME, "iommu_dirty": dirty,
           "dma_logging": dmalog}
    src = dst = None
    try:
        name = "%s-%s-%s-%s-%s" % (tag, backend, "qtest" if qtest else "tcg",
                                   dirty, dmalog)
        src = Qemu(binary, workdir, "src-" + name, cfg, args,
                   qtest=qtest)
        dst = Qemu(binary, workdir, "dst-" + name, cfg, args,
                   qtest=qtest, incoming="defer")
        src.start()
        dst.start()
        if qtest:
            # non-zero RAM so the first pass takes a while at 64 MiB/s
            src.qt.memset(0x100000, 0x8000000, 0x5a)
        r = src.ctl.dma(0x300000, 0x3000, PATTERN)
        tap(r.get("ok"), "%s: source device DMA" % label, r)
        blocked = src.qmp.try_command("query-migrate")[0] or {}
        tap(not blocked.get("blocked-reasons"),
            "%s: no migration blocker" % label, blocked)
        window = {}

        def sent():
            # The page at 0x380000 is sent early in the first pass; the
            # device writes it afterwards, so only the IOMMU dirty bitmap
            # (or type1's "everything is dirty") brings the new data over.
            window["ram"] = src.qmp.command("query-migrate").get("ram", {})
            return window["ram"].get("transferred", 0) > 12 << 20

        def during(result):
            window["dma"] = src.ctl.dma(0x380000, 0x1000, PATTERN2)
            if not dirty:
                # Only now: earlier, the limit would let the migration
                # switch over before the device wrote.
                src.qmp.command("migrate-set-parameters", **{"downtime-limit": 100000})

        res = migration.migrate(src, dst, pause=False,
                                active_hook=during if qtest else None, sent=sent,
                                bandwidth=64 << 20 if qtest else None)
        if qtest:
            r2 = window.get("dma") or {"not run": res.ordering_lost}
            tap(r2.get("ok"), "%s: source device DMA during migration "
                "(%d bytes sent)" % (label, window.get("ram", {}).get("transferred", 0)), r2)
        tap(res.status == "completed", "%s: migration completes" %
            label, "%s\n%s\n%s" % (res.summary(), src.stderr(), dst.stderr()))
        # the destination resumes the VM after loading
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = dst.qmp.try_command("query-status")[0] or {}
            if st.get("status") == "running":
                break
            time.sleep(0.1)
        sst, dstt = src.ctl.state(), dst.ctl.state()
        writes = 2 if qtest else 1
        tap(dstt.get("dma_writes") == sst.get("dma_writes") == writes and
            dstt.get("dma_bytes") == 0x3000 + (writes - 1) * 0x1000 and
            dstt.get("loaded_from_migration") == 1,
            "%s: destination device carries the source's DMA state" % label,
            "src=%r dst=%r" % (sst, dstt))
        tap(dstt.get("device_state") == "RUNNING",
            "%s: destination device RUNNING" % label, dstt)
        sev, dev = src.events(), dst.events()
        s_states = [e.get("state") for e in sev
                    if e.get("feature") == "MIG_DEVICE_STATE"]
        d_states = [e.get("state") for e in dev
                    if e.get("feature") == "MIG_DEVICE_STATE"]
        s_read = sum(e["ret"] for e in sev if e["call"] == "read" and
                     e["ret"] > 0)
        d_write = sum(e["ret"] for e in dev if e["call"] == "write" and
                      e["ret"] > 0)
        tap("STOP_COPY" in s_states and s_read > 0,
            "%s: source log shows STOP_COPY and data read (%d bytes)" %
            (label, s_read), s_states)
        tap("RESUMING" in d_states and d_write == s_read,
            "%s: destination log shows RESUMING and the same bytes written"
            % label, "%r written=%d" % (d_states, d_write))
        tap(not hostsim.unhandled(sev) and not hostsim.unhandled(dev),
            "%s: no unhandled request on either side" % label)
        if qtest:
            mem = dst.qt.read(0x300000, 8)
            tap(mem == PATTERN.to_bytes(8, "little"),
                "%s: DMA'd guest RAM reached the destination" % label,
                mem.hex())
            mem = dst.qt.read(0x380ff8, 8)
            if dirty:
                tap(mem == PATTERN2.to_bytes(8, "little"),
                    "%s: page written during migration reached the "
                    "destination (dirty tracking)" % label, mem.hex())
            elif tag == "base":
                tap(mem != PATTERN2.to_bytes(8, "little"),
                    "%s: without dirty tracking that page is lost" % label,
                    mem.hex())
            else:
                tap(mem == PATTERN2.to_bytes(8, "little"),
                    "%s: without dirty tracking that page reached the "
                    "destination (all memory reported dirty)" % label,
                    mem.hex())
        sev = src.events()
        if dmalog and qtest:
            tap(any(e.get("feature") == "DMA_LOGGING_REPORT" and
                    e.get("dirty_pages", 0) > 0 for e in sev) and
                not any(e["call"] == "VFIO_IOMMU_DIRTY_PAGES" for e in sev),
                "%s: the device's DMA log, not the IOMMU, reported the page"
                % label)
        elif backend == "iommufd" and qtest and dirty:
            tap(any(e["call"] == "IOMMU_HWPT_GET_DIRTY_BITMAP" and
                    e.get("dirty_pages", 0) > 0 for e in sev),
                "%s: HWPT dirty bitmap reported the device's page" % label)
    except Exception as e:
        tap(False, "%s: migration run" % label, "%r\n%s\n%s" % (
            e, src.stderr() if src else "", dst.stderr() if dst else ""))
    finally:
        for q in (src, dst):
            if q:
                q.stop()


def main():
    binaries = []
    for tag, path in (("base", QEMU_BASE), ("fork", QEMU_FORK)):
        if os.path.isfile(path) and os.access(path, os.X_OK) and \
                os.path.getsize(path) > 0:
            binaries.append((tag, path))
        else:
            print("# no usable %s binary at %s" % (tag, path))
    if not os.path.exists(LIB) or not binaries:
        print("1..0 # SKIP no libhostsim.so or no QEMU binary")
        return 0
    workdir = tempfile.mkdtemp(prefix="hostsim-e2e-")
    sysfs = hostsim.make_sysfs_device(os.path.join(workdir, "sys"),
                                      name=DEV_NAME, group=42, cdev=0)
    sysfs2 = hostsim.make_sysfs_device(os.path.join(workdir, "sys"),
                                       name=DEV_NAME2, group=43, cdev=1)
    try:
        for tag, binary in binaries:
            for backend in ("legacy", "iommufd"):
                for qtest in (True, False):
                    run_realize(binary, tag, backend, qtest, workdir, sysfs)
            run_612(binary, tag, workdir, sysfs, expect_crash=(tag == "base"))
            run_fd_passing(binary, tag, workdir)
            for backend in ("legacy", "iommufd"):
                run_viommu(binary, tag, backend, workdir, sysfs)
            for shared_as in (False, True):
                run_two_devices(binary, tag, workdir, sysfs, sysfs2,
                                shared_as)
            for backend in ("iommufd", "legacy"):
                run_migration(binary, tag, backend, True, workdir, sysfs)
            run_migration(binary, tag, "iommufd", True, workdir, sysfs,
                          dirty=False)
            run_migration(binary, tag, "legacy", True, workdir, sysfs,
                          dmalog=True)
            run_migration(binary, tag, "iommufd", False, workdir, sysfs)
    finally:
        if os.environ.get("HOSTSIM_KEEP"):
            print("# kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    TAP.plan()
    TAP.diag("%d passed, %d failed" % (TAP.n - TAP.failed, TAP.failed))
    return 1 if TAP.failed else 0


if __name__ == "__main__":
    sys.exit(main())
