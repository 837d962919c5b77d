"""Python client for hostsim, the in-process model of the VFIO / iommufd
kernel interfaces that tests preload into qemu-system-x86_64.

    from lib import hostsim                # tests/ on the import path
    dev = hostsim.make_sysfs_device(tmp, name="0000:00:05.0", group=42, cdev=0)
    hostsim.write_config(cfg, log=logpath, control=sock, kernel="6.14",
                         **{"device.name": "0000:00:05.0"})
    env = hostsim.qemu_env(lib, cfg)       # LD_PRELOAD + HOSTSIM_CONFIG
    ... start QEMU with -device vfio-pci,sysfsdev=<dev> ...
    ctl = hostsim.Control(sock); ctl.dma(0x100000, 4096, 0x1122334455667788)
    events = hostsim.read_log(logpath)

Standard library only.
"""

import json
import os

from lib.unix_client import UnixClient

# "major" the model reports for /dev/vfio/devices/vfioN; the sysfs "dev"
# file must carry the same number (QEMU compares st_rdev with it).
CDEV_MAJOR = 238

# keyword spellings accepted by write_config() for dotted config keys
_PREFIXES = ("device_", "type1_", "fd_")
_SPECIAL = {"iommu_aw_bits": "iommu.aw_bits"}


def make_sysfs_device(root, name="0000:00:05.0", group=42, cdev=0,
                      vendor=0x1b36, device=0x0010, major=CDEV_MAJOR):
    """Create a fake sysfs PCI device directory under root and return it.

    <root>/devices/<name>/iommu_group -> <root>/kernel/iommu_groups/<group>
    <root>/devices/<name>/vfio-dev/vfio<cdev>/dev   ("major:minor")
    plus vendor/device files and the group's devices/ back link.
    """
    root = os.path.abspath(root)
    devdir = os.path.join(root, "devices", name)
    groupdir = os.path.join(root, "kernel", "iommu_groups", str(group))
    os.makedirs(devdir, exist_ok=True)
    os.makedirs(os.path.join(groupdir, "devices"), exist_ok=True)
    link = os.path.join(devdir, "iommu_group")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(groupdir, link)
    back = os.path.join(groupdir, "devices", name)
    if not os.path.lexists(back):
        os.symlink(devdir, back)
    vdir = os.path.join(devdir, "vfio-dev", "vfio%d" % cdev)
    os.makedirs(vdir, exist_ok=True)
    with open(os.path.join(vdir, "dev"), "w") as f:
        f.write("%d:%d\n" % (major, cdev))
    with open(os.path.join(devdir, "vendor"), "w") as f:
        f.write("0x%04x\n" % vendor)
    with open(os.path.join(devdir, "device"), "w") as f:
        f.write("0x%04x\n" % device)
    return devdir


def _key(k):
    if k in _SPECIAL:
        return _SPECIAL[k]
    for p in _PREFIXES:
        if k.startswith(p) and "." not in k:
            return p[:-1] + "." + k[len(p):]
    return k


def _value(v):
    if v is True:
        return "on"
    if v is False:
        return "off"
    return str(v)


def write_config(path, **keys):
    """Write a hostsim config file.

    Dotted keys can be given as **{"device.name": ...} or with an
    underscore after the prefix (device_name=..., type1_dirty=...).
    Booleans become on/off; a list value writes the key once per item
    (e.g. fault=["IOMMU_HWPT_GET_DIRTY_BITMAP nth=2 errno=EIO"]).
    """
    lines = ["# hostsim configuration"]
    for k, v in keys.items():
        if v is None:
            continue
        k = _key(k)
        if isinstance(v, (list, tuple)):
            for item in v:
                lines.append("%s = %s" % (k, _value(item)))
        else:
            lines.append("%s = %s" % (k, _value(v)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def qemu_env(lib, config, base=None):
    """Environment for a QEMU process running against the model."""
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = lib
    env["HOSTSIM_CONFIG"] = config
    return env


class Control(UnixClient):
    """Client of the model's control socket (one request line -> one JSON
    response line)."""

    def __init__(self, sock_path, timeout=10.0):
        super().__init__(sock_path, timeout)

    def request(self, line):
        if self.sock is None:
            # The model opens the socket when QEMU loads it: retried.
            self._connect_socket(self.timeout)
            self.sock.settimeout(self.timeout)
        self.sock.sendall(line.encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("hostsim control socket closed")
            self.buf += chunk
        resp, self.buf = self.buf.split(b"\n", 1)
        return json.loads(resp)

    @staticmethod
    def _dev(dev):
        return "" if dev is None else " dev=%s" % dev

    def dma(self, iova, length, pattern, dev=None):
        """Device write of little-endian u64 pattern over [iova, iova+len).
        dev: device index or name (default: device 0)."""
        return self.request("dma %#x %#x %#x%s" % (iova, length, pattern,
                                                   self._dev(dev)))

    def read(self, iova, length, dev=None):
        """Read through the device's IOMMU (for checks); returns bytes or
        raises RuntimeError on an IOMMU fault."""
        r = self.request("read %#x %#x%s" % (iova, length, self._dev(dev)))
        if not r.get("ok"):
            raise RuntimeError("hostsim read fault at %#x" % r.get("iova", 0))
        return bytes.fromhex(r["hex"])

    def state(self, dev=None):
        return self.request("state" + self._dev(dev))

    def add_fault(self, call, nth=None, iova_range=None, errno="EIO", delay_ms=None):
        """Fail matching calls with errno; with delay_ms, answer them that
        late (and, with errno=None, let them succeed)."""
        spec = call
        if nth is not None:
            spec += " nth=%d" % nth
        if iova_range is not None:
            spec += " iova=%#x-%#x" % (iova_range[0], iova_range[1])
        if delay_ms is not None:
            spec += " delay_ms=%d" % delay_ms
        if errno is not None:
            spec += " errno=%s" % errno
        r = self.request("fault " + spec)
        if not r.get("ok"):
            raise ValueError("hostsim rejected fault rule %r" % spec)
        return r

    def add_delay(self, call, delay_ms):
        """Answer every call named call delay_ms late (a slow kernel)."""
        return self.add_fault(call, errno=None, delay_ms=delay_ms)

    def clear_faults(self):
        return self.request("clear-faults")

    def calls(self):
        return self.request("calls")["calls"]

    def counters(self):
        """Calls the model answered since the last clear_counters(), by
        call name (as the event log names them): {"calls", "errors", "ns"}
        each, "ns" the time spent in the model.  Kept with the log off."""
        return self.request("counters")["counters"]

    def clear_counters(self):
        return self.request("clear-counters")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_log(path):
    """Parse the JSON-lines event log into a list of dicts.

    The model may be writing a line while it is read: a last line without
    its newline is not complete yet and is left for the next read."""
    events = []
    try:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                line = line.strip()
                if line:
                    events.append(json.loads(line))
    except FileNotFoundError:
        pass
    return events


def unhandled(events):
    """The events the model answered as not implemented."""
    return [e for e in events if e.get("call") == "unhandled"]
