"""Scenario runner inside L1 (chrooted into the host's read-only /).

Reads the job (JSON written by `run` into the writable share): the L2 QEMU
builds, the module sets, busybox (the host has no kmod; busybox's insmod
loads the decompressed modules).  Loads Debian's VFIO modules + mtty, runs
the "debian" scenarios on every build, swaps in the iommufd-enabled module
set, runs the "iommufd" scenarios.  Writes one JSON line per test result.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import traceback

# tests/ (seen at the same path inside L1): packages lib and nested
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nested import l2            # noqa: E402
from nested import scenarios     # noqa: E402


class ScenarioError(Exception):
    pass


def kernel_log_tail(n=15):
    """Last n kernel log lines, read from /dev/kmsg without blocking."""
    lines = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return ["(no /dev/kmsg: %s)" % e]
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError:          # EPIPE: record overwritten, keep going
                continue
            head, _, msg = rec.partition(";")
            ts = head.split(",")[2] if head.count(",") >= 2 else "?"
            lines.append("[%10.6f] %s" % (int(ts) / 1e6, msg.split("\n")[0]))
    finally:
        os.close(fd)
    return lines[-n:]


class Context:
    """Per-test resources: workdir, L2 processes, mdevs; all torn down after."""

    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir
        self.vms, self.mdevs, self.probes = [], [], []
        os.makedirs(workdir, exist_ok=True)

    def _vm(self, name, args, qtest=False):
        vm = l2.L2(self.binary, name, self.workdir, args, qtest=qtest)
        self.vms.append(vm)
        return vm

    def _start(self, vm, allow_fail):
        if not vm.start() and not allow_fail:
            raise ScenarioError("%s QEMU did not start (%s): %s" % (
                vm.name, vm.exit_summary(), scenarios.tail(vm.stderr())))

    def single(self, machine_args, props, iommufd=False):
        u = l2.mdev_create()
        self.mdevs.append(u)
        vm = self._vm("vm", machine_args + ["-device", scenarios.vfio_dev(u, props, iommufd)])
        vm.start()
        return vm

    def pair(self, machine_args, props, qtest=False, extra=(), iommufd=False,
             allow_fail=False, prefix=""):
        """Source and destination L2 on two fresh mdevs; the destination
        waits with -incoming defer."""
        us = [l2.mdev_create(), l2.mdev_create()]
        self.mdevs += us
        src = self._vm(prefix + "src", machine_args + list(extra) +
                       ["-device", scenarios.vfio_dev(us[0], props, iommufd)], qtest=qtest)
        dst = self._vm(prefix + "dst", machine_args + list(extra) +
                       ["-device", scenarios.vfio_dev(us[1], props, iommufd),
                        "-incoming", "defer"])
        self._start(src, allow_fail)
        self._start(dst, allow_fail)
        return src, dst

    def probe(self):
        self.probes.append(l2.Type1UnmapProbe())
        return self.probes[-1]

    def close(self, keep):
        for p in self.probes:
            p.close()
        for vm in self.vms:
            vm.stop()
        for u in self.mdevs:
            l2.mdev_remove(u)
        if keep:
            os.makedirs(keep, exist_ok=True)
            for vm in self.vms:
                try:
                    shutil.copy(vm.log_path, os.path.join(keep, vm.name + ".stderr"))
                    with open(os.path.join(keep, vm.name + ".cmdline"), "w") as f:
                        f.write(" ".join(vm.args) + "\n")
                except OSError:
                    pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def sh(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode("utf-8", "replace").strip()


def load_set(job, name):
    """Load module set `name`, unloading whatever VFIO set is in."""
    bb = job["busybox"]
    for m in ["mtty", "mdev", "vfio_iommu_type1", "vfio", "iommufd"]:
        if os.path.exists("/sys/module/%s" % m):
            rc, out = sh([bb, "rmmod", m])
            if rc:
                raise ScenarioError("rmmod %s: %s" % (m, out))
    d = job["modules"][name]
    order = (["iommufd"] if name == "iommufd" else []) + \
        ["vfio", "vfio_iommu_type1", "mdev", "mtty"]
    for m in order:
        rc, out = sh([bb, "insmod", os.path.join(d, m + ".ko")])
        if rc:
            raise ScenarioError("insmod %s/%s.ko: %s" % (d, m, out))
    if name == "iommufd" and not os.path.exists("/dev/iommu"):
        raise ScenarioError("iommufd loaded but /dev/iommu is missing")


def main():
    job = json.load(open(sys.argv[1]))
    out = open(job["results"], "a")

    def report(name, ok, detail, seconds, todo=None, klog=True):
        rec = {"name": name, "ok": ok, "detail": detail, "seconds": round(seconds, 2)}
        if todo:
            rec["todo"] = todo
        if not ok and not todo and klog:
            rec["klog"] = kernel_log_tail()
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print("NESTED-L1: %s %s (%.1fs)" % ("ok" if ok else "FAIL", name, seconds), flush=True)

    only = set(job.get("only") or [])
    skip = set(job.get("skip") or [])      # done in an earlier L1 boot
    phase_error = None
    current = None
    for sname, phase, fn in scenarios.SCENARIOS:
        if only and sname not in only:
            continue
        if all("nested/%s/%s" % (sname, b) in skip for b in job["builds"]):
            continue
        if phase != current:
            current, phase_error = phase, None
            t0 = time.monotonic()
            try:
                load_set(job, phase)
                print("NESTED-L1: module set %s loaded in %.1fs" % (phase, time.monotonic() - t0),
                      flush=True)
            except Exception as e:
                phase_error = "loading the %s module set failed: %s" % (phase, e)
        for build, binary in job["builds"].items():
            name = "nested/%s/%s" % (sname, build)
            if name in skip:
                continue
            print("NESTED-L1: start %s" % name, flush=True)
            t0 = time.monotonic()
            if phase_error:
                report(name, False, phase_error, 0)
                continue
            if not os.access(binary, os.X_OK):
                report(name, False, "L2 binary %s is missing" % binary, 0, klog=False)
                continue
            todo = None
            if getattr(fn, "needs_vtd", False):
                try:
                    from lib.viommu import vtd  # noqa: F401
                except ImportError as e:
                    todo = "VT-d guest driver not importable: %s" % e
            if todo:
                report(name, False, "not run", 0, todo=todo)
                continue
            ctx = Context(binary, os.path.join(os.environ.get("TMPDIR", "/dev/shm"),
                                               "%s-%s" % (sname, build)))
            try:
                ok, detail = fn(ctx, build)
            except Exception as e:
                ok = False
                detail = "%s: %s" % (type(e).__name__, e)
                tb = traceback.format_exc().strip().splitlines()
                detail += " [at %s]" % tb[-3].strip() if len(tb) >= 3 else ""
            keep = os.path.join(job["logs"], "%s-%s" % (sname, build))
            ctx.close(keep)
            report(name, ok, detail, time.monotonic() - t0)
    out.close()


if __name__ == "__main__":
    main()
