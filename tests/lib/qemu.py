"""Launch qemu-system-x86_64 processes and talk QMP / qtest to them.

Qemu is one QEMU process: -accel qtest (no vCPU runs; the test plays the
guest through the qtest socket) or tcg, a QMP socket, optionally -incoming,
file descriptors passed in, and hostsim (the userspace model of
VFIO/iommufd, LD_PRELOADed) with its config, event log and control socket.
The hostsim suite, the end-to-end cases and the nested runner's L2 all
start their QEMUs through it.

VM is the end-to-end cases' machine on top of it: q35 + optionally a
vIOMMU (intel-iommu,caching-mode=on by default, or virtio-iommu-pci, or
amd-iommu,dma-remap=on) + -device vfio-pci on hostsim, with the backend's
realize arguments (backends.py); every file under $OUT/e2e/<test>/<vm name>/.

Realize errors make QEMU exit at startup: start() then raises RealizeError
carrying QEMU's stderr, which cases assert on.
"""

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time

from lib import backends
from lib import hostsim
from lib import layout
from lib.qmp import QMP
from lib.qtest import QTest

# hostsim settings every VM starts from; cases override per row.
HOSTSIM_DEFAULTS = {
    "kernel": "6.14",
    "migration": "on",
    "precopy": "on",
    "p2p": "on",
    "dma_logging": "off",
    "iommu_dirty": "on",
    "type1.migration_cap": "on",
}

# Guest PCI address of the assigned device: 00:05.0
VFIO_BUS = 0
VFIO_DEVFN = 5 << 3
# Guest PCI address of virtio-iommu-pci (viommu="virtio"): 00:04.0
VIRTIO_IOMMU_DEVFN = 4 << 3

# The vIOMMUs a VM can have (viommu=): True means "intel".
#   intel   -device intel-iommu,caching-mode=on (VT-d, vtd.py)
#   virtio  -device virtio-iommu-pci (virtio_iommu.py)
#   amd     -device amd-iommu,dma-remap=on (AMD-Vi, amd_iommu.py), with
#           its PCI function created first (AMDVI-PCI at 00:03.0) and named
#           by pci-id: without pci-id amd-iommu creates the function itself
#           and registers as a non-migratable device
VIOMMUS = ("intel", "virtio", "amd")
AMDVI_PCI_DEVFN = 3 << 3

# QEMU trace events worth keeping in every VM's qemu.log: they show what
# the vIOMMU sent to VFIO and what VFIO asked of the backend.
DEFAULT_TRACES = [
    "vfio_iommu_map_notify",
    "vfio_container_query_dirty_bitmap",
    "vfio_listener_region_add_iommu",
    "vfio_listener_region_del",
    "iommufd_backend_map_dma",
    "iommufd_backend_unmap_dma",
    "iommufd_backend_get_dirty_bitmap",
    "iommufd_backend_set_dirty",
    "vfio_migration_realize",
    "vfio_migration_set_state",
    "vfio_save_complete_precopy",
    "vtd_as_unmap_whole",
    "migration_completion_file_err",
    "migrate_set_state",
]


# Every QEMU this process started, so that an interrupted run kills them.
_STARTED = []
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Runs in the child before exec: the kernel sends QEMU SIGKILL when
    the test process dies, however it dies (even SIGKILL, or a signal
    arriving while Popen is half done)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_all():
    for v in list(_STARTED):
        v.kill()


atexit.register(kill_all)


class RealizeError(Exception):
    """QEMU exited during startup (e.g. vfio-pci realize failed)."""

    def __init__(self, vm, rc, stderr):
        self.vm, self.rc, self.stderr = vm, rc, stderr
        super().__init__("%s: QEMU exited with %s at startup: %s"
                         % (vm.name, rc, stderr.strip()[-600:]))


class Qemu:
    """One QEMU process.  args: everything after the options every QEMU
    here gets (firmware, accelerator, no default devices or display, the
    QMP and qtest sockets); self.args is the whole command line, which a
    caller may still edit before start().

    accel      "qtest" (with a qtest socket, self.qt, unless qtest=False)
               or "tcg"
    incoming   None, "defer", or a migration URI
    hostsim_cfg  hostsim settings (dict): QEMU runs on the model, with the
               config, event log (self.log_path) and control socket
               (self.ctl) of its own
    pass_fds   file descriptors QEMU inherits (-object iommufd,fd=N)
    stdout/stderr go to <dir>/stdout.txt and stderr.txt, or both to
    stderr.txt with merge_output."""

    def __init__(self, binary, name, directory, args, accel="qtest", incoming=None,
                 hostsim_cfg=None, pass_fds=(), firmware=(layout.FIRMWARE_DIR,),
                 qtest_log=None, merge_output=False, qtest=None, qmp_timeout=30.0):
        self.name = name
        self.binary = binary
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        # UNIX socket paths are limited to 108 bytes; keep sockets short.
        self.sockdir = tempfile.mkdtemp(prefix="qemu-%s-" % name)
        self.qmp_path = os.path.join(self.sockdir, "qmp")
        if qtest is None:
            qtest = accel == "qtest"
        self.qtest_path = os.path.join(self.sockdir, "qtest") if qtest else None
        self.qmp_timeout = qmp_timeout
        self.ctl_path = os.path.join(self.sockdir, "hostsim")
        self.log_path = os.path.join(self.dir, "hostsim.jsonl")
        self.cfg_path = os.path.join(self.dir, "hostsim.conf")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.stdout_path = self.stderr_path if merge_output else \
            os.path.join(self.dir, "stdout.txt")
        self.pass_fds = tuple(pass_fds)
        self.hostsim_cfg = None
        if hostsim_cfg is not None:
            cfg = dict(hostsim_cfg)
            cfg["log"] = self.log_path
            cfg["control"] = self.ctl_path
            self.hostsim_cfg = cfg
            for path in (self.log_path,):
                if os.path.exists(path):
                    os.unlink(path)
            hostsim.write_config(self.cfg_path, **cfg)
        argv = [binary]
        for d in firmware:
            argv += ["-L", d]
        argv += ["-accel", accel, "-nodefaults", "-display", "none",
                 "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if self.qtest_path:
            argv += ["-qtest", "unix:%s,server=on,wait=off" % self.qtest_path,
                     "-qtest-log", qtest_log or "/dev/null"]
        argv += list(args)
        if incoming:
            argv += ["-incoming", incoming]
        self.args = argv
        self.proc = None
        self.qmp = None
        self.qt = None
        self.ctl = None

    # ---- lifecycle -----------------------------------------------------------
    def env(self):
        env = dict(os.environ)
        if self.hostsim_cfg is not None:
            env = hostsim.qemu_env(layout.HOSTSIM_LIB, self.cfg_path, env)
        return env

    def cmdline(self):
        if self.hostsim_cfg is None:
            return " ".join(self.args)
        env = "LD_PRELOAD=%s HOSTSIM_CONFIG=%s" % (layout.HOSTSIM_LIB, self.cfg_path)
        return env + " " + " ".join(self.args)

    def start(self, timeout=30.0):
        """Start QEMU and connect QMP (and qtest); RealizeError if QEMU
        exits first."""
        with open(os.path.join(self.dir, "cmdline.txt"), "w") as f:
            f.write(self.cmdline() + "\n")
        with open(self.stdout_path, "w") as out:
            err = out if self.stdout_path == self.stderr_path else open(self.stderr_path, "w")
            try:
                self.proc = subprocess.Popen(self.args, env=self.env(), stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent, pass_fds=self.pass_fds,
                                             stdout=out, stderr=err)
            finally:
                if err is not out:
                    err.close()
        _STARTED.append(self)
        end = time.monotonic() + timeout
        while not os.path.exists(self.qmp_path):
            rc = self.proc.poll()
            if rc is not None:
                raise RealizeError(self, rc, self.stderr())
            if time.monotonic() > end:
                self.kill()
                raise RuntimeError("%s: QMP socket never appeared" % self.name)
            time.sleep(0.02)
        while True:
            try:
                self.qmp = QMP(self.qmp_path, timeout=self.qmp_timeout).connect(deadline=0.5)
                break
            except Exception:
                # QEMU creates the QMP socket before realizing devices; a
                # realize error then closes it while we connect.
                rc = self.proc.poll()
                if rc is not None:
                    raise RealizeError(self, rc, self.stderr())
                if time.monotonic() > end:
                    self.kill()
                    raise
        if self.qtest_path:
            self.qt = QTest(self.qtest_path).connect()
        if self.hostsim_cfg is not None:
            self.ctl = hostsim.Control(self.ctl_path)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """Quit through QMP; kill this VM's own process if it hangs."""
        if self.proc is None:
            return
        if self.alive() and self.qmp is not None:
            try:
                self.qmp.command("quit")
            except Exception:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        for c in (self.qmp, self.qt, self.ctl):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    # ---- observations ----------------------------------------------------
    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def exit_summary(self):
        rc = None if self.proc is None else self.proc.poll()
        if rc is None:
            return "running"
        if rc < 0:
            return "killed by %s" % signal.Signals(-rc).name
        return "exit %d" % rc

    def events(self):
        """hostsim event log (list of dicts), in call order."""
        if not os.path.exists(self.log_path):
            return []
        return hostsim.read_log(self.log_path)

    def event_seq(self):
        """seq of the last hostsim event so far (to slice later events)."""
        ev = self.events()
        return ev[-1]["seq"] if ev else -1

    def blocked_reasons(self):
        info = self.qmp.command("query-migrate")
        return info.get("blocked-reasons", [])

    def status(self):
        return self.qmp.command("query-status")["status"]


class VM(Qemu):
    """The end-to-end cases' machine: q35 under qtest, a vIOMMU (viommu=
    True/"intel", "virtio", "amd", or None) and vfio-pci on hostsim with
    the given backend (backends.py).  Files under <workdir>/<name>/."""

    def __init__(self, name, binary, workdir, backend="iommufd", ram="256M",
                 viommu=True, enable_migration=None, device_dirty_tracking=None,
                 hostsim_cfg=None, incoming=False, extra_args=(),
                 iommu_props="", traces=DEFAULT_TRACES, device_name="0000:00:05.0",
                 vfio=True):
        directory = os.path.join(workdir, name)
        os.makedirs(directory, exist_ok=True)
        self.trace_path = os.path.join(directory, "qemu.log")
        self.qtest_log_path = os.path.join(directory, "qtest.log")
        self.backend = backend
        self.ram = ram
        self.viommu = viommu
        self.viommu_kind = "intel" if viommu is True else (viommu or None)
        if self.viommu_kind not in (None,) + VIOMMUS:
            raise ValueError("unknown vIOMMU %r" % (viommu,))
        self.incoming = incoming
        self.vfio = vfio

        cfg = None
        if vfio:
            cfg = dict(HOSTSIM_DEFAULTS)
            cfg.update(hostsim_cfg or {})
            cfg["device.name"] = device_name
        self.sysfsdev = None
        if vfio:
            self.sysfsdev = hostsim.make_sysfs_device(
                os.path.join(directory, "sysfs"), name=device_name,
                group=int(cfg.get("device.group", 42)),
                cdev=int(cfg.get("device.cdev", 0)))

        be = backends.get(backend)
        dev = ["vfio-pci", "id=hostdev0", "sysfsdev=%s" % self.sysfsdev,
               "addr=%02x.%x" % (VFIO_DEVFN >> 3, VFIO_DEVFN & 7)]
        dev += be.device_props
        if enable_migration is not None:
            dev.append("enable-migration=%s" % enable_migration)
        if device_dirty_tracking is not None:
            dev.append("x-device-dirty-page-tracking=%s" % device_dirty_tracking)

        args = ["-machine", "q35", "-m", ram, "-vga", "none",
                # no vCPU runs: the TCG vAPIC ROM (not in the seabios
                # package) is not needed
                "-global", "apic-common.vapic=off",
                "-D", self.trace_path]
        for t in traces or ():
            args += ["-trace", "enable=%s" % t]
        if self.viommu_kind:
            # Before vfio-pci: the device's DMA address space is set up at
            # its realize.
            iommu_dev, props = {
                "intel": ("intel-iommu", "caching-mode=on,intremap=off"),
                "virtio": ("virtio-iommu-pci", "addr=%02x.%x" % (VIRTIO_IOMMU_DEVFN >> 3,
                                                                 VIRTIO_IOMMU_DEVFN & 7)),
                "amd": ("amd-iommu", "dma-remap=on,intremap=off"),
            }[self.viommu_kind]
            if iommu_props:
                props += "," + iommu_props
            if self.viommu_kind == "amd":
                args += ["-device", "AMDVI-PCI,id=amdvi-pci,addr=%02x.%x"
                         % (AMDVI_PCI_DEVFN >> 3, AMDVI_PCI_DEVFN & 7)]
                props += ",pci-id=amdvi-pci"
            args += ["-device", iommu_dev + "," + props]
        args += be.objects
        if vfio:
            args += ["-device", ",".join(dev)]
        if incoming:
            args += ["-incoming", "defer"]
        args += list(extra_args)
        super().__init__(binary, name, directory, args, hostsim_cfg=cfg,
                         qtest_log=self.qtest_log_path)

    # ---- observations ----------------------------------------------------
    def trace_lines(self, *needles):
        try:
            with open(self.trace_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        if not needles:
            return lines
        return [l for l in lines if any(n in l for n in needles)]

    def trace_after(self, needle, count=4, skip=("migrate_set_state",)):
        """From the first trace line containing needle, `count` lines of
        what QEMU did next (lines starting with a skip prefix left out)."""
        lines = self.trace_lines()
        for i, l in enumerate(lines):
            if needle in l:
                return [x for x in lines[i:] if not x.startswith(skip)][:count]
        return []
