"""Common part of the clients of QEMU's server sockets (qmp.py, qtest.py) and
of hostsim's control socket (hostsim.Control).

QEMU listens on  -qmp / -qtest unix:PATH,server=on,wait=off; the test may
start connecting before the socket exists or accepts, so connect() retries
for a while.
"""

import socket
import time


class UnixClient:
    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buf = b""            # received bytes not yet consumed

    def _connect_socket(self, deadline):
        """Connect to self.path, retrying while it is missing or refuses,
        for up to deadline seconds."""
        end = time.monotonic() + deadline
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.sock = s

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            finally:
                self.sock = None
