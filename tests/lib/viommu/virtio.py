"""A small virtio-iommu guest driver, played by the test through qtest.

What a guest's virtio-iommu driver (Linux drivers/iommu/virtio-iommu.c)
does, with the names of the VIRTIO specification (1.2, sections 4.1
"Virtio Over PCI Bus", 2.7 "Split Virtqueues", 5.13 "IOMMU device") and
the way QEMU's own tests/qtest/libqos/virtio-iommu.c and
tests/qtest/virtio-iommu-test.c drive the device:

  * the virtio-pci modern transport: find the vendor capabilities (common
    configuration, notification, device configuration) in PCI
    configuration space, assign the BAR they live in, enable memory
    decoding and bus mastering (no firmware runs under -accel qtest);
  * device initialisation: reset, ACKNOWLEDGE, DRIVER, feature
    negotiation (VIRTIO_F_VERSION_1, MAP_UNMAP, INPUT_RANGE, DOMAIN_RANGE,
    BYPASS_CONFIG), FEATURES_OK, the request virtqueue (split ring in
    guest RAM), DRIVER_OK;
  * config.bypass = 0 as Linux writes it: endpoints not attached to a
    domain are blocked, not bypassing;
  * requests on the request queue: ATTACH, DETACH, MAP, UNMAP, one at a
    time, each a device-readable buffer plus a device-writable tail, the
    used ring polled for completion.

Same API as vtd.VTd where the scenarios use it: init(), attach(bus,
devfn, did), enable_translation(), map(did, iova, gpa, size), unmap(did,
iova, size), detach(bus, devfn, did), log.  A domain here is a
virtio-iommu domain ID; mappings are what the guest MAPs (virt_end is
inclusive), and an UNMAP must cover whole mappings (the device answers
VIRTIO_IOMMU_S_RANGE otherwise, as the specification allows).
"""

import struct

from lib.pcicfg import PciDevice, PCI_CAP_ID_VNDR
from lib.viommu.vtd import PagePool, PAGE_SIZE

# --- virtio-pci capabilities (virtio_pci.h)
VIRTIO_PCI_CAP_COMMON_CFG = 1
VIRTIO_PCI_CAP_NOTIFY_CFG = 2
VIRTIO_PCI_CAP_DEVICE_CFG = 4

# --- struct virtio_pci_common_cfg
DEVICE_FEATURE_SELECT = 0x00
DEVICE_FEATURE = 0x04
DRIVER_FEATURE_SELECT = 0x08
DRIVER_FEATURE = 0x0C
NUM_QUEUES = 0x12
DEVICE_STATUS = 0x14
QUEUE_SELECT = 0x16
QUEUE_SIZE = 0x18
QUEUE_ENABLE = 0x1C
QUEUE_NOTIFY_OFF = 0x1E
QUEUE_DESC = 0x20
QUEUE_DRIVER = 0x28
QUEUE_DEVICE = 0x30

# --- device status
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
NEEDS_RESET = 0x40
FAILED = 0x80

# --- feature bits
VIRTIO_F_VERSION_1 = 32
VIRTIO_IOMMU_F_INPUT_RANGE = 0
VIRTIO_IOMMU_F_DOMAIN_RANGE = 1
VIRTIO_IOMMU_F_MAP_UNMAP = 2
VIRTIO_IOMMU_F_BYPASS_CONFIG = 6
WANTED = ((1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_IOMMU_F_INPUT_RANGE)
          | (1 << VIRTIO_IOMMU_F_DOMAIN_RANGE) | (1 << VIRTIO_IOMMU_F_MAP_UNMAP)
          | (1 << VIRTIO_IOMMU_F_BYPASS_CONFIG))
REQUIRED = (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_IOMMU_F_MAP_UNMAP)

# --- struct virtio_iommu_config
CFG_BYPASS = 36

# --- requests (virtio_iommu.h)
T_ATTACH = 0x01
T_DETACH = 0x02
T_MAP = 0x03
T_UNMAP = 0x04
MAP_F_READ = 1 << 0
MAP_F_WRITE = 1 << 1
STATUS = {0: "OK", 1: "IOERR", 2: "UNSUPP", 3: "DEVERR", 4: "INVAL", 5: "RANGE",
          6: "NOENT", 7: "FAULT", 8: "NOMEM"}

# --- split virtqueue
VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
REQUEST_QUEUE = 0

# Where the driver places the device's memory BAR (PCI hole, below the
# local APIC / IOAPIC / DMAR windows, above any -m this suite uses).
BAR_ADDR = 0xE0000000


class VirtioIOMMUError(Exception):
    pass


def endpoint_id(bus, devfn):
    """virtio-iommu endpoint ID of a PCI device: its requester ID."""
    return (bus << 8) | devfn


class VirtioIOMMU:
    def __init__(self, qt, pool_base, pool_size, bus, devfn, bar_addr=BAR_ADDR):
        self.qt = qt
        self.pci = PciDevice(qt, bus, devfn)
        self.pool = PagePool(qt, pool_base, pool_size)
        self.bar_addr = bar_addr
        self.log = []
        self.common = self.notify = self.devcfg = None
        self.notify_mult = 0
        self.features = 0
        self.qsize = 0
        self.desc = self.avail = self.used = None
        self.avail_idx = 0
        self.notify_addr = None
        self.req_buf = self.tail_buf = None
        self.attached = {}          # endpoint -> domain

    # ---- transport -------------------------------------------------------
    def _find_caps(self):
        bars = {}
        for off, cap_id in self.pci.capabilities():
            if cap_id != PCI_CAP_ID_VNDR:
                continue
            cfg_type = self.pci.read8(off + 3)
            bar = self.pci.read8(off + 4)
            offset = self.pci.read32(off + 8)
            if cfg_type in (VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG,
                            VIRTIO_PCI_CAP_DEVICE_CFG) and cfg_type not in bars:
                bars[cfg_type] = (bar, offset)
                if cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG:
                    self.notify_mult = self.pci.read32(off + 16)
        missing = {VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG,
                   VIRTIO_PCI_CAP_DEVICE_CFG} - set(bars)
        if missing:
            raise VirtioIOMMUError("virtio-pci capabilities %s not found" % sorted(missing))
        if len({bar for bar, _ in bars.values()}) != 1:
            raise VirtioIOMMUError("virtio-pci structures in several BARs: %s" % bars)
        bar = bars[VIRTIO_PCI_CAP_COMMON_CFG][0]
        self.pci.assign_bar(bar, self.bar_addr)
        self.pci.enable(memory=True, master=True)
        self.common = self.bar_addr + bars[VIRTIO_PCI_CAP_COMMON_CFG][1]
        self.notify = self.bar_addr + bars[VIRTIO_PCI_CAP_NOTIFY_CFG][1]
        self.devcfg = self.bar_addr + bars[VIRTIO_PCI_CAP_DEVICE_CFG][1]
        self.log.append("virtio-pci BAR%d at 0x%x" % (bar, self.bar_addr))

    def _status(self, bits=None):
        if bits is not None:
            self.qt.writeb(self.common + DEVICE_STATUS, bits)
        return self.qt.readb(self.common + DEVICE_STATUS)

    def _negotiate(self):
        offered = 0
        for sel in (0, 1):
            self.qt.writel(self.common + DEVICE_FEATURE_SELECT, sel)
            offered |= self.qt.readl(self.common + DEVICE_FEATURE) << (32 * sel)
        if offered & REQUIRED != REQUIRED:
            raise VirtioIOMMUError("device features 0x%x lack 0x%x" % (offered, REQUIRED))
        self.features = offered & WANTED
        for sel in (0, 1):
            self.qt.writel(self.common + DRIVER_FEATURE_SELECT, sel)
            self.qt.writel(self.common + DRIVER_FEATURE, (self.features >> (32 * sel)) & 0xFFFFFFFF)

    def _setup_queue(self):
        c = self.common
        self.qt.writew(c + QUEUE_SELECT, REQUEST_QUEUE)
        self.qsize = self.qt.readw(c + QUEUE_SIZE)
        if not self.qsize:
            raise VirtioIOMMUError("request queue has size 0")
        # Descriptor table (16 bytes each), available ring (2-byte
        # entries), used ring (8-byte entries): one page each fits 256.
        if self.qsize > 256:
            self.qsize = 256
            self.qt.writew(c + QUEUE_SIZE, self.qsize)
        self.desc, self.avail, self.used = (self.pool.alloc() for _ in range(3))
        for off, addr in ((QUEUE_DESC, self.desc), (QUEUE_DRIVER, self.avail),
                          (QUEUE_DEVICE, self.used)):
            self.qt.writel(c + off, addr & 0xFFFFFFFF)
            self.qt.writel(c + off + 4, addr >> 32)
        notify_off = self.qt.readw(c + QUEUE_NOTIFY_OFF)
        self.notify_addr = self.notify + notify_off * self.notify_mult
        self.qt.writew(c + QUEUE_ENABLE, 1)
        self.req_buf = self.pool.alloc()
        self.tail_buf = self.req_buf + PAGE_SIZE // 2

    def init(self):
        """Reset the device, negotiate features, set up the request
        queue, DRIVER_OK; endpoints not attached are blocked."""
        if not self.pci.present():
            raise VirtioIOMMUError("no virtio-iommu-pci at %02x:%02x.%x"
                                   % (self.pci.bus, self.pci.devfn >> 3, self.pci.devfn & 7))
        self._find_caps()
        self._status(0)
        self._status(ACKNOWLEDGE)
        self._status(ACKNOWLEDGE | DRIVER)
        self._negotiate()
        if not self._status(ACKNOWLEDGE | DRIVER | FEATURES_OK) & FEATURES_OK:
            raise VirtioIOMMUError("device refused features 0x%x" % self.features)
        self._setup_queue()
        st = self._status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        if st & (NEEDS_RESET | FAILED):
            raise VirtioIOMMUError("device status 0x%x after DRIVER_OK" % st)
        if self.features & (1 << VIRTIO_IOMMU_F_BYPASS_CONFIG):
            self.qt.writeb(self.devcfg + CFG_BYPASS, 0)
        self.log.append("virtio-iommu features 0x%x, request queue of %d, bypass %d"
                        % (self.features, self.qsize, self.qt.readb(self.devcfg + CFG_BYPASS)))

    # ---- requests ---------------------------------------------------------
    def _request(self, what, payload, tries=10000):
        """Send one request (payload = everything before the tail), wait
        for the device to use it, return the tail's status."""
        qt = self.qt
        qt.write(self.req_buf, payload)
        qt.write(self.tail_buf, b"\xff\0\0\0")
        # Descriptor 0: the request, device-readable; 1: the tail, writable.
        qt.write(self.desc, struct.pack("<QIHH", self.req_buf, len(payload), VRING_DESC_F_NEXT, 1)
                 + struct.pack("<QIHH", self.tail_buf, 4, VRING_DESC_F_WRITE, 0))
        qt.writew(self.avail + 4 + 2 * (self.avail_idx % self.qsize), 0)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        qt.writew(self.avail + 2, self.avail_idx)
        qt.writew(self.notify_addr, REQUEST_QUEUE)
        for _ in range(tries):
            if qt.readw(self.used + 2) == self.avail_idx:
                break
        else:
            raise VirtioIOMMUError("%s: request not completed (device status 0x%x)"
                                   % (what, self._status()))
        status = qt.readb(self.tail_buf)
        if status:
            raise VirtioIOMMUError("%s: VIRTIO_IOMMU_S_%s" % (what, STATUS.get(status, status)))
        self.log.append(what)

    def attach(self, bus, devfn, did):
        ep = endpoint_id(bus, devfn)
        self._request("ATTACH ep 0x%x domain %d" % (ep, did),
                      struct.pack("<B3xIII4x", T_ATTACH, did, ep, 0))
        self.attached[ep] = did

    def detach(self, bus, devfn, did):
        """DETACH: the endpoint leaves the domain; with bypass 0 it is
        blocked afterwards."""
        ep = endpoint_id(bus, devfn)
        self._request("DETACH ep 0x%x domain %d" % (ep, did),
                      struct.pack("<B3xII8x", T_DETACH, did, ep))
        self.attached.pop(ep, None)

    def reset(self):
        """Device reset (status 0), as a driver does when it unbinds: the
        device drops every domain and endpoint, and with bypass 0 the
        endpoints are blocked afterwards."""
        self._status(0)
        self.attached.clear()
        self.log.append("device reset")

    def enable_translation(self):
        """Nothing to do: translation starts with ATTACH."""

    def map(self, did, iova, gpa, size, write=True):
        flags = MAP_F_READ | (MAP_F_WRITE if write else 0)
        self._request("MAP domain %d iova 0x%x -> gpa 0x%x size 0x%x" % (did, iova, gpa, size),
                      struct.pack("<B3xIQQQI", T_MAP, did, iova, iova + size - 1, gpa, flags))

    def unmap(self, did, iova, size):
        self._request("UNMAP domain %d iova 0x%x size 0x%x" % (did, iova, size),
                      struct.pack("<B3xIQQ4x", T_UNMAP, did, iova, iova + size - 1))
