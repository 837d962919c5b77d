"""Minimal QMP client (QEMU Machine Protocol) over a UNIX stream socket.

QMP is line-oriented JSON: the server greets with {"QMP": ...}, the client
negotiates with qmp_capabilities, then every command gets exactly one
{"return": ...} or {"error": ...} reply.  Asynchronous {"event": ...}
messages may arrive at any time; they are queued for wait_event().
"""

import json
import socket
import time

from lib.unix_client import UnixClient


class QMPError(Exception):
    """A command answered with {"error": {...}}."""

    def __init__(self, command, error):
        self.command = command
        self.error = error
        self.error_class = error.get("class", "")
        self.desc = error.get("desc", "")
        super().__init__("%s: %s: %s" % (command, self.error_class, self.desc))


class QMPTimeout(Exception):
    pass


class QMP(UnixClient):
    def __init__(self, path, timeout=30.0):
        super().__init__(path, timeout)
        self.events = []
        self.transcript = []      # (direction, text) kept for failure reports
        self._next_id = 1

    def connect(self, deadline=10.0):
        self._connect_socket(deadline)
        greeting = self._read_msg(self.timeout)
        if "QMP" not in greeting:
            raise RuntimeError("unexpected QMP greeting: %r" % greeting)
        self.command("qmp_capabilities")
        return self

    def _read_msg(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise QMPTimeout("no QMP message within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise QMPTimeout("no QMP message within %.1fs" % timeout)
            if not chunk:
                raise ConnectionError("QMP connection closed by QEMU")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8", "replace").strip()
        if not text:
            return self._read_msg(timeout)
        self.transcript.append(("<", text))
        return json.loads(text)

    def command(self, name, **args):
        """Run a command; return its "return" value or raise QMPError."""
        cmd_id = self._next_id
        self._next_id += 1
        msg = {"execute": name, "id": cmd_id}
        if args:
            msg["arguments"] = args
        text = json.dumps(msg)
        self.transcript.append((">", text))
        self.sock.sendall(text.encode() + b"\n")
        while True:
            resp = self._read_msg(self.timeout)
            if "event" in resp:
                self.events.append(resp)
                continue
            if resp.get("id") != cmd_id:
                continue
            if "error" in resp:
                raise QMPError(name, resp["error"])
            return resp.get("return")

    def try_command(self, name, **args):
        """Like command() but returns (result, QMPError-or-None)."""
        try:
            return self.command(name, **args), None
        except QMPError as e:
            return None, e

    def poll_events(self, timeout=0.0):
        """Collect any events that arrive within timeout seconds."""
        try:
            while True:
                msg = self._read_msg(timeout)
                if "event" in msg:
                    self.events.append(msg)
        except QMPTimeout:
            pass
        return self.events

    def wait_event(self, name, timeout=30.0, match=None):
        """Wait for (and consume) the first event called name."""
        end = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and (match is None or match(ev)):
                    return self.events.pop(i)
            left = end - time.monotonic()
            if left <= 0:
                raise QMPTimeout("event %s not seen within %.1fs" % (name, timeout))
            try:
                msg = self._read_msg(left)
            except QMPTimeout:
                continue
            if "event" in msg:
                self.events.append(msg)

    def tail(self, n=20):
        """Last n transcript lines, for failure reports."""
        return ["%s %s" % d for d in self.transcript[-n:]]
