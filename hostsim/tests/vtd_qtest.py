"""Drive QEMU's emulated Intel IOMMU from qtest: build root/context/page
tables in guest RAM, enable translation and invalidate, the way a guest
driver would (legacy-mode root table, second-level 3-level page tables,
register-based invalidation).  Written from the VT-d specification's
register and table layouts.
"""

VTD_BASE = 0xfed90000
GCMD, GSTS, RTADDR, CCMD = 0x18, 0x1c, 0x20, 0x28
IVA, IOTLB = 0xf0, 0xf8
GCMD_TE, GCMD_SRTP = 1 << 31, 1 << 30
CCMD_ICC, CCMD_GLOBAL = 1 << 63, 1 << 61
TLB_IVT, TLB_GLOBAL, TLB_PSI = 1 << 63, 1 << 60, 3 << 60
PTE_R, PTE_W = 1, 2


class VTd:
    """Tables live in a scratch area of guest RAM (default 16 MiB up)."""

    def __init__(self, qtest, scratch=0x1000000, devfn=0x28, bus=0):
        self.qt = qtest
        self.root = scratch
        self.ctx = scratch + 0x1000
        self.next = scratch + 0x2000
        self.bus, self.devfn = bus, devfn
        self.l3 = self._page()          # 39-bit: 3 levels
        self.tables = {}
        for a in range(self.root, self.next, 8):
            self.qt.request("writeq %#x 0" % a)
        self.qt.request("writeq %#x %#x" % (self.root + 16 * bus,
                                            self.ctx | 1))
        # context entry: present, TT=0 (second level), SLPTPTR, AW=1, DID 1
        self.qt.request("writeq %#x %#x" % (self.ctx + 16 * devfn,
                                            self.l3 | 1))
        self.qt.request("writeq %#x %#x" % (self.ctx + 16 * devfn + 8,
                                            1 | (1 << 8)))

    def _page(self):
        p = self.next
        self.next += 0x1000
        self.qt.request("memset %#x 0x1000 0" % p)
        return p

    def _table(self, parent, index):
        key = (parent, index)
        if key not in self.tables:
            t = self._page()
            self.tables[key] = t
            self.qt.request("writeq %#x %#x" % (parent + 8 * index,
                                                t | PTE_R | PTE_W))
        return self.tables[key]

    def _pte_addr(self, iova):
        l2 = self._table(self.l3, (iova >> 30) & 0x1ff)
        l1 = self._table(l2, (iova >> 21) & 0x1ff)
        return l1 + 8 * ((iova >> 12) & 0x1ff)

    def map(self, iova, gpa, size=0x1000, write=True):
        for off in range(0, size, 0x1000):
            pte = (gpa + off) | PTE_R | (PTE_W if write else 0)
            self.qt.request("writeq %#x %#x" % (self._pte_addr(iova + off),
                                                pte))

    def unmap(self, iova, size=0x1000):
        for off in range(0, size, 0x1000):
            self.qt.request("writeq %#x 0" % self._pte_addr(iova + off))

    def reg_write(self, off, val, width=64):
        self.qt.request("write%s %#x %#x" % ("q" if width == 64 else "l",
                                             VTD_BASE + off, val))

    def enable(self):
        self.reg_write(RTADDR, self.root)
        self.reg_write(GCMD, GCMD_SRTP, 32)
        self.reg_write(GCMD, GCMD_TE, 32)
        self.invalidate_context()
        self.invalidate_iotlb()

    def invalidate_context(self):
        self.reg_write(CCMD, CCMD_ICC | CCMD_GLOBAL)

    def invalidate_iotlb(self, iova=None, am=0):
        """Global flush, or page-selective for 2^am pages at iova."""
        if iova is None:
            self.reg_write(IOTLB, TLB_IVT | TLB_GLOBAL)
        else:
            self.reg_write(IVA, iova | am)
            self.reg_write(IOTLB, TLB_IVT | TLB_PSI | (1 << 32))  # DID 1
