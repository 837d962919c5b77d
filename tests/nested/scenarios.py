"""The nested scenarios: our QEMU (L2) against Debian's real 6.12 VFIO stack.

Each scenario is a function (ctx, build) -> (ok, detail).  `build` is "base"
(unpatched 10.2.2) or "fork" (with the series); each asserts the outcome
expected on that build: on the fork what the series delivers, on the base
the specific failure the series fixes.  `detail` carries the decisive QMP
answer, QEMU message or kernel message.

The `phase` says which VFIO module set must be loaded in L1: "debian" (the
distribution's own modules, legacy type1 container only) or "iommufd"
(the same sources rebuilt with IOMMUFD, VFIO_DEVICE_CDEV, IOMMUFD_DRIVER).
"""

import re
import time

from nested.l2 import QMPError, migrate, wait_dst_running, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP

VIOMMU_MSG = "Migration is currently not supported with vIOMMU enabled"
LARGE_MSG = ("Migration is currently not supported with large memory VM due to "
             "dirty tracking limitation in backend")
E2BIG_MSG = "UNMAP: Size of bitmap too big"
# QEMU's report of a failed DMA unmap from an IOMMU notifier, e.g.
# "vfio_container_dma_unmap(0x.., 0x0, 0x1000000000000) = -7 (Argument list too long)"
# (and the same for a failed map).
UNMAP_ERR_RE = re.compile(r"vfio_container_dma_(?:un)?map\([^)]*\) = -\d+[^\n]*")
# PCI slot of the assigned device, so the VT-d driver knows its source-id.
DEV_SLOT = 4
DEV_DEVFN = DEV_SLOT << 3
TIB = 1 << 40

MIGRATABLE = "x-device-dirty-page-tracking=off,enable-migration=on"


def vfio_dev(uuid, props="", iommufd=False):
    d = "vfio-pci,id=vfio0,sysfsdev=/sys/bus/mdev/devices/%s,addr=%d.0" % (uuid, DEV_SLOT)
    if iommufd:
        d += ",iommufd=iommufd0"
    return d + ("," + props if props else "")


def machine(viommu, ram="256M", iommufd=False):
    a = ["-machine", "q35", "-m", ram]
    if viommu:
        # caching-mode=on: QEMU refuses device assignment behind VT-d without it
        a += ["-device", "intel-iommu,caching-mode=on"]
    if iommufd:
        a += ["-object", "iommufd,id=iommufd0"]
    return a


def first_line(text, needle):
    for line in text.splitlines():
        if needle in line:
            return line.strip()
    return None


def tail(text, n=6):
    lines = [l for l in text.splitlines() if l.strip()]
    return " | ".join(lines[-n:])


# ------------------------------------------------------------ building blocks --
def expect_blocked(ctx, src, what):
    """The base (or a tracking mode the series keeps blocked): `migrate` is
    refused and query-migrate's blocked-reasons names the vIOMMU."""
    reasons = src.qmp.command("query-migrate").get("blocked-reasons", [])
    try:
        src.qmp.command("migrate", uri="unix:%s/never.sock" % ctx.workdir)
        return False, "%s: migrate was accepted (blocked-reasons %s)" % (what, reasons)
    except QMPError as e:
        err = e.desc
    ok = VIOMMU_MSG in err and any(VIOMMU_MSG in r for r in reasons)
    return ok, "%s: migrate -> error %r; blocked-reasons %s" % (what, err, reasons)


def expect_refused(ctx, src):
    """The base with enable-migration=on: the vIOMMU blocker is fatal, so
    realize fails with it; with a running source, `migrate` must be refused."""
    if src.returncode() is None:
        return expect_blocked(ctx, src, "source")
    line = first_line(src.stderr(), VIOMMU_MSG)
    return line is not None, "realize refused (QEMU %s): %s" % (
        src.exit_summary(), line or tail(src.stderr()))


def started(*vms):
    """None if all VMs run, else a failure detail for the first that died."""
    for vm in vms:
        if vm.returncode() is not None:
            return "%s did not start (QEMU %s): %s" % (vm.name, vm.exit_summary(),
                                                       tail(vm.stderr()))
    return None


def expect_migrates(ctx, src, dst, **kw):
    """Migration completes with device state on the wire and a running
    destination.  Returns (ok, detail)."""
    info, err = migrate(src, dst, **kw)
    st = info.get("status")
    vfio = info.get("vfio", {}).get("transferred")
    dst_st = wait_dst_running(dst) if st == "completed" else None
    ok = st == "completed" and bool(vfio) and dst_st == "running"
    detail = "query-migrate status=%s vfio.transferred=%s total=%.2fs dst=%s" % (
        st, vfio, info.get("total-time", 0) / 1000.0, dst_st)
    if err:
        detail += " error=%r" % err
    bad = check_no_unmap_errors(ctx, src, dst)
    if bad:
        return False, detail + "; errors: " + "; ".join(bad)
    return ok, detail


def check_no_unmap_errors(ctx, *vms):
    bad = []
    for vm in vms:
        out = vm.stderr()
        for m in UNMAP_ERR_RE.findall(out):
            bad.append("%s: %s" % (vm.name, m))
        line = first_line(out, E2BIG_MSG)
        if line:
            bad.append("%s: %s" % (vm.name, line))
    return bad


def vtd_setup(ctx, vm, mappings):
    """Play the guest's VT-d driver (tests/lib/viommu/vtd.py): put the device in
    a translated domain, map `mappings` [(iova, gpa, size)], enable TE."""
    from lib.viommu import vtd as vtdmod
    drv = vtdmod.VTd(vm.qt, pool_base=0x800000, pool_size=0x100000, queued=True)
    drv.init()
    drv.attach(0, DEV_DEVFN, 1)
    for iova, gpa, size in mappings:
        drv.map(1, iova, gpa, size)
    drv.enable_translation()
    return drv


def trace_ops(vm, op):
    """Count vfio_iommu_map_notify trace lines of the given op (MAP/UNMAP)."""
    return [l for l in vm.stderr().splitlines()
            if "vfio_iommu_map_notify" in l and ("iommu %s @" % op) in l]


def within_mappings(trace_line):
    """True if a vfio_iommu_map_notify line's range lies inside one mapping."""
    m = re.search(r"@ 0x([0-9a-f]+) - 0x([0-9a-f]+)", trace_line)
    if not m:
        return False
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    return any(iova <= lo and hi < iova + size for iova, _, size in MAPPINGS)


def pages(mappings):
    """IOVA of every 4 KiB page of the mappings: VT-d shadows each guest
    PTE as its own vfio_dma, so the kernel unmaps page by page."""
    return sorted(iova + off for iova, _, size in mappings for off in range(0, size, 0x1000))


def hexlist(values):
    return "[" + ", ".join("0x%x" % v for v in values) + "]"


def rangelist(ranges):
    return "[" + ", ".join("0x%x+0x%x" % r for r in ranges) + "]"


# VFIO sees the VT-d address space as two IOMMU sections, split around the
# interrupt window at 0xfee00000, hence two notifiers; the last mapping sits
# in the upper one, so a teardown must serve both.
MAPPINGS = [(0x100000, 0x400000, 0x4000),      # 4 pages
            (0x200000, 0x600000, 0x1000),
            (0x40000000, 0x700000, 0x2000),     # a second page-table branch
            (0x100000000, 0x800000, 0x1000)]    # above the interrupt window
TRACE = ["-trace", "vfio_iommu_map_notify"]


# ------------------------------------------------------------------ scenarios --
def s_type1_migrate_control(ctx, build):
    """0. Control, no vIOMMU: the type1 bitmap opted in, the real kernel
    migrates mtty source -> destination on both builds (the series changes
    nothing here).  Proves the migration path the other scenarios rely on."""
    src, dst = ctx.pair(machine(False), MIGRATABLE)
    return expect_migrates(ctx, src, dst)


def s_viommu_migrate(ctx, build):
    """1. intel-iommu + mtty, type1 bitmap opted in: the base refuses with the
    vIOMMU blocker, the fork migrates with the device state."""
    src, dst = ctx.pair(machine(True), MIGRATABLE, allow_fail=True)
    if build == "base":
        return expect_refused(ctx, src)
    return (False, started(src, dst)) if started(src, dst) else expect_migrates(ctx, src, dst)


def kernel_unmaps(calls, bitmap):
    """Check the VFIO_IOMMU_UNMAP_DMA calls the kernel saw: every one
    succeeded and had (bitmap=True) or lacked (False) the dirty bitmap flag.
    Returns (ok, description)."""
    flagged = [c for c in calls if c[0] & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP]
    failed = [c for c in calls if c[3] != 0]
    desc = "kernel UNMAP_DMA: %d calls, %d with dirty bitmap, %s" % (
        len(calls), len(flagged),
        "all returned 0" if not failed else "failures %s" % [
            "iova 0x%x size 0x%x -> %d" % (c[1], c[2], c[3]) for c in failed])
    want = len(calls) if bitmap else 0
    return bool(calls) and not failed and len(flagged) == want, desc


def ranges(mappings):
    """(IOVA, size) of every mapping: the guest maps each as contiguous
    pages to contiguous guest memory, so a teardown unmaps each as one
    run ("intel_iommu: Unmap runs of contiguous mappings at a teardown
    under tracking")."""
    return sorted((iova, size) for iova, _, size in mappings)


def unmapped_ranges(calls):
    """(IOVA, size) of the UNMAP_DMA calls."""
    return sorted((iova, size) for _, iova, size, _ in calls)


def unmapped_pages(calls):
    """IOVAs the UNMAP_DMA calls started at (one per page on the fork's
    per-mapping paths)."""
    return sorted(iova for _, iova, _, _ in calls)


def during_dirty_rate(src, action, seconds=4):
    """Run action() while calc-dirty-rate keeps global dirty tracking on
    (the base cannot migrate with a vIOMMU, so this is how both builds get
    the same tracking state).  Returns None or an inconclusive-run reason."""
    # The teardown below takes a fraction of `seconds` even on a loaded
    # machine, and is checked to have happened inside the window.
    src.qmp.command("calc-dirty-rate", **{"calc-time": seconds, "mode": "dirty-bitmap"})
    t0 = time.monotonic()
    while src.qmp.command("query-dirty-rate").get("status") != "measuring":
        if time.monotonic() - t0 > 10:
            return "calc-dirty-rate never started measuring"
        time.sleep(0.02)
    action()
    if src.qmp.command("query-dirty-rate").get("status") != "measuring":
        return "inconclusive: dirty-rate measurement ended before the guest's change finished"
    while src.qmp.command("query-dirty-rate").get("status") == "measuring":
        time.sleep(0.05)
    return None


def s_unmap_during_migration(ctx, build):
    """2. The guest has programmed IOMMU mappings; during migration (paused
    before switchover, so no log sync runs) it unmaps some, Linux-style
    (zero PTEs + page invalidation).  The kernel must see one
    VFIO_IOMMU_UNMAP_DMA with the dirty bitmap flag per unmapped page, all
    succeeding, and the migration complete."""
    src, dst = ctx.pair(machine(True), MIGRATABLE, qtest=True, extra=TRACE, allow_fail=True)
    if build == "base":
        return expect_refused(ctx, src)
    if started(src, dst):
        return False, started(src, dst)
    drv = vtd_setup(ctx, src, MAPPINGS)
    maps = len(trace_ops(src, "MAP"))
    probe = ctx.probe()
    calls = []

    def unmap():
        probe.clear()
        for iova, _, size in MAPPINGS[:2]:
            drv.unmap(1, iova, size)
        calls.extend(probe.unmaps())
    ok, detail = expect_migrates(ctx, src, dst, pause_before_switchover=True, at_pause=unmap)
    kok, kdesc = kernel_unmaps(calls, bitmap=True)
    want = pages(MAPPINGS[:2])
    detail += "; guest MAP notifies=%d; %s at %s" % (maps, kdesc, hexlist(unmapped_pages(calls)))
    if maps == 0:
        return False, detail + "; the guest's mappings never reached VFIO"
    if unmapped_pages(calls) != want:
        return False, detail + "; expected the guest's unmapped pages %s" % hexlist(want)
    return ok and kok, detail


def s_teardown_dirty_tracking(ctx, build):
    """3. Whole address space teardown (the guest clears the device's context
    entry) while dirty tracking is on, mappings under both of VFIO's
    notifiers.  With calc-dirty-rate tracking on both builds: the base's
    one-shot unmap of the whole address width is refused with E2BIG before
    reaching the kernel, leaving the mappings in place; the fork unmaps each
    mapping (a run of pages contiguous in IOVA and guest memory, one
    vfio_dma per page in the kernel) in one call with bitmap, and the kernel
    accepts every call.  On the fork
    the teardown is then repeated during a real migration.  The first part
    uses enable-migration=off so that the same device realizes on both
    builds; dirty tracking does not depend on it."""
    src, dst = ctx.pair(machine(True), "x-device-dirty-page-tracking=off,enable-migration=off",
                        qtest=True, extra=TRACE)
    drv = vtd_setup(ctx, src, MAPPINGS)
    probe = ctx.probe()
    before = len(trace_ops(src, "UNMAP"))
    why = during_dirty_rate(src, lambda: drv.detach(0, DEV_DEVFN, 1))
    if why:
        return False, why
    calls = probe.unmaps()
    out = src.stderr()
    e2big = first_line(out, E2BIG_MSG)
    errs = UNMAP_ERR_RE.findall(out)
    unmaps = trace_ops(src, "UNMAP")[before:]
    want = ranges(MAPPINGS)
    detail = "teardown under dirty-rate tracking: %d UNMAP notifies%s; " % (
        len(unmaps), (" [%s .. %s]" % (unmaps[0].split("@")[-1].strip(),
                                        unmaps[-1].split("@")[-1].strip())) if unmaps else "")
    if build == "base":
        # The refused chunks never reach the kernel; during a migration each
        # such error fails it.
        detail += ("kernel UNMAP_DMA: %d calls (power-of-two chunks over the address "
                   "width); %d chunks refused by QEMU: %r; %r" % (
                       len(calls), len(errs), e2big, errs[0] if errs else None))
        return bool(e2big) and bool(errs), detail
    kok, kdesc = kernel_unmaps(calls, bitmap=True)
    detail += "%s at %s" % (kdesc, rangelist(unmapped_ranges(calls)))
    if e2big or errs:
        return False, detail + "; errors: %r %r" % (e2big, errs)
    outside = [u for u in unmaps if not within_mappings(u)]
    if outside or unmapped_ranges(calls) != want or not kok:
        return False, detail + "; expected exactly the mappings %s%s" % (
            rangelist(want), ", UNMAP notifies outside them: %s" % outside if outside else "")
    # Now the same teardown during a real migration, before switchover.
    src.stop(); dst.stop()
    src, dst = ctx.pair(machine(True), MIGRATABLE, qtest=True, extra=TRACE, prefix="mig-")
    drv = vtd_setup(ctx, src, MAPPINGS)
    mcalls = []

    def teardown():
        probe.clear()
        drv.detach(0, DEV_DEVFN, 1)
        mcalls.extend(probe.unmaps())
    ok, mdetail = expect_migrates(ctx, src, dst, pause_before_switchover=True,
                                  at_pause=teardown)
    kok, kdesc = kernel_unmaps(mcalls, bitmap=True)
    detail += "; teardown during migration: %s, %s" % (kdesc, mdetail)
    if unmapped_ranges(mcalls) != want:
        return False, detail + "; expected exactly the mappings %s, got %s" % (
            rangelist(want), rangelist(unmapped_ranges(mcalls)))
    return ok and kok, detail


def s_leave_passthrough(ctx, build):
    """7. The device leaves passthrough while dirty tracking is on: with
    translation off VFIO maps guest RAM 1:1; the guest then enables
    translation with the device in a domain, so VFIO drops the RAM sections
    (vfio_listener_region_del).  The base unmaps them without reading their
    dirty bits (the kernel sees no bitmap flag); the fork passes an identity
    IOTLB entry and the kernel unmaps every RAM section with bitmap.  Same
    dirty-rate procedure on both builds, then on the fork during a real
    migration."""
    def setup(prefix, props):
        src, dst = ctx.pair(machine(True), props, qtest=True, extra=TRACE, prefix=prefix)
        from lib.viommu import vtd as vtdmod
        drv = vtdmod.VTd(src.qt, pool_base=0x800000, pool_size=0x100000, queued=True)
        drv.init()
        drv.attach(0, DEV_DEVFN, 1)           # translation still off: passthrough
        for iova, gpa, size in MAPPINGS:
            drv.map(1, iova, gpa, size)
        return src, dst, drv

    src, dst, drv = setup("", "x-device-dirty-page-tracking=off,enable-migration=off")
    probe = ctx.probe()
    why = during_dirty_rate(src, drv.enable_translation)
    if why:
        return False, why
    calls = probe.unmaps()
    bad = check_no_unmap_errors(ctx, src)
    want_bitmap = build == "fork"
    kok, kdesc = kernel_unmaps(calls, bitmap=want_bitmap)
    detail = "passthrough -> translated under dirty-rate tracking: %s (RAM sections at %s)" % (
        kdesc, hexlist(unmapped_pages(calls)[:6]) + ("..." if len(calls) > 6 else ""))
    if bad:
        return False, detail + "; errors: " + "; ".join(bad)
    if build == "base" or not kok:
        return kok, detail
    src.stop(); dst.stop()
    src, dst, drv = setup("mig-", MIGRATABLE)
    mcalls = []

    def leave():
        probe.clear()
        drv.enable_translation()
        mcalls.extend(probe.unmaps())
    ok, mdetail = expect_migrates(ctx, src, dst, pause_before_switchover=True, at_pause=leave)
    kok, kdesc = kernel_unmaps(mcalls, bitmap=True)
    return ok and kok, detail + "; during migration: %s, %s" % (kdesc, mdetail)


def _ram_case(ctx, build, size):
    ram = ["-object", "memory-backend-ram,id=ram0,size=%d,reserve=off" % size,
           "-machine", "q35,memory-backend=ram0", "-m", "%dM" % (size >> 20),
           "-cpu", "qemu64,phys-bits=46"]
    vm = ctx.single(ram, MIGRATABLE)
    return vm


def s_ram_above_limit(ctx, build):
    """4a. RAM above the type1 dirty bitmap limit (8 TiB with the kernel's
    values): the fork fails realize with the large-memory message, the base
    has no such check and realizes (its later unmap-with-bitmap would fail)."""
    vm = _ram_case(ctx, build, 8 * TIB + (2 << 20))
    err = first_line(vm.stderr(), LARGE_MSG)
    if build == "fork":
        ok = vm.returncode() is not None and err is not None
        return ok, "8 TiB + 2 MiB: QEMU %s: %s" % (vm.exit_summary(), err or tail(vm.stderr()))
    if vm.returncode() is not None:
        return False, "8 TiB + 2 MiB: base did not start: %s" % tail(vm.stderr())
    st = vm.qmp.command("query-status").get("status")
    return err is None, "8 TiB + 2 MiB: base realized, status %s, no size check" % st


def s_ram_at_limit(ctx, build):
    """4b. Exactly 8 TiB is accepted on both."""
    vm = _ram_case(ctx, build, 8 * TIB)
    if vm.returncode() is not None:
        return False, "8 TiB: QEMU %s: %s" % (vm.exit_summary(), tail(vm.stderr()))
    st = vm.qmp.command("query-status").get("status")
    return first_line(vm.stderr(), LARGE_MSG) is None, "8 TiB: realized, status %s" % st


def base_crashed(src):
    """The base on a kernel without IOMMU_IOAS_CHANGE_PROCESS: realize
    dereferences a NULL Error, QEMU dies of SIGSEGV before QMP answers."""
    ok = src.returncode() == -11
    return ok, "base at realize: QEMU %s before QMP answered%s" % (
        src.exit_summary(), ("; " + tail(src.stderr(), 3)) if src.stderr().strip() else "")


def _iommufd_case(ctx, build, viommu, props, device_tracking):
    src, dst = ctx.pair(machine(viommu, iommufd=True), props, iommufd=True, allow_fail=True,
                        extra=["-trace", "vfio_device_dirty_tracking_start"])
    if build == "base":
        return base_crashed(src)
    if src.returncode() is not None or dst.returncode() is not None:
        bad = src if src.returncode() is not None else dst
        return False, "%s did not start: %s; %s" % (bad.name, bad.exit_summary(),
                                                    tail(bad.stderr()))
    if not device_tracking:
        # Nothing tracks this device's DMA: mtty on iommufd is attached
        # through emulated access (no HWPT, so no IOMMU dirty tracking) and
        # its DMA logging is off.  The fork then reports all guest memory
        # dirty at every iteration ("vfio/container: Report memory dirty
        # when nothing tracks the devices' DMA"), so the migration switches
        # over only once the downtime limit covers all of RAM.
        src.qmp.command("migrate-set-parameters", **{"downtime-limit": 600000})
    ok, detail = expect_migrates(ctx, src, dst)
    # With default properties the device's DMA log is the dirty tracker: its
    # start must show, and the migration only completes if the kernel
    # reported the log (it needs IOMMUFD_DRIVER).
    started_log = first_line(src.stderr(), "vfio_device_dirty_tracking_start")
    detail += "; device DMA logging %s" % ("started" if started_log else "not used")
    return ok and bool(started_log) == device_tracking, detail


def s_iommufd_migrate(ctx, build):
    """5a. iommufd backend (rebuilt modules), no vIOMMU, default properties:
    the base crashes at realize (the prerequisite fix), the fork realizes and
    migrates (mtty's DMA logging, reported through IOMMUFD_DRIVER)."""
    return _iommufd_case(ctx, build, False, "", device_tracking=True)


def s_iommufd_viommu_migrate(ctx, build):
    """5b. iommufd + intel-iommu with device dirty tracking off and
    enable-migration=on: no vIOMMU blocker after the series (no device
    tracking will be used), all memory is reported dirty (no dirty source
    at all) and the migration completes; the base crashes at realize."""
    return _iommufd_case(ctx, build, True, MIGRATABLE, device_tracking=False)


def s_iommufd_ram_above_limit(ctx, build):
    """5d. iommufd with migratable props and RAM above 8 TiB: an iommufd
    container has no type1 bitmap limits, so the size check must not apply
    (nor compute a zero limit from the missing values): the fork realizes;
    the base crashes at realize as in 5a."""
    size = 8 * TIB + (2 << 20)
    args = ["-object", "memory-backend-ram,id=ram0,size=%d,reserve=off" % size,
            "-machine", "q35,memory-backend=ram0", "-m", "%dM" % (size >> 20),
            "-cpu", "qemu64,phys-bits=46", "-object", "iommufd,id=iommufd0"]
    vm = ctx.single(args, MIGRATABLE, iommufd=True)
    if build == "base":
        return base_crashed(vm)
    if vm.returncode() is not None:
        return False, "8 TiB + 2 MiB on iommufd: QEMU %s: %s" % (vm.exit_summary(),
                                                                tail(vm.stderr()))
    st = vm.qmp.command("query-status").get("status")
    return first_line(vm.stderr(), LARGE_MSG) is None, \
        "8 TiB + 2 MiB on iommufd: realized, status %s, no size check" % st


def s_iommufd_viommu_device_tracking(ctx, build):
    """5c. iommufd + intel-iommu, default properties: the device would use
    DMA logging, so the vIOMMU blocker stays on the fork."""
    src, dst = ctx.pair(machine(True, iommufd=True), "", iommufd=True, allow_fail=True)
    if build == "base":
        return base_crashed(src)
    if src.returncode() is not None:
        return False, "source did not start: %s" % tail(src.stderr())
    return expect_blocked(ctx, src, "source")


def s_device_tracking_blocked(ctx, build):
    """6. intel-iommu with default properties (mtty advertises DMA logging):
    still blocked on the fork, as on the base."""
    src, dst = ctx.pair(machine(True), "")
    return expect_blocked(ctx, src, "source (default properties)")


SCENARIOS = [
    # (test name, phase, function)
    ("vfio-type1-migrate-control", "debian", s_type1_migrate_control),
    ("vfio-viommu-migrate", "debian", s_viommu_migrate),
    ("vfio-viommu-unmap-during-migration", "debian", s_unmap_during_migration),
    ("vfio-viommu-teardown-dirty-tracking", "debian", s_teardown_dirty_tracking),
    ("vfio-viommu-leave-passthrough", "debian", s_leave_passthrough),
    ("vfio-ram-above-8tib", "debian", s_ram_above_limit),
    ("vfio-ram-8tib", "debian", s_ram_at_limit),
    ("vfio-viommu-device-tracking-blocked", "debian", s_device_tracking_blocked),
    ("vfio-iommufd-migrate", "iommufd", s_iommufd_migrate),
    ("vfio-iommufd-viommu-migrate", "iommufd", s_iommufd_viommu_migrate),
    ("vfio-iommufd-ram-above-8tib", "iommufd", s_iommufd_ram_above_limit),
    ("vfio-iommufd-viommu-device-tracking-blocked", "iommufd",
     s_iommufd_viommu_device_tracking),
]

# Scenarios that play the guest's VT-d driver (tests/lib/viommu/vtd.py over qtest).
s_unmap_during_migration.needs_vtd = True
s_teardown_dirty_tracking.needs_vtd = True
s_leave_passthrough.needs_vtd = True
