"""Client for QEMU's qtest protocol (system/qtest.c) over a UNIX socket.

With -accel qtest no vCPU runs; the test plays the guest by reading and
writing guest-physical memory (including MMIO registers) through this text
protocol: one request line, one reply line starting with "OK" or "FAIL".
Lines starting with "IRQ" are asynchronous interrupt notifications (only
sent after irq_intercept_*), which we skip.

QEMU is started with  -qtest unix:PATH,server=on,wait=off  and this client
connects to it.  All accesses go through the first CPU's address space, i.e.
the guest-physical address space the guest OS would see.
"""

import base64
import struct

from lib.unix_client import UnixClient


class QTestError(Exception):
    pass


class QTest(UnixClient):
    def __init__(self, path, timeout=60.0):
        super().__init__(path, timeout)

    def connect(self, deadline=10.0):
        self._connect_socket(deadline)
        self.sock.settimeout(self.timeout)
        return self

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("qtest connection closed by QEMU")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("ascii", "replace")

    def cmd(self, text):
        """Send one request; return the words after "OK"."""
        self.sock.sendall(text.encode("ascii") + b"\n")
        while True:
            line = self._line()
            if line.startswith("IRQ"):
                continue
            words = line.split()
            if not words or words[0] != "OK":
                raise QTestError("qtest %r -> %r" % (text[:80], line))
            return words[1:]

    # Register-sized accesses (little-endian guest, as on x86).
    def writeb(self, addr, val):
        self.cmd("writeb 0x%x 0x%x" % (addr, val))

    def writew(self, addr, val):
        self.cmd("writew 0x%x 0x%x" % (addr, val))

    def writel(self, addr, val):
        self.cmd("writel 0x%x 0x%x" % (addr, val))

    def writeq(self, addr, val):
        self.cmd("writeq 0x%x 0x%x" % (addr, val))

    def readb(self, addr):
        return int(self.cmd("readb 0x%x" % addr)[0], 16)

    def readw(self, addr):
        return int(self.cmd("readw 0x%x" % addr)[0], 16)

    def readl(self, addr):
        return int(self.cmd("readl 0x%x" % addr)[0], 16)

    def readq(self, addr):
        return int(self.cmd("readq 0x%x" % addr)[0], 16)

    # I/O port accesses (PCI configuration mechanism #1 at 0xcf8/0xcfc).
    def outb(self, port, val):
        self.cmd("outb 0x%x 0x%x" % (port, val))

    def outw(self, port, val):
        self.cmd("outw 0x%x 0x%x" % (port, val))

    def outl(self, port, val):
        self.cmd("outl 0x%x 0x%x" % (port, val))

    def inb(self, port):
        return int(self.cmd("inb 0x%x" % port)[0], 16)

    def inw(self, port):
        return int(self.cmd("inw 0x%x" % port)[0], 16)

    def inl(self, port):
        return int(self.cmd("inl 0x%x" % port)[0], 16)

    # Bulk memory accesses.
    def read(self, addr, length):
        """Read length bytes of guest-physical memory."""
        words = self.cmd("b64read 0x%x 0x%x" % (addr, length))
        return base64.b64decode(words[0]) if words else b""

    def write(self, addr, data):
        """Write bytes to guest-physical memory."""
        if not data:
            return
        enc = base64.b64encode(bytes(data)).decode("ascii")
        self.cmd("b64write 0x%x 0x%x %s" % (addr, len(data), enc))

    def memset(self, addr, length, byte):
        self.cmd("memset 0x%x 0x%x 0x%x" % (addr, length, byte))

    def fill_u64(self, addr, length, pattern):
        """Fill [addr, addr+length) with the little-endian u64 pattern."""
        self.write(addr, struct.pack("<Q", pattern) * (length // 8))
