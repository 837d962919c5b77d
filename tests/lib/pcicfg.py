"""PCI configuration space of the guest's devices, as firmware and a guest
kernel access it on q35 before MMCONFIG is set up: configuration
mechanism #1 (CONFIG_ADDRESS at port 0xcf8, CONFIG_DATA at 0xcfc).

With -accel qtest no firmware runs, so nothing assigns BARs or enables
memory decoding and bus mastering: a guest driver played by the test
(virtio_iommu.py) does it itself with assign_bar() and enable().
"""

CONFIG_ADDRESS = 0xCF8
CONFIG_DATA = 0xCFC

PCI_VENDOR_ID = 0x00
PCI_COMMAND = 0x04
PCI_STATUS = 0x06
PCI_BAR0 = 0x10
PCI_CAPABILITY_LIST = 0x34

PCI_COMMAND_MEMORY = 1 << 1
PCI_COMMAND_MASTER = 1 << 2
PCI_STATUS_CAP_LIST = 1 << 4
PCI_BAR_MEM_TYPE_64 = 0x4
PCI_CAP_ID_VNDR = 0x09


class PciDevice:
    def __init__(self, qt, bus, devfn):
        self.qt, self.bus, self.devfn = qt, bus, devfn

    def _addr(self, off):
        self.qt.outl(CONFIG_ADDRESS, 0x80000000 | (self.bus << 16) | (self.devfn << 8)
                     | (off & 0xFC))
        return CONFIG_DATA + (off & 3)

    def read8(self, off):
        return self.qt.inb(self._addr(off))

    def read16(self, off):
        return self.qt.inw(self._addr(off))

    def read32(self, off):
        return self.qt.inl(self._addr(off))

    def write16(self, off, val):
        self.qt.outw(self._addr(off), val)

    def write32(self, off, val):
        self.qt.outl(self._addr(off), val)

    def present(self):
        return self.read16(PCI_VENDOR_ID) != 0xFFFF

    def capabilities(self):
        """[(offset, cap id)] in list order."""
        out = []
        if not self.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST:
            return out
        off = self.read8(PCI_CAPABILITY_LIST) & 0xFC
        while off and len(out) < 48:
            out.append((off, self.read8(off)))
            off = self.read8(off + 1) & 0xFC
        return out

    def assign_bar(self, index, addr):
        """Place memory BAR `index` at addr (64-bit BARs take two slots)."""
        reg = PCI_BAR0 + 4 * index
        is64 = self.read32(reg) & PCI_BAR_MEM_TYPE_64
        self.write32(reg, addr & 0xFFFFFFFF)
        if is64:
            self.write32(reg + 4, addr >> 32)

    def enable(self, memory=True, master=True):
        cmd = self.read16(PCI_COMMAND)
        if memory:
            cmd |= PCI_COMMAND_MEMORY
        if master:
            cmd |= PCI_COMMAND_MASTER
        self.write16(PCI_COMMAND, cmd)
