"""Start qemu-system-x86_64 against hostsim and talk QMP / qtest to it.

Used by hostsim's own end-to-end checks, which need what tests/e2e/vm.py
does not offer: TCG as well as qtest, a command line of their own (extra
devices, file descriptors passed in, -incoming URI).  The QMP and qtest
clients are the end-to-end harness's (tests/e2e/qmp.py, qtest.py).
"""

import os
import subprocess
import time

from lib import hostsim
from lib.qmp import QMP
from lib.qtest import QTest


class Qemu:
    """One QEMU process with a hostsim model instance of its own."""

    def __init__(self, binary, lib, workdir, name, config, args,
                 qtest=False, incoming=None, pass_fds=()):
        self.workdir = workdir
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.qtest_path = os.path.join(workdir, name + ".qtest")
        self.cfg_path = os.path.join(workdir, name + ".cfg")
        self.log_path = os.path.join(workdir, name + ".log")
        self.ctl_path = os.path.join(workdir, name + ".ctl")
        self.err_path = os.path.join(workdir, name + ".stderr")
        for p in (self.log_path, self.qmp_path, self.qtest_path):
            if os.path.exists(p):
                os.unlink(p)
        hostsim.write_config(self.cfg_path, log=self.log_path,
                             control=self.ctl_path, **config)
        cmd = [binary, "-L", "/usr/share/seabios", "-machine", "q35",
               "-display", "none", "-nodefaults", "-m", "256",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if qtest:
            cmd += ["-accel", "qtest",
                    "-qtest", "unix:%s,server=on,wait=off" % self.qtest_path]
        else:
            cmd += ["-accel", "tcg"]
        if incoming:
            cmd += ["-incoming", incoming]
        cmd += args
        self.cmdline = cmd
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, env=hostsim.qemu_env(lib,
                                                               self.cfg_path),
                                     stdin=subprocess.DEVNULL,
                                     pass_fds=pass_fds,
                                     stdout=self.err, stderr=self.err)
        self.use_qtest = qtest
        self.qmp = None
        self.qtest = None
        self.ctl = hostsim.Control(self.ctl_path)

    def connect(self, timeout=30.0):
        """Connect QMP (and qtest); raises if QEMU died meanwhile."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.qmp_path):
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU exited with %r" % self.proc.returncode)
            if time.monotonic() > deadline:
                raise TimeoutError("no QMP socket")
            time.sleep(0.05)
        self.qmp = QMP(self.qmp_path, timeout=timeout).connect(deadline=timeout)
        if self.use_qtest:
            self.qtest = QTest(self.qtest_path,
                               timeout=timeout).connect(deadline=timeout)
        return self

    def stderr(self):
        self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def events(self):
        return hostsim.read_log(self.log_path)

    def stop(self):
        try:
            if self.qmp and self.proc.poll() is None:
                self.qmp.command("quit")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()
        for c in (self.qmp, self.qtest):
            if c:
                c.close()
        self.err.close()
        return self.proc.returncode
