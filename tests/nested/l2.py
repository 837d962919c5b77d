"""L2 side of the nested harness: runs inside L1 (Debian's kernel).

Creates mtty mdevs through sysfs and runs our QEMU builds (L2) on them, as
the harness's QEMU processes (tests/lib/qemu.py).  Every L2 QEMU runs under -accel qtest: no guest code
runs, which is all the VFIO migration paths need and keeps TCG-in-TCG cost
out of the picture.
"""

import os
import subprocess
import time
import uuid
import glob

MDEV_TYPE = "mtty-2"
FIRMWARE_DIRS = ["/usr/share/seabios", "/usr/share/qemu"]


# ---------------------------------------------------------------- mdevs --
def mdev_create():
    """Create a fresh mtty mdev (an mdev migrates only once) -> its UUID."""
    paths = glob.glob("/sys/class/mdev_bus/*/mdev_supported_types/%s/create" % MDEV_TYPE)
    if not paths:
        raise RuntimeError("no mdev type %s (is mtty.ko loaded?)" % MDEV_TYPE)
    u = str(uuid.uuid4())
    with open(paths[0], "w") as f:
        f.write(u)
    return u


def mdev_remove(u):
    try:
        with open("/sys/bus/mdev/devices/%s/remove" % u, "w") as f:
            f.write("1")
    except OSError:
        pass


# ------------------------------------------------------------------ QMP --
# The harness's QEMU process and migration driver (tests/lib): L1 sees the
# repository at the same path through the read-only share.
from lib import migration  # noqa: E402
from lib import qemu  # noqa: E402
from lib.qmp import QMPError  # noqa: E402,F401  (re-exported to scenarios.py)


# ------------------------------------------------------------------- L2 --
class L2(qemu.Qemu):
    """One L2 QEMU process under -accel qtest with a QMP socket (and
    optionally a qtest socket); its output in <workdir>/<name>/stderr.txt."""

    def __init__(self, binary, name, workdir, args, qtest=False):
        super().__init__(binary, name, os.path.join(workdir, name), args,
                         accel="qtest", qtest=qtest, firmware=FIRMWARE_DIRS,
                         merge_output=True, qmp_timeout=60.0)
        self.workdir = workdir
        self.log_path = self.stderr_path

    def start(self, timeout=60):
        """Start; True once QMP answers, False if QEMU exited first (e.g. a
        realize error) or never answered within timeout."""
        try:
            super().start(timeout)
            return True
        except Exception:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
            return False

    def returncode(self):
        return None if self.proc is None else self.proc.poll()


def migrate(src, dst, pause_before_switchover=False, at_pause=None, timeout=120):
    """Migrate src -> dst (lib/migration.py).  Returns (final query-migrate
    of src, error text).

    With pause_before_switchover the source stops in "pre-switchover" (the
    guest is paused, dirty tracking still on); at_pause() runs there, playing
    the guest's last IOMMU changes, then the migration continues.
    """
    r = migration.migrate(src, dst, pause=pause_before_switchover,
                          on_pause=(lambda r: at_pause()) if at_pause else None,
                          timeout=timeout)
    if r.refused:
        return {"status": "refused"}, r.refused
    return r.info, r.error_desc or ""


def wait_dst_running(dst, timeout=30):
    end = time.monotonic() + timeout
    st = None
    while time.monotonic() < end:
        st = dst.qmp.command("query-status").get("status")
        if st == "running":
            return st
        if st not in ("inmigrate",):
            return st
        time.sleep(0.05)
    return st


# --------------------------------------------------------- kernel probe --
VFIO_IOMMU_UNMAP_DMA = 0x3B72            # _IO(';', 100 + 14), linux/vfio.h
VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1


class Type1UnmapProbe:
    """What the kernel was asked, read from the kernel: a kprobe and a
    kretprobe on type1's vfio_iommu_type1_ioctl(iommu, cmd, arg) record, for
    every VFIO_IOMMU_UNMAP_DMA, the flags, iova and size of the caller's
    struct vfio_iommu_type1_dma_unmap (argsz@0 flags@4 iova@8 size@16, read
    from user memory) and the ioctl's return value."""

    T = "/sys/kernel/tracing"
    ENTRY = "nested/type1_ioctl"
    RET = "nested/type1_ioctl_ret"

    def __init__(self):
        if not os.path.exists(self.T + "/kprobe_events"):
            subprocess.run(["mount", "-t", "tracefs", "nodev", self.T], check=False)
        self._write("kprobe_events",
                    "p:%s vfio_iommu_type1:vfio_iommu_type1_ioctl cmd=%%si:x32 "
                    "flags=+u4(%%dx):x32 iova=+u8(%%dx):x64 size=+u16(%%dx):x64\n"
                    % self.ENTRY, "a")
        self._write("kprobe_events",
                    "r:%s vfio_iommu_type1:vfio_iommu_type1_ioctl ret=$retval:s64\n"
                    % self.RET, "a")
        for ev in (self.ENTRY, self.RET):
            self._write("events/%s/enable" % ev, "1")
        self.clear()

    def _write(self, path, text, mode="w"):
        # os.open, not open(): Python seeks to the end of an "a" file, which
        # tracefs files refuse with EINVAL.
        flags = os.O_WRONLY | (os.O_APPEND if mode == "a" else os.O_TRUNC)
        try:
            fd = os.open(os.path.join(self.T, path), flags)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as e:
            try:
                with open(os.path.join(self.T, "error_log")) as f:
                    why = f.read().strip().splitlines()[-3:]
            except OSError:
                why = []
            raise OSError("writing %r to tracefs %s: %s %s" % (text.strip(), path, e, why))

    def clear(self):
        self._write("trace", "")

    def unmaps(self):
        """[(flags, iova, size, ret)] of the UNMAP_DMA ioctls since clear()."""
        pending, out = {}, []
        with open(os.path.join(self.T, "trace")) as f:
            for line in f:
                if line.startswith("#") or ": (" not in line:
                    continue
                task = line.split()[0]                  # comm-pid
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if " type1_ioctl: " in line:
                    pending[task] = fields
                elif " type1_ioctl_ret: " in line and task in pending:
                    e = pending.pop(task)
                    if int(e["cmd"], 16) == VFIO_IOMMU_UNMAP_DMA:
                        out.append((int(e["flags"], 16), int(e["iova"], 16),
                                    int(e["size"], 16), int(fields["ret"])))
        return out

    def close(self):
        for ev in (self.ENTRY, self.RET):
            try:
                self._write("events/%s/enable" % ev, "0")
            except OSError:
                pass
        for ev in (self.ENTRY, self.RET):
            try:
                self._write("kprobe_events", "-:%s\n" % ev, "a")
            except OSError:
                pass

