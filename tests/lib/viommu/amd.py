"""A small AMD-Vi guest driver, played by the test through qtest.

What a guest's AMD IOMMU driver (Linux drivers/iommu/amd) does, with the
names of the "AMD I/O Virtualization Technology (IOMMU) Specification"
(rev 3.x: 2.2 "Data Structures", 2.4 "Commands", 3.4 "MMIO Registers")
and of QEMU's model (hw/i386/amd_iommu.[ch], which needs
`-device amd-iommu,dma-remap=on` to shadow guest mappings into an
assigned device's host IOMMU):

  * the Device Table in guest RAM (one 256-bit DTE per requester ID,
    sized for bus 0), the Command Buffer (256 x 128-bit commands);
  * MMIO at 0xfed80000: Device Table Base, Command Buffer Base, Control
    (IommuEn, CmdBufEn), Command Buffer Head/Tail;
  * I/O page tables in the v1 format: 3 levels (DTE Mode 3, 39-bit IOVA),
    directory entries with Next Level = level of the table they point to,
    4 KiB leaf PTEs (Next Level 0), IR/IW permissions at every level;
  * after a DTE change: INVALIDATE_DEVTAB_ENTRY; after a page-table
    change: INVALIDATE_IOMMU_PAGES of the range (naturally aligned
    power-of-two blocks, S bit for more than a page); then COMPLETION_WAIT
    with a store the driver polls, as Linux fences every batch.

Unmapping follows Linux: the leaf PTE is zeroed, then the range is
invalidated.  Same API as vtd.VTd where the scenarios use it: init(),
attach(bus, devfn, did), attach_passthrough(), detach() (DTE V=1, TV=0:
DMA blocked), enable_translation(), map(), unmap(), log.
"""

import struct

from lib.viommu.vtd import PagePool, PAGE_SIZE, PAGE_SHIFT

AMDVI_BASE = 0xFED80000

# --- MMIO registers
MMIO_DEVICE_TABLE = 0x0000
MMIO_COMMAND_BASE = 0x0008
MMIO_CONTROL = 0x0018
MMIO_COMMAND_HEAD = 0x2000
MMIO_COMMAND_TAIL = 0x2008
MMIO_STATUS = 0x2020

CONTROL_IOMMUEN = 1 << 0
CONTROL_CMDBUFEN = 1 << 12
COMMAND_LEN_SHIFT = 56          # ComLen: log2(number of entries)

# --- Device Table Entry, quadword 0 and 1
DTE_V = 1 << 0
DTE_TV = 1 << 1
DTE_MODE_SHIFT = 9
DTE_IR = 1 << 61
DTE_IW = 1 << 62
DTE_SIZE = 32

# --- I/O page table entries (v1)
PTE_PR = 1 << 0
PTE_NEXT_SHIFT = 9
PTE_ADDR_MASK = 0x000FFFFFFFFFF000
PTE_IR = 1 << 61
PTE_IW = 1 << 62
LEVELS = 3                      # DTE Mode 3: 39-bit IOVA
LEVEL_BITS = 9

# --- commands
CMD_COMPLETION_WAIT = 0x1
CMD_INVAL_DEVTAB_ENTRY = 0x2
CMD_INVAL_IOMMU_PAGES = 0x3
CMD_SIZE = 16
CMD_ENTRIES = 256
COMPLETION_WAIT_S = 1 << 0
INVAL_PAGES_S = 1 << 0
COMPLETION_DATA = 0xC0FFEE


class AMDViError(Exception):
    pass


def level_shift(level):
    """log2 of the IOVA range one entry of a level-`level` table covers;
    level 1 holds the leaf PTEs."""
    return PAGE_SHIFT + (level - 1) * LEVEL_BITS


def level_index(iova, level):
    return (iova >> level_shift(level)) & ((1 << LEVEL_BITS) - 1)


def devid(bus, devfn):
    return (bus << 8) | devfn


class Domain:
    """One protection domain: its domain ID and its I/O page table."""

    def __init__(self, drv, did):
        self.drv, self.did = drv, did
        self.root = drv.pool.alloc()
        # (level, iova >> level_shift(level + 1)) -> GPA of that table
        self.tables = {(LEVELS, 0): self.root}

    def table(self, iova, level, create):
        if level == LEVELS:
            return self.root
        key = (level, iova >> level_shift(level + 1))
        if key not in self.tables:
            if not create:
                return None
            parent = self.table(iova, level + 1, create)
            page = self.drv.pool.alloc()
            self.drv.qt.writeq(parent + 8 * level_index(iova, level + 1),
                               page | (level << PTE_NEXT_SHIFT) | PTE_IR | PTE_IW | PTE_PR)
            self.tables[key] = page
        return self.tables[key]

    def pte_addr(self, iova, create=False):
        table = self.table(iova, 1, create)
        return None if table is None else table + 8 * level_index(iova, 1)


class AMDVi:
    def __init__(self, qt, pool_base, pool_size, base=AMDVI_BASE):
        self.qt = qt
        self.base = base
        self.pool = PagePool(qt, pool_base, pool_size)
        self.log = []
        self.domains = {}
        self.devtab = self.cmdbuf = self.wait_status = None
        self.tail = 0

    # ---- bring-up ------------------------------------------------------
    def init(self):
        """Device Table for bus 0 (two pages, 256 entries, all V=0: DMA
        passes untranslated), Command Buffer, then IommuEn | CmdBufEn."""
        self.devtab = self.pool.alloc()
        if self.pool.alloc() != self.devtab + PAGE_SIZE:
            raise AMDViError("device table pages not contiguous")
        self.cmdbuf = self.pool.alloc()
        self.wait_status = self.pool.alloc()
        qt = self.qt
        qt.writeq(self.base + MMIO_DEVICE_TABLE, self.devtab | (2 - 1))
        qt.writeq(self.base + MMIO_COMMAND_BASE,
                  self.cmdbuf | ((CMD_ENTRIES.bit_length() - 1) << COMMAND_LEN_SHIFT))
        qt.writeq(self.base + MMIO_COMMAND_HEAD, 0)
        qt.writeq(self.base + MMIO_COMMAND_TAIL, 0)
        self.tail = 0
        qt.writeq(self.base + MMIO_CONTROL, CONTROL_IOMMUEN | CONTROL_CMDBUFEN)
        self.log.append("device table at 0x%x, command buffer at 0x%x, IommuEn"
                        % (self.devtab, self.cmdbuf))

    def enable_translation(self):
        """Nothing to do: IommuEn is set by init(), translation per device
        starts with its DTE (attach)."""

    # ---- commands -------------------------------------------------------
    def _submit(self, cmds):
        """Queue the commands plus a COMPLETION_WAIT with store, move the
        tail, and poll the store."""
        qt = self.qt
        qt.writeq(self.wait_status, 0)
        cmds = list(cmds) + [((self.wait_status & ~7) | COMPLETION_WAIT_S
                              | (CMD_COMPLETION_WAIT << 60), COMPLETION_DATA)]
        for lo, hi in cmds:
            qt.write(self.cmdbuf + self.tail, struct.pack("<QQ", lo, hi))
            self.tail = (self.tail + CMD_SIZE) % (CMD_ENTRIES * CMD_SIZE)
        qt.writeq(self.base + MMIO_COMMAND_TAIL, self.tail)
        for _ in range(1000):
            if qt.readq(self.wait_status) == COMPLETION_DATA:
                return
        raise AMDViError("COMPLETION_WAIT never completed (head 0x%x tail 0x%x status 0x%x)"
                         % (qt.readq(self.base + MMIO_COMMAND_HEAD), self.tail,
                            qt.readq(self.base + MMIO_STATUS)))

    def _inval_devtab(self, bus, devfn):
        self._submit([(devid(bus, devfn) | (CMD_INVAL_DEVTAB_ENTRY << 60), 0)])

    def invalidate_range(self, did, iova, size):
        """INVALIDATE_IOMMU_PAGES of [iova, iova+size) in naturally aligned
        power-of-two blocks: S=0 for one page, else S=1 with the block size
        encoded in the address (bits below its first zero bit set)."""
        cmds = []
        start, end = iova, iova + size
        while start < end:
            order = 0
            while (start % (PAGE_SIZE << (order + 1)) == 0
                   and start + (PAGE_SIZE << (order + 1)) <= end):
                order += 1
            if order == 0:
                addr, flags = start, 0
            else:
                addr = start | (((PAGE_SIZE << order) // 2 - 1) & ~(PAGE_SIZE - 1))
                flags = INVAL_PAGES_S
            cmds.append(((did << 32) | (CMD_INVAL_IOMMU_PAGES << 60), addr | flags))
            start += PAGE_SIZE << order
        self._submit(cmds)

    # ---- device table ------------------------------------------------------
    def domain(self, did):
        if did not in self.domains:
            self.domains[did] = Domain(self, did)
        return self.domains[did]

    def _write_dte(self, bus, devfn, q0, q1=0):
        dte = self.devtab + DTE_SIZE * devid(bus, devfn)
        self.qt.write(dte, struct.pack("<QQQQ", q0, q1, 0, 0))
        self._inval_devtab(bus, devfn)

    def attach(self, bus, devfn, did):
        dom = self.domain(did)
        self._write_dte(bus, devfn, dom.root | (LEVELS << DTE_MODE_SHIFT) | DTE_IR | DTE_IW
                        | DTE_TV | DTE_V, did)
        self.log.append("DTE %02x:%02x.%x -> domain %d (root 0x%x)"
                        % (bus, devfn >> 3, devfn & 7, did, dom.root))
        return dom

    def attach_passthrough(self, bus, devfn, did):
        self._write_dte(bus, devfn, DTE_IR | DTE_IW | DTE_TV | DTE_V, did)
        self.log.append("DTE %02x:%02x.%x -> pass-through" % (bus, devfn >> 3, devfn & 7))

    def detach(self, bus, devfn, did):
        """DTE V=1, TV=0: the device's DMA is blocked."""
        self._write_dte(bus, devfn, DTE_V, 0)
        self.log.append("DTE %02x:%02x.%x blocked (V=1, TV=0)" % (bus, devfn >> 3, devfn & 7))

    # ---- mapping ---------------------------------------------------------
    def map(self, did, iova, gpa, size, write=True, invalidate=True):
        dom = self.domain(did)
        perm = PTE_IR | (PTE_IW if write else 0) | PTE_PR
        for off in range(0, size, PAGE_SIZE):
            self.qt.writeq(dom.pte_addr(iova + off, create=True),
                           ((gpa + off) & PTE_ADDR_MASK) | perm)
        self.log.append("map domain %d iova 0x%x -> gpa 0x%x size 0x%x" % (did, iova, gpa, size))
        if invalidate:
            self.invalidate_range(did, iova, size)

    def zero_upper_entry(self, did, iova, level=2, invalidate=True):
        """Zero the level-`level` entry covering iova (level 2: the PDE of
        a 2 MiB block) and invalidate the whole block it covered, as a
        guest does when it frees a page-table page.  Returns the (iova,
        size) of the block."""
        dom = self.domain(did)
        table = dom.table(iova, level, False)
        if table is None:
            raise AMDViError("no level-%d table above iova 0x%x" % (level, iova))
        size = 1 << level_shift(level)
        start = iova & ~(size - 1)
        self.qt.writeq(table + 8 * level_index(iova, level), 0)
        # Forget the tables below the zeroed entry.
        for key in [k for k in dom.tables if k[0] < level]:
            lvl, prefix = key
            if (prefix << level_shift(lvl + 1)) & ~(size - 1) == start:
                del dom.tables[key]
        self.log.append("zeroed level-%d entry of domain %d over iova 0x%x size 0x%x"
                        % (level, did, start, size))
        if invalidate:
            self.invalidate_range(did, start, size)
        return start, size

    def unmap(self, did, iova, size, invalidate=True):
        """Linux-style unmap: zero the leaf PTEs, then invalidate."""
        dom = self.domain(did)
        for off in range(0, size, PAGE_SIZE):
            pte = dom.pte_addr(iova + off)
            if pte is None:
                raise AMDViError("unmap of iova 0x%x that has no page table" % (iova + off))
            self.qt.writeq(pte, 0)
        self.log.append("unmap domain %d iova 0x%x size 0x%x (PTEs zeroed)" % (did, iova, size))
        if invalidate:
            self.invalidate_range(did, iova, size)
