"""The prerequisite fix "vfio/iommufd: fix the CPR blocker of
vfio_iommufd_cpr_register_iommufd()" on a kernel without
IOMMU_IOAS_CHANGE_PROCESS (hostsim `kernel = 6.12`, like Debian's 6.12).

QEMU 10.2.2 reads the 0 (success) of migrate_add_blocker_modes() as the
bool false, with no error set, and the vfio-pci realize path then calls
error_prepend() on a NULL error: SIGSEGV before the guest starts, for any
vfio-pci device on the iommufd backend.  With the fix the device realizes
and the CPR blocker the function exists for is installed: query-migrate
shows it under migration modes cpr-transfer and cpr-exec (10.2.2 names
CPR transfer twice where hw/vfio/cpr-legacy.c names transfer and exec;
the fix blocks both, as upstream's 0e387bd1dff4 does).

The cpr-modes case realizes and reads the blockers of each CPR mode.
The build before the fix is the base, which crashes, so the build
before-cpr-exec-unblocked (tests/e2e/build-before.sh: the whole queue
with before/cpr-exec-unblocked.patch, the fix without its CPR exec half)
shows what the CPR exec half changes.

Each case starts a source with iommufd + kernel 6.12, checks the
cpr-transfer blocker, and then does what the build allows: with no
blocker in the normal mode, a live migration during which the device
writes (through its IOMMU) into a guest page that was already sent; the
page must arrive with the device's data.

Builds: base crashes (the bug); upto-01 is the fix alone (the commit
just before it is the base itself): it realizes, but without the series
a vIOMMU still blocks migration; the fork migrates in both cases.

Labels: crashed[signal N] (realize crashed), realize-failed[...],
blocked[<reason>], migratable (migration completed, page intact),
migratable+stale, migrate-failed; prefixed "no-cpr-blocker+" when the
realized VM does not block cpr-transfer.
"""

from lib import layout
from e2e import guestdma as g
from e2e.scenario import Case, reason_key

# The build with the fix alone (the build before it is the base itself).
FIX = "fix-the-CPR-blocker-of-vfio_iommufd_cpr"
DID = 1
CPR_BLOCKER = "does not support IOMMU_IOAS_CHANGE_PROCESS"
# Without a vIOMMU the device's IOVA is the guest physical address.
IDENTITY = g.Mapping(iova=0x200000, gpa=0x200000)
TRANSLATED = g.Mapping(iova=0x10000, gpa=0x200000)


def cpr_transfer_blocked(ctx, src):
    """query-migrate blocked-reasons lists the blockers of the current
    migration mode: look at cpr-transfer's, then go back to normal."""
    src.qmp.command("migrate-set-parameters", mode="cpr-transfer")
    try:
        reasons = src.blocked_reasons()
    finally:
        src.qmp.command("migrate-set-parameters", mode="normal")
    ctx.note("blocked-reasons in mode cpr-transfer: %s" % reasons)
    return any(CPR_BLOCKER in r for r in reasons)


def cpr_modes_blocked(ctx, src):
    """The CPR modes (cpr-transfer, cpr-exec) whose query-migrate
    blocked-reasons list the iommufd CPR blocker."""
    out = []
    for mode in ("cpr-transfer", "cpr-exec"):
        src.qmp.command("migrate-set-parameters", mode=mode)
        try:
            reasons = src.blocked_reasons()
        finally:
            src.qmp.command("migrate-set-parameters", mode="normal")
        ctx.note("blocked-reasons in mode %s: %s" % (mode, reasons))
        if any(CPR_BLOCKER in r for r in reasons):
            out.append(mode)
    return out


def run_cpr_modes(ctx):
    """Labels: cpr-blocked[<modes>] (the CPR blocker is listed in these
    modes, "none" when in neither), crashed[signal N]."""
    kw = dict(backend="iommufd", viommu=False,
              hostsim_cfg={"kernel": "6.12", "dma_logging": "off", "iommu_dirty": "on"})
    src = ctx.vm("src", **kw).start()       # RealizeError -> crashed[signal 11]
    ctx.note("realized on kernel 6.12 (iommufd)")
    return "cpr-blocked[%s]" % (",".join(cpr_modes_blocked(ctx, src)) or "none")


def run(ctx, viommu):
    kw = dict(backend="iommufd", viommu=viommu,
              hostsim_cfg={"kernel": "6.12", "dma_logging": "off", "iommu_dirty": "on"})
    src = ctx.vm("src", **kw).start()       # RealizeError -> crashed[signal 11]
    ctx.note("realized on kernel 6.12 (iommufd)")
    prefix = "" if cpr_transfer_blocked(ctx, src) else "no-cpr-blocker+"
    reasons = src.blocked_reasons()
    ctx.note("blocked-reasons (mode normal): %s" % reasons)
    if reasons:
        return prefix + "blocked[%s]" % reason_key(reasons[0])
    if viommu:
        drv = ctx.guest_iommu(src, DID)
        g.map_all(drv, DID, [TRANSLATED])
        m = TRANSLATED
    else:
        m = IDENTITY
    g.fill_old(src, [m])
    dst = ctx.vm("dst", incoming=True, **kw).start()
    state = {}
    r = g.migrate_with_window(src, dst, [m],
                              lambda: state.setdefault("dma", g.device_write(src, [m])))
    ctx.note("migration: " + r.summary())
    if r.refused:
        return prefix + "refused[%s]" % reason_key(r.refused)
    if r.ordering_lost:
        return prefix + "ordering-lost"
    for _, reply in state.get("dma", []):
        if not reply.get("ok"):
            ctx.note("device DMA failed: %s" % reply)
            return prefix + "dma-failed"
    if not r.completed:
        return prefix + "migrate-failed"
    pages = g.check_pages(dst, [m])
    ctx.note("destination page(s): %s" % {hex(k): v for k, v in pages.items()})
    return prefix + ("migratable" if set(pages.values()) == {"new"} else "migratable+stale")


def cases():
    assert layout.build_before(FIX) == "base", "the prerequisite must come first"
    fix_alone = layout.build_with(FIX)
    return [
        Case("e2e/prerequisite-612/iommufd/no-viommu",
             {"base": "crashed[signal 11]", fix_alone: "migratable", "fork": "migratable"},
             lambda ctx: run(ctx, False), __doc__),
        Case("e2e/prerequisite-612/iommufd/viommu",
             {"base": "crashed[signal 11]", fix_alone: "blocked[vIOMMU]",
              "fork": "migratable"},
             lambda ctx: run(ctx, True), __doc__),
        Case("e2e/prerequisite-612/iommufd/cpr-modes",
             {"base": "crashed[signal 11]", fix_alone: "cpr-blocked[cpr-transfer,cpr-exec]",
              "before-cpr-exec-unblocked": "cpr-blocked[cpr-transfer]",
              "fork": "cpr-blocked[cpr-transfer,cpr-exec]"},
             run_cpr_modes, __doc__),
    ]
