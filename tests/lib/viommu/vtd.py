"""A small Intel VT-d guest driver, played by the test through qtest.

With -accel qtest no guest kernel runs, so this module does what a guest's
IOMMU driver (e.g. Linux drivers/iommu/intel) does, with the register and
field names of the Intel VT-d specification ("Intel Virtualization
Technology for Directed I/O", chapters 9 "Translation Structure Formats",
6.5 "Invalidation", 10.4 "Register Descriptions"):

  * build the root table and (legacy-mode) context entries in guest RAM,
  * build second-level page tables (4-level, 48-bit AGAW by default),
  * program RTADDR_REG and issue SRTP, enable translation with TE,
  * invalidate the context cache and the IOTLB after every change, as
    Caching Mode (CAP_REG.CM = 1, QEMU's caching-mode=on) requires even for
    not-present -> present changes.  QEMU shadows the guest tables into the
    assigned device's host IOMMU only when it sees those invalidations.

Invalidation can be register based (CCMD_REG / IOTLB_REG) or queued (the
Invalidation Queue, IQA_REG / IQT_REG, with an Invalidation Wait descriptor
to fence), selected with the `queued` argument.  Linux uses the queue.

Unmapping follows Linux: the leaf PTE is zeroed first, then a page-selective
IOTLB invalidation is issued; zero_upper_entry() zeroes a whole directory
entry (e.g. a PDE covering 2 MiB) the way a large unmap frees page tables.

Scalable mode (PASID tables, 256-bit descriptors): class ScalableVTd at the
end of this module, same API.
"""

import struct

# --- Register offsets (VT-d spec 10.4, QEMU hw/i386/intel_iommu_internal.h)
VER_REG = 0x00
CAP_REG = 0x08
ECAP_REG = 0x10
GCMD_REG = 0x18
GSTS_REG = 0x1C
RTADDR_REG = 0x20
CCMD_REG = 0x28
FSTS_REG = 0x34
FECTL_REG = 0x38
IQH_REG = 0x80
IQT_REG = 0x88
IQA_REG = 0x90
ICS_REG = 0x9C
# IVA_REG / IOTLB_REG live at ECAP_REG.IRO * 16 (0xf0 on QEMU).
IVA_REG_OFF = 0x0
IOTLB_REG_OFF = 0x8

DMAR_BASE_Q35 = 0xFED90000      # Q35_HOST_BRIDGE_IOMMU_ADDR

# --- CAP_REG fields
CAP_CM = 1 << 7                 # Caching Mode
CAP_SAGAW_SHIFT = 8
CAP_MGAW_SHIFT = 16
CAP_PSI = 1 << 39
CAP_MAMV_SHIFT = 48

# --- ECAP_REG fields
ECAP_QI = 1 << 1
ECAP_PT = 1 << 6
ECAP_IRO_SHIFT = 8
ECAP_IRO_MASK = 0x3FF
ECAP_SMTS = 1 << 43

# --- GCMD_REG / GSTS_REG bits
GCMD_TE = 1 << 31
GCMD_SRTP = 1 << 30
GCMD_QIE = 1 << 26
GCMD_IRE = 1 << 25
GCMD_CFI = 1 << 23
GSTS_TES = 1 << 31
GSTS_RTPS = 1 << 30
GSTS_QIES = 1 << 26
GSTS_IRES = 1 << 25
GSTS_CFIS = 1 << 23
# Persistent enables a GCMD write must repeat (GCMD is write-only; status
# bits say what is currently enabled).  SRTP is a one-shot command.
GCMD_PERSISTENT = GCMD_TE | GCMD_QIE | GCMD_IRE | GCMD_CFI

# --- RTADDR_REG
RTADDR_TTM_LEGACY = 0 << 10
RTADDR_SMT = 1 << 10

# --- CCMD_REG (Context Command Register)
CCMD_ICC = 1 << 63
CCMD_CIRG_GLOBAL = 1 << 61
CCMD_CIRG_DOMAIN = 2 << 61
CCMD_CIRG_DEVICE = 3 << 61
CCMD_FM_SHIFT = 32
CCMD_SID_SHIFT = 16

# --- IOTLB_REG (IOTLB Invalidate Register)
IOTLB_IVT = 1 << 63
IOTLB_IIRG_GLOBAL = 1 << 60
IOTLB_IIRG_DOMAIN = 2 << 60
IOTLB_IIRG_PAGE = 3 << 60
IOTLB_DR = 1 << 49
IOTLB_DW = 1 << 48
IOTLB_DID_SHIFT = 32

# --- IVA_REG
IVA_IH = 1 << 6                 # Invalidation Hint (leaf only)

# --- Root entry (legacy, 9.1)
ROOT_P = 1 << 0

# --- Context entry (legacy, 9.3)
CTX_P = 1 << 0
CTX_FPD = 1 << 1
CTX_TT_MULTI_LEVEL = 0 << 2     # second-level translation, untranslated only
CTX_TT_PASS_THROUGH = 2 << 2
CTX_AW_39 = 1                   # 3-level page table
CTX_AW_48 = 2                   # 4-level page table
CTX_DID_SHIFT = 8

# --- Second-level paging entries (9.8)
SL_R = 1 << 0
SL_W = 1 << 1
SL_PS = 1 << 7                  # Page Size: leaf at PDE/PDPE level
SL_ADDR_MASK = 0x000FFFFFFFFFF000

# --- Invalidation queue descriptors (6.5.2), 128-bit format
INV_DESC_CC = 0x1               # Context-cache Invalidate
INV_DESC_IOTLB = 0x2            # IOTLB Invalidate
INV_DESC_WAIT = 0x5             # Invalidation Wait
INV_G_GLOBAL = 1 << 4
INV_G_DOMAIN = 2 << 4
INV_G_DEVICE_OR_PAGE = 3 << 4   # device-selective (CC) / page-selective (IOTLB)
INV_IOTLB_DR = 1 << 6
INV_IOTLB_DW = 1 << 7
INV_WAIT_SW = 1 << 5            # Status Write
INV_WAIT_FN = 1 << 6            # Fence

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
LEVEL_BITS = 9
LEVEL_NAMES = {4: "PML4E", 3: "PDPE", 2: "PDE", 1: "PTE"}


def level_shift(level):
    """log2 of the IOVA range one entry of this level covers."""
    return PAGE_SHIFT + (level - 1) * LEVEL_BITS


def level_index(iova, level):
    return (iova >> level_shift(level)) & ((1 << LEVEL_BITS) - 1)


def source_id(bus, devfn):
    return (bus << 8) | devfn


class VTdError(Exception):
    pass


class PagePool:
    """Bump allocator of zeroed 4 KiB pages in a guest RAM range that the
    test reserves for IOMMU structures (never a DMA target)."""

    def __init__(self, qt, base, size):
        self.qt, self.next, self.end = qt, base, base + size

    def alloc(self):
        if self.next + PAGE_SIZE > self.end:
            raise VTdError("VT-d structure pool exhausted")
        page = self.next
        self.next += PAGE_SIZE
        self.qt.memset(page, PAGE_SIZE, 0)
        return page


class Domain:
    """A second-level translation domain (one DID, one page-table tree)."""

    def __init__(self, drv, did, levels):
        self.drv, self.did, self.levels = drv, did, levels
        self.root = drv.pool.alloc()
        # Shadow of the directory pages this driver allocated:
        # (level, iova >> level_shift(level + 1)) -> GPA of the table page
        # that holds the level-`level` entries for that IOVA block.
        self.tables = {(levels, 0): self.root}

    def _table(self, iova, level, create):
        """GPA of the level-`level` table that covers iova."""
        if level == self.levels:
            return self.root
        key = (level, iova >> level_shift(level + 1))
        if key in self.tables:
            return self.tables[key]
        if not create:
            return None
        parent = self._table(iova, level + 1, create)
        page = self.drv.pool.alloc()
        entry = parent + 8 * level_index(iova, level + 1)
        # Directory entries get R/W; the leaf decides the real permission.
        self.drv.qt.writeq(entry, page | SL_R | SL_W)
        self.tables[key] = page
        return page

    def pte_addr(self, iova, level=1, create=False):
        table = self._table(iova, level, create)
        if table is None:
            return None
        return table + 8 * level_index(iova, level)

    def read_entry(self, iova, level=1):
        addr = self.pte_addr(iova, level)
        return None if addr is None else self.drv.qt.readq(addr)


class VTd:
    def __init__(self, qt, pool_base, pool_size, base=DMAR_BASE_Q35,
                 queued=False, levels=4):
        self.qt = qt
        self.base = base
        self.pool = PagePool(qt, pool_base, pool_size)
        self.queued = queued
        self.levels = levels
        self.domains = {}
        self.log = []          # human-readable list of what the driver did
        self.cap = self.ecap = 0
        self.iro = 0
        self.root_table = None
        self.ctx_tables = {}
        self.iq_base = None
        self.iq_tail = 0
        self.iq_entries = 0
        self.wait_status = None

    # ---- register access -------------------------------------------------
    def rd32(self, off):
        return self.qt.readl(self.base + off)

    def wr32(self, off, val):
        self.qt.writel(self.base + off, val)

    def rd64(self, off):
        return self.qt.readq(self.base + off)

    def wr64(self, off, val):
        self.qt.writeq(self.base + off, val)

    def _wait(self, what, cond, tries=1000):
        for _ in range(tries):
            if cond():
                return
        raise VTdError("VT-d: timeout waiting for %s" % what)

    def _gcmd(self, set_bits=0, clear_bits=0, wait_sts=0, wait_set=True):
        """Issue a Global Command, repeating the enables already in force."""
        sts = self.rd32(GSTS_REG)
        cmd = (sts & GCMD_PERSISTENT) | set_bits
        cmd &= ~clear_bits
        self.wr32(GCMD_REG, cmd)
        if wait_sts:
            self._wait("GSTS 0x%x" % wait_sts,
                       lambda: bool(self.rd32(GSTS_REG) & wait_sts) == wait_set)

    # ---- bring-up ------------------------------------------------------
    def init(self):
        """Read capabilities, install an empty root table, set up
        invalidation, flush all caches.  Translation stays disabled."""
        self.cap = self.rd64(CAP_REG)
        self.ecap = self.rd64(ECAP_REG)
        if not self.cap & CAP_CM:
            raise VTdError("CAP_REG.CM is 0: start intel-iommu with caching-mode=on")
        self.iro = ((self.ecap >> ECAP_IRO_SHIFT) & ECAP_IRO_MASK) * 16
        self.root_table = self.pool.alloc()
        self.wr64(RTADDR_REG, self.root_table | RTADDR_TTM_LEGACY)
        self._gcmd(GCMD_SRTP, wait_sts=GSTS_RTPS)
        self.log.append("root table at 0x%x, SRTP" % self.root_table)
        if self.queued:
            if not self.ecap & ECAP_QI:
                raise VTdError("ECAP_REG.QI is 0: no queued invalidation")
            self.iq_base = self.pool.alloc()          # QS=0: 256 entries
            self.iq_entries = PAGE_SIZE // 16
            self.wait_status = self.pool.alloc()
            self.wr64(IQT_REG, 0)
            self.wr64(IQA_REG, self.iq_base)
            self._gcmd(GCMD_QIE, wait_sts=GSTS_QIES)
            self.iq_tail = 0
            self.log.append("invalidation queue at 0x%x, QIE" % self.iq_base)
        self.invalidate_context_global()
        self.invalidate_iotlb_global()

    def enable_translation(self):
        self._gcmd(GCMD_TE, wait_sts=GSTS_TES)
        self.log.append("TE")

    def disable_translation(self):
        self._gcmd(clear_bits=GCMD_TE, wait_sts=GSTS_TES, wait_set=False)
        self.log.append("TE off")

    # ---- context entries ----------------------------------------------------
    def _context_entry_addr(self, bus, devfn):
        if bus not in self.ctx_tables:
            table = self.pool.alloc()
            self.qt.writeq(self.root_table + 16 * bus, table | ROOT_P)
            self.qt.writeq(self.root_table + 16 * bus + 8, 0)
            self.ctx_tables[bus] = table
        return self.ctx_tables[bus] + 16 * devfn

    def domain(self, did):
        if did not in self.domains:
            self.domains[did] = Domain(self, did, self.levels)
        return self.domains[did]

    def attach(self, bus, devfn, did):
        """Point the device's context entry at domain `did` (second-level
        translation), then invalidate as required for a not-present ->
        present context entry change under Caching Mode (6.1: context-cache
        invalidation with DID 0 ... we use device-selective, which QEMU
        handles by re-syncing the device's address space)."""
        dom = self.domain(did)
        aw = CTX_AW_48 if self.levels == 4 else CTX_AW_39
        ce = self._context_entry_addr(bus, devfn)
        self.qt.writeq(ce + 8, aw | (did << CTX_DID_SHIFT))
        self.qt.writeq(ce, dom.root | CTX_TT_MULTI_LEVEL | CTX_P)
        self.log.append("context %02x:%02x.%x -> DID %d (SLPTPTR 0x%x)"
                        % (bus, devfn >> 3, devfn & 7, did, dom.root))
        self.invalidate_context_device(bus, devfn, did)
        self.invalidate_iotlb_domain(did)
        return dom

    def attach_passthrough(self, bus, devfn, did):
        ce = self._context_entry_addr(bus, devfn)
        self.qt.writeq(ce + 8, CTX_AW_48 | (did << CTX_DID_SHIFT))
        self.qt.writeq(ce, CTX_TT_PASS_THROUGH | CTX_P)
        self.log.append("context %02x:%02x.%x -> pass-through (DID %d)"
                        % (bus, devfn >> 3, devfn & 7, did))
        self.invalidate_context_device(bus, devfn, did)
        self.invalidate_iotlb_domain(did)

    def detach(self, bus, devfn, did):
        """Clear the context entry (device blocked), then invalidate."""
        ce = self._context_entry_addr(bus, devfn)
        self.qt.writeq(ce, 0)
        self.qt.writeq(ce + 8, 0)
        self.log.append("context %02x:%02x.%x cleared" % (bus, devfn >> 3, devfn & 7))
        self.invalidate_context_device(bus, devfn, did)
        self.invalidate_iotlb_domain(did)

    # ---- mapping -------------------------------------------------------------
    def map(self, did, iova, gpa, size, write=True, invalidate=True):
        """Map [iova, iova+size) -> [gpa, ...) with 4 KiB leaf PTEs."""
        dom = self.domain(did)
        perm = SL_R | (SL_W if write else 0)
        for off in range(0, size, PAGE_SIZE):
            pte = dom.pte_addr(iova + off, 1, create=True)
            self.qt.writeq(pte, ((gpa + off) & SL_ADDR_MASK) | perm)
        self.log.append("map DID %d iova 0x%x -> gpa 0x%x size 0x%x"
                        % (did, iova, gpa, size))
        if invalidate:
            self.invalidate_range(did, iova, size)

    def unmap(self, did, iova, size, invalidate=True):
        """Linux-style unmap: zero the leaf PTEs, then invalidate."""
        dom = self.domain(did)
        for off in range(0, size, PAGE_SIZE):
            pte = dom.pte_addr(iova + off, 1)
            if pte is None:
                raise VTdError("unmap of iova 0x%x that has no page table" % (iova + off))
            self.qt.writeq(pte, 0)
        self.log.append("unmap DID %d iova 0x%x size 0x%x (PTEs zeroed)"
                        % (did, iova, size))
        if invalidate:
            self.invalidate_range(did, iova, size, leaf=True)

    def zero_upper_entry(self, did, iova, level=2, invalidate=True):
        """Zero the level-`level` directory entry covering iova (a PDE
        covers 2 MiB) and invalidate the whole block it covered, as a guest
        does when it tears down a page-table page."""
        dom = self.domain(did)
        addr = dom.pte_addr(iova, level)
        if addr is None:
            raise VTdError("no level-%d table for iova 0x%x" % (level, iova))
        self.qt.writeq(addr, 0)
        span = 1 << level_shift(level)
        block = iova & ~(span - 1)
        # Forget the shadow tables below the zeroed entry.
        for key in [k for k in dom.tables if k[0] < level]:
            lvl, prefix = key
            if (prefix << level_shift(lvl + 1)) & ~(span - 1) == block:
                del dom.tables[key]
        self.log.append("zero %s DID %d covering iova 0x%x size 0x%x"
                        % (LEVEL_NAMES[level], did, block, span))
        if invalidate:
            self.invalidate_range(did, block, span)
        return block, span

    # ---- invalidation ---------------------------------------------------------
    def invalidate_range(self, did, iova, size, leaf=False):
        """Page-selective IOTLB invalidation of [iova, iova+size), split into
        naturally aligned power-of-two blocks (the AM field)."""
        mamv = (self.cap >> CAP_MAMV_SHIFT) & 0x3F
        start, end = iova, iova + size
        while start < end:
            am = 0
            while (am < mamv and start % (PAGE_SIZE << (am + 1)) == 0
                   and start + (PAGE_SIZE << (am + 1)) <= end):
                am += 1
            self.invalidate_iotlb_page(did, start, am, leaf)
            start += PAGE_SIZE << am

    def invalidate_context_global(self):
        if self.queued:
            self._qi_submit([(INV_DESC_CC | INV_G_GLOBAL, 0)])
        else:
            self._ccmd(CCMD_ICC | CCMD_CIRG_GLOBAL)

    def invalidate_context_device(self, bus, devfn, did):
        sid = source_id(bus, devfn)
        if self.queued:
            self._qi_submit([(INV_DESC_CC | INV_G_DEVICE_OR_PAGE | (did << 16)
                              | (sid << 32), 0)])
        else:
            self._ccmd(CCMD_ICC | CCMD_CIRG_DEVICE | (sid << CCMD_SID_SHIFT) | did)

    def invalidate_iotlb_global(self):
        if self.queued:
            self._qi_submit([(INV_DESC_IOTLB | INV_G_GLOBAL
                              | INV_IOTLB_DR | INV_IOTLB_DW, 0)])
        else:
            self._iotlb(IOTLB_IVT | IOTLB_IIRG_GLOBAL | IOTLB_DR | IOTLB_DW)

    def invalidate_iotlb_domain(self, did):
        if self.queued:
            self._qi_submit([(INV_DESC_IOTLB | INV_G_DOMAIN | INV_IOTLB_DR
                              | INV_IOTLB_DW | (did << 16), 0)])
        else:
            self._iotlb(IOTLB_IVT | IOTLB_IIRG_DOMAIN | IOTLB_DR | IOTLB_DW
                        | (did << IOTLB_DID_SHIFT))

    def invalidate_iotlb_page(self, did, addr, am, leaf=False):
        ih = IVA_IH if leaf else 0
        self.log.append("  PSI DID %d addr 0x%x am %d" % (did, addr, am))
        if self.queued:
            self._qi_submit([(INV_DESC_IOTLB | INV_G_DEVICE_OR_PAGE | INV_IOTLB_DR
                              | INV_IOTLB_DW | (did << 16), addr | ih | am)])
        else:
            self.wr64(self.iro + IVA_REG_OFF, addr | ih | am)
            self._iotlb(IOTLB_IVT | IOTLB_IIRG_PAGE | IOTLB_DR | IOTLB_DW
                        | (did << IOTLB_DID_SHIFT))

    def _ccmd(self, val):
        self.wr64(CCMD_REG, val)
        self._wait("CCMD.ICC clear", lambda: not self.rd64(CCMD_REG) & CCMD_ICC)

    def _iotlb(self, val):
        off = self.iro + IOTLB_REG_OFF
        self.wr64(off, val)
        self._wait("IOTLB.IVT clear", lambda: not self.rd64(off) & IOTLB_IVT)

    def _qi_submit(self, descs):
        """Queue descriptors plus an Invalidation Wait with Status Write,
        advance IQT_REG, and wait for the status write (6.5.2.8)."""
        self.qt.writel(self.wait_status, 0)
        descs = list(descs) + [(INV_DESC_WAIT | INV_WAIT_SW | INV_WAIT_FN
                                | (1 << 32), self.wait_status)]
        for lo, hi in descs:
            slot = self.iq_base + 16 * self.iq_tail
            self.qt.write(slot, struct.pack("<QQ", lo, hi))
            self.iq_tail = (self.iq_tail + 1) % self.iq_entries
        self.wr64(IQT_REG, self.iq_tail << 4)
        self._wait("invalidation wait status",
                   lambda: self.qt.readl(self.wait_status) == 1)
        if self.rd32(FSTS_REG) & (1 << 4):
            raise VTdError("VT-d: Invalidation Queue Error (FSTS.IQE)")


# ===========================================================================
# Scalable mode (x-scalable-mode=on): the same driver with the scalable-mode
# translation structures, as a Linux guest programs them on hardware that
# reports ECAP_REG.SMTS.  Spec chapters: 9.2 "Scalable-Mode Root Entry",
# 9.4 "Scalable-Mode Context-Entry", 9.5 "Scalable-Mode PASID Directory
# Entry", 9.6 "Scalable-Mode PASID Table Entry", 6.5.2 "Queued Invalidation
# Interface" (6.5.2.2 Context-cache, 6.5.2.3 PASID-cache, 6.5.2.4 IOTLB,
# 6.5.2.5 PASID-based-IOTLB invalidate descriptors, 256-bit descriptors).
#
# The device's requests without PASID use RID_PASID (0 here); its PASID
# table entry selects the translation: PGTT second-stage (the same
# second-level page tables as legacy mode, built by Domain) or
# pass-through.  QEMU checks PASID-cache and PASID-based-IOTLB descriptors
# against a 256-bit queue, so the queue runs with IQA_REG.DW = 1.
# ===========================================================================

ECAP_SLTS = 1 << 46             # Second-stage Translation Support

# --- Scalable-mode root entry (9.2): lower/upper context-table pointers
SM_ROOT_LP = 1 << 0             # Lower Present (devfn 0-127), in the low qword
SM_ROOT_UP = 1 << 0             # Upper Present (devfn 128-255), in the high qword
SM_CTX_ENTRY_SIZE = 32          # 256-bit scalable-mode context entries

# --- Scalable-mode context entry (9.4), qword 0 / qword 1
SM_CTX_P = 1 << 0
SM_CTX_FPD = 1 << 1
SM_CTX_PDTS_SHIFT = 9           # PASID Directory Table Size: 2^(PDTS+7) entries
RID_PASID = 0                   # qword 1 bits 19:0

# --- PASID directory entry (9.5) and PASID table entry (9.6, 512-bit)
PASID_DIR_P = 1 << 0
PASID_ENTRY_SIZE = 64
PE_P = 1 << 0
PE_FPD = 1 << 1
PE_AW_SHIFT = 2                 # Address Width: 2 = 4-level, 1 = 3-level
PE_PGTT_SHIFT = 6               # PASID Granular Translation Type
PGTT_FIRST_STAGE = 1
PGTT_SECOND_STAGE = 2
PGTT_NESTED = 3
PGTT_PASS_THROUGH = 4

# --- IQA_REG: Descriptor Width (256-bit descriptors)
IQA_DW = 1 << 11

# --- 256-bit-only invalidation descriptors
INV_DESC_PIOTLB = 0x6           # PASID-based-IOTLB Invalidate
INV_DESC_PC = 0x7               # PASID-cache Invalidate
INV_PC_G_DOMAIN = 0 << 4        # domain-selective
INV_PC_G_PASID = 1 << 4         # PASID-selective (within a domain)
INV_PC_G_GLOBAL = 3 << 4
INV_PIOTLB_G_PASID = 2 << 4     # all mappings of a PASID in a domain
INV_PIOTLB_G_PAGE = 3 << 4      # page-selective within a PASID


class ScalableVTd(VTd):
    """Scalable-mode VT-d guest driver.  Same API as VTd (map/unmap/
    zero_upper_entry/attach/attach_passthrough/detach/...).

    Differences a test can choose:
      piotlb=True   page-selective invalidations use the PASID-based-IOTLB
                    descriptor (Linux uses it for first-stage domains); the
                    default is the IOTLB descriptor with the domain's DID,
                    which is what Linux issues for second-stage domains.
    detach() tears down the PASID entry and keeps the context entry, as
    Linux does when it blocks a device in scalable mode;
    clear_context() removes the context entry too."""

    def __init__(self, qt, pool_base, pool_size, base=DMAR_BASE_Q35,
                 levels=4, piotlb=False):
        super().__init__(qt, pool_base, pool_size, base=base, queued=True,
                         levels=levels)
        self.piotlb = piotlb
        self.pasid_dirs = {}       # (bus, devfn) -> PASID directory GPA
        self.pasid_tables = {}     # (bus, devfn) -> PASID table GPA (PASIDs 0-63)
        self.pasid_dids = {}       # (bus, devfn) -> DID of the RID_PASID entry

    # ---- bring-up ------------------------------------------------------
    def init(self):
        self.cap = self.rd64(CAP_REG)
        self.ecap = self.rd64(ECAP_REG)
        if not self.cap & CAP_CM:
            raise VTdError("CAP_REG.CM is 0: start intel-iommu with caching-mode=on")
        if not self.ecap & ECAP_SMTS:
            raise VTdError("ECAP_REG.SMTS is 0: start intel-iommu with x-scalable-mode=on")
        if not self.ecap & ECAP_QI:
            raise VTdError("ECAP_REG.QI is 0: scalable mode needs queued invalidation")
        self.iro = ((self.ecap >> ECAP_IRO_SHIFT) & ECAP_IRO_MASK) * 16
        self.root_table = self.pool.alloc()
        self.wr64(RTADDR_REG, self.root_table | RTADDR_SMT)
        self._gcmd(GCMD_SRTP, wait_sts=GSTS_RTPS)
        self.log.append("scalable-mode root table at 0x%x, SRTP" % self.root_table)
        self.iq_base = self.pool.alloc()          # QS=0, DW=1: 128 entries
        self.iq_entries = PAGE_SIZE // 32
        self.wait_status = self.pool.alloc()
        self.wr64(IQT_REG, 0)
        self.wr64(IQA_REG, self.iq_base | IQA_DW)
        self._gcmd(GCMD_QIE, wait_sts=GSTS_QIES)
        self.iq_tail = 0
        self.log.append("256-bit invalidation queue at 0x%x, QIE" % self.iq_base)
        self.invalidate_context_global()
        self.invalidate_pasid_cache_global()
        self.invalidate_iotlb_global()

    # ---- structures -----------------------------------------------------
    def _context_entry_addr(self, bus, devfn):
        """Scalable-mode root entries hold two context-table pointers: the
        lower table for devfn 0-127, the upper one for 128-255, each with
        128 entries of 256 bits."""
        upper = devfn >= 128
        key = (bus, upper)
        if key not in self.ctx_tables:
            table = self.pool.alloc()
            self.qt.writeq(self.root_table + 16 * bus + (8 if upper else 0),
                           table | (SM_ROOT_UP if upper else SM_ROOT_LP))
            self.ctx_tables[key] = table
        return self.ctx_tables[key] + SM_CTX_ENTRY_SIZE * (devfn & 0x7F)

    def _pasid_entry_addr(self, bus, devfn, pasid=RID_PASID):
        """PASID directory (one entry per 64 PASIDs) -> PASID table."""
        key = (bus, devfn)
        if key not in self.pasid_dirs:
            pdir = self.pool.alloc()
            table = self.pool.alloc()
            self.qt.writeq(pdir, table | PASID_DIR_P)
            self.pasid_dirs[key] = pdir
            self.pasid_tables[key] = table
        if pasid >> 6:
            raise VTdError("only PASIDs 0-63 are supported by this driver")
        return self.pasid_tables[key] + PASID_ENTRY_SIZE * (pasid & 0x3F)

    def _write_pasid_entry(self, bus, devfn, qwords):
        pe = self._pasid_entry_addr(bus, devfn)
        # Present bit last: write qwords 1..7 first, then qword 0.
        self.qt.write(pe + 8, struct.pack("<7Q", *(list(qwords[1:]) + [0] * (7 - len(qwords[1:])))))
        self.qt.writeq(pe, qwords[0])

    def _context_present(self, bus, devfn):
        return bool(self.qt.readq(self._context_entry_addr(bus, devfn)) & SM_CTX_P)

    def _set_context(self, bus, devfn):
        """Point the context entry at the device's PASID directory with
        RID_PASID 0 (not-present -> present change)."""
        ce = self._context_entry_addr(bus, devfn)
        pdir = self.pasid_dirs[(bus, devfn)]
        self.qt.write(ce + 8, struct.pack("<3Q", RID_PASID, 0, 0))
        self.qt.writeq(ce, pdir | (0 << SM_CTX_PDTS_SHIFT) | SM_CTX_P)
        self.log.append("sm context %02x:%02x.%x -> PASID dir 0x%x"
                        % (bus, devfn >> 3, devfn & 7, pdir))

    def _install(self, bus, devfn, did, qword0, what):
        """Install the RID_PASID entry (replacing a present one the way
        Linux does: tear down, invalidate, then set up), and make the
        context entry present if it is not."""
        key = (bus, devfn)
        old = self.pasid_dids.get(key)
        if old is not None:
            self._teardown_pasid(bus, devfn)
        self._write_pasid_entry(bus, devfn, [qword0, did])
        self.pasid_dids[key] = did
        self.log.append("PASID %d of %02x:%02x.%x: %s, DID %d"
                        % (RID_PASID, bus, devfn >> 3, devfn & 7, what, did))
        if not self._context_present(bus, devfn):
            self._set_context(bus, devfn)
            self.invalidate_context_device(bus, devfn, did)
        self.invalidate_pasid_cache(did, RID_PASID)
        self.invalidate_iotlb_domain(did)

    def _teardown_pasid(self, bus, devfn):
        """intel_pasid_tear_down_entry(): clear Present, then PASID-cache
        and IOTLB invalidation for the old DID."""
        key = (bus, devfn)
        did = self.pasid_dids.pop(key, None)
        pe = self._pasid_entry_addr(bus, devfn)
        self.qt.writeq(pe, 0)
        self.log.append("PASID %d of %02x:%02x.%x torn down (DID %s)"
                        % (RID_PASID, bus, devfn >> 3, devfn & 7, did))
        if did is not None:
            self.invalidate_pasid_cache(did, RID_PASID)
            self.invalidate_iotlb_domain(did)

    # ---- attach / detach -------------------------------------------------
    def attach(self, bus, devfn, did):
        """Second-stage translation through domain did (PGTT=010b)."""
        dom = self.domain(did)
        aw = 2 if self.levels == 4 else 1
        q0 = (dom.root | (PGTT_SECOND_STAGE << PE_PGTT_SHIFT)
              | (aw << PE_AW_SHIFT) | PE_P)
        self._install(bus, devfn, did, q0,
                      "second-stage (SLPTPTR 0x%x)" % dom.root)
        return dom

    def attach_passthrough(self, bus, devfn, did):
        """Pass-through (PGTT=100b): DMA addresses are host physical."""
        q0 = (PGTT_PASS_THROUGH << PE_PGTT_SHIFT) | PE_P
        self._install(bus, devfn, did, q0, "pass-through")

    def detach(self, bus, devfn, did=None):
        """Block the device: tear down its RID_PASID entry (the context
        entry stays, as in Linux's scalable-mode blocking domain)."""
        self._teardown_pasid(bus, devfn)

    def clear_context(self, bus, devfn, did=0):
        """Remove the context entry as well (device fully detached)."""
        ce = self._context_entry_addr(bus, devfn)
        self.qt.write(ce, b"\0" * SM_CTX_ENTRY_SIZE)
        self.log.append("sm context %02x:%02x.%x cleared" % (bus, devfn >> 3, devfn & 7))
        self.invalidate_context_device(bus, devfn, did)

    # ---- invalidation ---------------------------------------------------
    def invalidate_pasid_cache(self, did, pasid=RID_PASID):
        self._qi_submit([(INV_DESC_PC | INV_PC_G_PASID | (did << 16)
                          | (pasid << 32), 0)])

    def invalidate_pasid_cache_domain(self, did):
        self._qi_submit([(INV_DESC_PC | INV_PC_G_DOMAIN | (did << 16), 0)])

    def invalidate_pasid_cache_global(self):
        self._qi_submit([(INV_DESC_PC | INV_PC_G_GLOBAL, 0)])

    def invalidate_piotlb_pasid(self, did, pasid=RID_PASID):
        self._qi_submit([(INV_DESC_PIOTLB | INV_PIOTLB_G_PASID | (did << 16)
                          | (pasid << 32), 0)])

    def invalidate_iotlb_page(self, did, addr, am, leaf=False):
        if not self.piotlb:
            return super().invalidate_iotlb_page(did, addr, am, leaf)
        ih = IVA_IH if leaf else 0
        self.log.append("  P_IOTLB PSI DID %d PASID %d addr 0x%x am %d"
                        % (did, RID_PASID, addr, am))
        self._qi_submit([(INV_DESC_PIOTLB | INV_PIOTLB_G_PAGE | (did << 16)
                          | (RID_PASID << 32), addr | ih | am)])

    def _qi_submit(self, descs):
        """256-bit descriptors (the upper 128 bits are zero for every
        descriptor used here); IQT_REG.QT is in bits 18:5."""
        self.qt.writel(self.wait_status, 0)
        descs = list(descs) + [(INV_DESC_WAIT | INV_WAIT_SW | INV_WAIT_FN
                                | (1 << 32), self.wait_status)]
        for lo, hi in descs:
            slot = self.iq_base + 32 * self.iq_tail
            self.qt.write(slot, struct.pack("<QQQQ", lo, hi, 0, 0))
            self.iq_tail = (self.iq_tail + 1) % self.iq_entries
        self.wr64(IQT_REG, self.iq_tail << 5)
        self._wait("invalidation wait status",
                   lambda: self.qt.readl(self.wait_status) == 1)
        if self.rd32(FSTS_REG) & (1 << 4):
            raise VTdError("VT-d: Invalidation Queue Error (FSTS.IQE)")
