"""Start qemu-system-x86_64 against hostsim and talk QMP / qtest to it.

Used by hostsim's own end-to-end checks; standard library only.
"""

import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import hostsim  # noqa: E402


class QMP:
    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self._recv()                      # greeting
        self.cmd("qmp_capabilities")

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._recv()
            if "event" in r:
                self.events.append(r)
                continue
            return r

    def close(self):
        self.sock.close()


class QTest:
    """The qtest protocol: read/write guest memory."""

    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("qtest connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def request(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while True:
            r = self._line()
            if r.startswith("IRQ"):
                continue
            return r

    def read(self, addr, size):
        r = self.request("read %#x %#x" % (addr, size))
        if not r.startswith("OK 0x"):
            raise RuntimeError("qtest read failed: " + r)
        return bytes.fromhex(r[5:])


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
        self.qmp = QMP(self.qmp_path)
        if self.use_qtest:
            self.qtest = QTest(self.qtest_path)
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
                self.qmp.cmd("quit")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()
        if self.qmp:
            self.qmp.close()
        self.err.close()
        return self.proc.returncode
