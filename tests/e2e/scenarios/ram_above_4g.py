"""Dirty pages harvested at unmap in guest RAM above 4 GiB.

On q35 with more than 2.75 GiB of RAM, the first 2 GiB are at GPA 0 and
the rest at GPA 0x100000000 onwards; that part is ram_addr 0x80000000
onwards.  Dirty pages are recorded by ram_addr.  The unmap paths of the
nine commits pass the unmapped range's guest physical address where a
ram_addr is expected (docs/behaviour.md [ram-addr]), so a page above 4 GiB the
device wrote and that is then unmapped during migration has its dirty bit
set at the wrong ram_addr: with 3 GiB of RAM, ram_addr 0x100200000 is past
the end of guest RAM and the bit is lost; the destination keeps the page's
old content.  The follow-up "vfio: Mark dirty pages harvested at unmap at
their ram_addr" translates the address first.

Guest: 3 GiB (memory-backend-ram,reserve=off: only what the test writes is
ever touched), target page GPA 0x100200000 = ram_addr 0x80200000.  The
ballast that keeps the first pass busy is placed after the target in send
(ram_addr) order, also above 4 GiB.

e2e/ram-above-4g/unmap-during-migration/<backend>
  DMA domain, IOVA 0x10000 -> GPA 0x100200000; once the page was sent the
  device writes it and the guest zeroes the PTE and invalidates (as Linux).
e2e/ram-above-4g/passthrough-to-blocked/<backend>
  pass-through domain (IOVA = GPA); once the page was sent the device
  writes it and the guest clears the context entry (region_del of the RAM
  section above 4 GiB, whose IOVA is its GPA 0x100000000).

e2e/ram-above-4g/teardown/<backend>
  DMA domain with two mappings, IOVA 0x10000 -> GPA 0x200000 (below 4 GiB)
  and IOVA 0x40000000 -> GPA 0x100200000; once both pages were sent the
  device writes both and the guest clears the context entry (whole
  address space torn down: one unmap per recorded mapping).  Before the
  ram_addr follow-up: "per-mapping+stale" (harvested, marked at the GPA: the page above 4 GiB
  is lost, the one below is not).
e2e/ram-above-4g/unmap-beyond-8g/<backend>
  as unmap-during-migration, with 7 GiB of RAM (2 GiB below 4 GiB, 5 GiB
  from GPA 0x100000000) and the target at GPA 0x200200000 (ram_addr
  0x180200000).  Used as a ram_addr, that GPA lies past the 8 GiB that
  QEMU's first dirty-memory block covers, in a block that does not exist:
  physical_memory_set_dirty_lebitmap() does not check bounds.

e2e/ram-above-4g/dimm-boundary/<backend>
  256 MiB guest with two 128 MiB pc-dimms plugged one after the other:
  GPA 0x100000000 and 0x108000000, ram_addr 0 and 0x8000000 (adjacent in
  both).  The guest maps one page table's 2 MiB block, IOVA 0x200000 ->
  GPA 0x107f00000 in 512 4 KiB pages (the block crosses into the second
  DIMM at its 257th page); once the pages were sent the device writes one
  page in each DIMM and the guest clears the page directory entry.  The
  fork unmaps the block with one host unmap per DIMM, each read at its
  own ram_addr.  Before "vfio/listener: Unmap vIOMMU mappings of two RAM
  regions apart" it is one run across both, which has no single ram_addr:
  the migration fails naming the unmap's -EFAULT ("failed[no-ram]",
  since "vfio: Fail the unmap of a range whose dirty pages cannot be
  marked"), and before that the backend unmapped without reading
  ("no-read+stale": the pages are lost).

fork: "intact" (read before unmap, data on the destination).
base: migration with a vIOMMU refused.
Before the ram_addr follow-up (the nine commits alone): "read-ok+stale":
  the bits are read at unmap but marked on the wrong page (the GPA, or
  the zeroed PTE's 0), the page is lost.
"""

from lib import backends
from lib import layout
from e2e import guestdma as g
from e2e.scenario import Case
from e2e.steps import unmap_reads as R
from e2e.steps.big_ram import big_ram_args
from e2e.steps.migration_window import MigrationWindow, migration_kw
from e2e.steps.passthrough import run_passthrough_to_blocked
from e2e.steps.teardown import run_migration as run_teardown_migration

DID = 1
# The queue just before "vfio: Mark dirty pages harvested at unmap at
# their ram_addr" (the nine commits alone).
BEFORE = layout.build_before("Mark-dirty-pages-harvested-at-unmap")
IOVA = 0x10000


class Layout:
    """Guest RAM size, target page, and ballast after it in ram_addr order."""

    def __init__(self, ram, target, ballast):
        self.ram, self.target, self.ballast = ram, target, ballast

    def vm_kw(self):
        return dict(ram=self.ram, extra_args=big_ram_args(self.ram))


# Two 128 MiB pc-dimms plugged one after the other (their backends are
# created before pc.ram, so they get ram_addr 0 and 0x8000000).
DIMM_ARGS = ["-m", "slots=2,maxmem=1G"] + [a for i in (1, 2) for a in (
    "-object", "memory-backend-ram,id=dimm%d-mem,size=128M,reserve=off" % i,
    "-device", "pc-dimm,id=dimm%d,memdev=dimm%d-mem" % (i, i))]
DIMM_BOUNDARY = 0x108000000
BLOCK = g.Mapping(0x200000, DIMM_BOUNDARY - 0x100000, 0x200000)
# One page in each DIMM; the ballast after them, in the second DIMM.
DIMM_WRITES = [g.Mapping(BLOCK.iova + 0x10000, BLOCK.gpa + 0x10000),
               g.Mapping(BLOCK.iova + 0x12c000, BLOCK.gpa + 0x12c000)]
DIMM_BALLAST = 0x10c000000

# 3 GiB: ram_addr = GPA - 2 GiB above 4 GiB.
SPLIT_3G = Layout("3G", 0x100200000, 0x102000000)      # target ram_addr 0x80200000
# 7 GiB: the target's GPA, misused as a ram_addr, is beyond 8 GiB.
SPLIT_7G = Layout("7G", 0x200200000, 0x202000000)      # target ram_addr 0x180200000


def note_trace(ctx, vm):
    for line in vm.trace_after("iommu UNMAP @ ", 8):
        ctx.note("  trace: " + line)
    for line in vm.trace_lines("vfio_iotlb_ram_addr_not_ram")[-4:]:
        ctx.note("  trace: " + line)


def crashed(vm, wait=5.0):
    """The VM's QEMU was killed by a signal (given a moment to be reaped:
    its sockets close before the process is gone)."""
    if vm.proc is None:
        return False
    try:
        rc = vm.proc.wait(timeout=wait)
    except Exception:
        return False
    return rc < 0


def run_unmap(ctx, backend, layout=SPLIT_3G):
    m = g.Mapping(IOVA, layout.target)
    kw = migration_kw(backend)
    kw.update(layout.vm_kw())
    mw = MigrationWindow(ctx, **kw)
    src = mw.src
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [m])
    g.fill_old(src, [m])
    try:
        stop = mw.run([m], lambda: drv.unmap(DID, m.iova, m.size), ballast_gpa=layout.ballast)
    except Exception:           # the source QEMU may have died under us
        if crashed(src):
            window = R.window_events(src, mw.state.get("seq", -1), 1 << 62)
            ctx.note("source QEMU died (rc %s) during the unmap; last hostsim events:"
                     % src.proc.returncode)
            for line in R.H.fmt_all(window)[-6:]:
                ctx.note("  " + line)
            return "crashed[signal %d]" % -src.proc.returncode
        raise
    if stop:
        return stop
    return judged_outcome(ctx, backend, mw, [m])


def judged_outcome(ctx, backend, mw, maps):
    """The label of a window that ran: how the unmap read the pages of
    maps, and whether the destination holds the device's data."""
    ctx.note("hostsim events during the unmap (src):")
    for line in R.H.fmt_all(mw.window):
        ctx.note("  " + line)
    note_trace(ctx, mw.src)
    read = R.judge(ctx, backend, mw.window, pages=[(m.iova, m.size) for m in maps],
                   focus=True)
    return mw.outcome(read, maps)


def run_passthrough(ctx, backend, layout=SPLIT_3G):
    label = run_passthrough_to_blocked(ctx, backend, target=layout.target,
                                       vm_kw=layout.vm_kw(), ballast_gpa=layout.ballast)
    for v in ctx.vms[:1]:
        if v.alive():
            note_trace(ctx, v)
    return label


def run_teardown(ctx, backend, layout=SPLIT_3G):
    maps = [g.Mapping(0x10000, 0x200000), g.Mapping(0x40000000, layout.target)]
    return run_teardown_migration(ctx, backend, maps=maps, vm_kw=layout.vm_kw(),
                                  ballast_gpa=layout.ballast)


def run_dimm_boundary(ctx, backend):
    kw = migration_kw(backend)
    kw["extra_args"] = DIMM_ARGS
    mw = MigrationWindow(ctx, **kw)
    src = mw.src
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [BLOCK])
    g.fill_old(src, DIMM_WRITES)
    stop = mw.run(DIMM_WRITES, lambda: drv.zero_upper_entry(DID, BLOCK.iova),
                  ballast_gpa=DIMM_BALLAST)
    r = mw.result
    if r is not None and r.status == "failed":
        # The unmap refused to drop what it could not mark (-EFAULT).
        return "failed[%s]" % ("no-ram" if "Bad address" in (r.error_desc or "") else "other")
    if stop:
        return stop
    return judged_outcome(ctx, backend, mw, DIMM_WRITES)


def cases():
    out = []
    cross = layout.build_before("Unmap-vIOMMU-mappings-of-two-RAM-regio")
    skip = layout.build_before("Fail-the-unmap-of-a-range-whose-dirty")
    for backend in ("legacy", "iommufd"):
        base = backends.get(backend).base_blocker
        expect = {"fork": "intact", "base": base, BEFORE: "read-ok+stale"}
        out.append(Case("e2e/ram-above-4g/unmap-during-migration/%s" % backend, dict(expect),
                        lambda ctx, b=backend: run_unmap(ctx, b), __doc__))
        out.append(Case("e2e/ram-above-4g/passthrough-to-blocked/%s" % backend, dict(expect),
                        lambda ctx, b=backend: run_passthrough(ctx, b), __doc__))
        out.append(Case("e2e/ram-above-4g/teardown/%s" % backend,
                        dict(expect, **{BEFORE: "per-mapping+stale"}),
                        lambda ctx, b=backend: run_teardown(ctx, b), __doc__))
        out.append(Case("e2e/ram-above-4g/unmap-beyond-8g/%s" % backend,
                        dict(expect),
                        lambda ctx, b=backend: run_unmap(ctx, b, SPLIT_7G), __doc__))
        out.append(Case("e2e/ram-above-4g/dimm-boundary/%s" % backend,
                        {"fork": "intact", "base": base, cross: "failed[no-ram]",
                         skip: "no-read+stale"},
                        lambda ctx, b=backend: run_dimm_boundary(ctx, b), __doc__))
    return out
