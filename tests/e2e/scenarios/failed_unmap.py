"""A host unmap fails (fault injected in hostsim): the host IOMMU keeps a
mapping QEMU no longer has, and the device can still DMA through it.  No
dirty sync reads the dirty bits of a range QEMU does not know is mapped
(or reads them for the guest's new translation of that IOVA), so no
migration may complete while such a range may still be mapped.  The fork
blocks migration with a reason naming the device and the range
(query-migrate's blocked-reasons, what libvirt reads), retries the
unmap, and lifts the blocker once the unmap succeeds.

e2e/failed-unmap/translation-enable/<backend>
  The guest enables translation with the device in DMA domain 1: the
  pass-through RAM section at 0 leaves the VFIO listener and its host
  unmap (vfio_listener_region_del()) fails with EBUSY, and keeps failing
  until the case lifts the fault, so the identity mapping stays.  The
  guest maps IOVA 0x10000 -> GPA 0x200000 (the host map fails: EEXIST).
  With the fault still on, blocked-reasons must name the device and a
  range holding IOVA 0x10000, and `migrate` must be refused with it; once
  the fault is lifted, QEMU's retry must remove the blocker.  During the
  migration, once both pages were sent, the device writes through IOVA
  0x10000: where a stale identity mapping is left, the data lands in
  guest page 0x10000.  iommufd only: type1 refuses the dirty-bitmap read
  of IOVA 0x10000 inside the larger stale mapping (EINVAL), so on the
  legacy backend the migration already fails at its setup ("ram_save_setup
  failed"), before and after the fix.
e2e/failed-unmap/guest-unmap/<backend>
  The same steps, but the guest maps IOVA 0x10000 -> GPA 0x200000 and
  unmaps it (PTE zeroed, invalidated) before the migration; the host
  unmap, from vfio_iommu_map_notify(), fails with EBUSY, so the mapping
  stays, and the device's write lands in guest page 0x200000, which the
  guest no longer maps.
e2e/failed-unmap/during-migration/<backend>
  The unmap fails while the migration runs: the device is in a
  pass-through domain (IOVA = GPA), writes guest page 0x200000 once it was
  sent, and the guest moves it to a blocking domain, so the RAM section
  leaves the VFIO listener and its host unmap fails with EBUSY.  The page
  is harvested (iommufd reads its dirty bits before the unmap) or not
  (type1 reads them inside the failed unmap ioctl); the test keeps the
  migration iterating (the guest keeps dirtying other memory, downtime
  limit 1 ms) until the page was sent again, and the device then writes
  it once more through the stale mapping.  No dirty sync reads that write
  (nor, on type1, the first one: the page is never sent again).
  On the fork the migration fails at the failed unmap; then a second
  migration runs.  The unmap failed once only: QEMU's second attempt
  removes the range, nothing stale is left, and the second migration
  completes with the page intact ("+next-intact").
e2e/failed-unmap/during-migration-persistent/<backend>
  The same, but every unmap of the range fails until the first migration
  failed: then the blocker must be there (it is added once no migration
  runs), refuse `migrate`, and go once the fault is lifted; the second
  migration completes intact.  Before the blocker, the first failure
  vetoed every later migration, invisibly and for good
  ("+next-failed[unmap]").
e2e/failed-unmap/dirty-rate-read-<once|persistent>/<backend>
  calc-dirty-rate (dirty-bitmap mode, 3 s) measures while the device
  writes the first page of an 8 MiB range mapped with 4 KiB pages and the
  guest unmaps the range; hostsim fails the dirty bitmap read that goes
  with the unmap of that page (iommufd: IOMMU_HWPT_GET_DIRTY_BITMAP; type1:
  VFIO_IOMMU_UNMAP_DMA with its bitmap), once, or (iommufd) every time
  until the unmap is done.  No migration runs, so no migration error
  stops anything: the dirty bits must not be dropped.  The fork retries
  the read with the unmap ("read-on-retry": the page's bit read, none
  lost), and if the read keeps failing unmaps without it and marks every
  page of the range dirty ("marked-all": a rate of at least 2 MB/s).
  Before the blocker fix the retry unmapped without reading ("dropped":
  hostsim discarded the page's dirty bit, the rate is 0).  hostsim cannot
  fail the type1 unmap with bitmap and not the one without, so "marked-all"
  is shown on iommufd only.

Labels:
  blocked[unmap]  blocked-reasons names the device and the range;
                  "+refused": `migrate` was refused with that reason;
                  "+retried": the blocker went once the unmap could succeed
                  (the fix);
  failed[unmap]   the migration failed with an error naming the failed
                  unmap ("vfio_container_dma_unmap"), and the source VM
                  is still running and answers QMP (before the blocker:
                  also every later one);
  lost-pages      the migration completed and a page the device wrote
                  differs between source and destination (the silent
                  loss, the queue just before "vfio: Fail migration after
                  a failed DMA unmap");
  completed-intact, failed-other, source-not-running, fault-not-hit,
  not-unmapped, blocked[...] / realize-failed[...] (the base: the vIOMMU
  blocker).
"""

import re
import struct
import time

from lib.backends import get as backend_record
from lib import layout
from e2e import guestdma as g
from lib import hostlog as H
from lib import migration
from lib import viommu as guest_iommus
from lib.qmp import QMPError
from e2e.scenario import Case, reason_key
from e2e.steps import unmap_reads as R
from e2e.steps.migration_window import backend_kw, dirty_rate_kw, dma_failed

DID = 1
A = g.Mapping(0x10000, 0x200000)
# The guest page at the IOVA itself: where a stale identity mapping of the
# pass-through phase takes the device's write.
IDENTITY = g.Mapping(A.iova, A.iova)
FIX = "Fail-migration-after-a-failed-DMA-unmap"
# The fix that turned the permanent, invisible veto into a blocker.
BLOCKER_FIX = "Block-migration-while-a-failed-DMA-unmap"
DEVICE = "0000:00:05.0"


def unmap_call(backend):
    return backend_record(backend).unmap_call


def fail_unmaps(vm, backend):
    """Fail every host unmap that covers IOVA A with EBUSY (what both
    iommufd and type1 return for a range they cannot unmap now), until
    the case clears the fault."""
    vm.ctl.add_fault(unmap_call(backend), nth=None,
                     iova_range=(A.iova, A.iova + A.size - 1), errno="EBUSY")


def setup_translation_enable(src, backend):
    fail_unmaps(src, backend)
    drv = guest_iommus.bring_up(src, "legacy", DID)
    g.map_all(drv, DID, [A])
    return drv


def setup_guest_unmap(src, backend):
    drv = guest_iommus.bring_up(src, "legacy", DID)
    g.map_all(drv, DID, [A])
    fail_unmaps(src, backend)
    drv.unmap(DID, A.iova, A.size)
    return drv


def unmap_blocker(vm, iova=A.iova):
    """The blocked-reason that names the device and a range holding
    `iova`, or None."""
    for text in vm.blocked_reasons():
        m = re.search(r"DMA unmap of IOVA 0x([0-9a-f]+)-0x([0-9a-f]+) failed", text)
        if DEVICE in text and m and int(m[1], 16) <= iova <= int(m[2], 16):
            return text
    return None


def wait_blocker(vm, present, iova=A.iova, timeout=10.0):
    """Wait until the unmap blocker is there (present) or gone: QEMU adds
    it when no migration runs, and removes it when its retry of the unmap
    succeeds."""
    end = time.monotonic() + timeout
    while bool(unmap_blocker(vm, iova)) != present:
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def blocker_steps(ctx, src, iova=A.iova):
    """With the unmap still failing: the blocker names the device and the
    range, and `migrate` is refused with it; once the unmap can succeed,
    QEMU's retry removes the blocker.  Returns the label's prefix, or
    (None, final label)."""
    text = unmap_blocker(src, iova)
    if not text:
        ctx.note("blocked-reasons: %s" % src.blocked_reasons())
        return "", None
    ctx.note("blocked-reason: " + text)
    try:
        src.qmp.command("migrate", uri="unix:/nonexistent/e2e-refused")
        return None, "blocked[unmap]+not-refused"
    except QMPError as e:
        ctx.note("migrate refused: " + e.desc)
        if DEVICE not in e.desc:
            return None, "blocked[unmap]+refused-other"
    src.ctl.clear_faults()
    if not wait_blocker(src, False, iova):
        return None, "blocked[unmap]+refused+stuck"
    return "blocked[unmap]+refused+retried+", None


def run(ctx, backend, setup):
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(**kw)
    reasons = src.blocked_reasons()
    seq = src.event_seq()
    setup(src, backend)
    setup_events = H.after(src.events(), seq)
    for line in H.fmt_all(setup_events, names=(H.IOAS_MAP, H.IOAS_UNMAP,
                                               H.TYPE1_MAP, H.TYPE1_UNMAP)):
        ctx.note("  before migration: " + line)
    for line in src.trace_lines("vfio_listener_region_del", "vfio_iommu_map_notify")[-8:]:
        ctx.note("  trace: " + line)
    injected = [e for e in H.calls(setup_events, unmap_call(backend)) if e.get("injected")]
    prefix, stop = blocker_steps(ctx, src)
    if stop:
        return stop
    src.ctl.clear_faults()
    pages = [A, IDENTITY]
    g.fill_old(src, pages)
    replies = []

    def action():
        replies.extend(g.device_write(src, [A]))

    r = g.migrate_with_window(src, dst, pages, action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if not injected:
        return "fault-not-hit"
    if not src.alive():
        ctx.note("source exited rc=%s" % src.proc.returncode)
        return "source-not-running"
    status = src.status()                  # QMP must still answer
    ctx.note("source status after the migration: %s" % status)
    if r.completed:
        for _, rep in replies:
            ctx.note("device write through iova 0x%x: %s" % (A.iova, rep))
        bad = {}
        for m in pages:
            a, b = src.qt.read(m.gpa, g.PAGE), dst.qt.read(m.gpa, g.PAGE)
            ctx.note("gpa 0x%x: source %s, destination %s"
                     % (m.gpa, g.page_state(src, m.gpa), g.page_state(dst, m.gpa)))
            if a != b:
                bad[m.gpa] = True
        ctx.measures["pages_compared"] = len(pages)
        ctx.measures["pages_lost"] = len(bad)
        if r.ordering_lost and not bad:
            return "ordering-lost"
        return prefix + ("lost-pages" if bad else "completed-intact")
    if status != "running":
        return "source-not-running"
    return prefix + label_failure(r)


def second_pattern(gpa):
    return 0x5EC0000000000000 | (gpa >> 12)


def keep_iterating_until(src, dst, page, wanted, syncs=4, timeout=30.0):
    """Keep the migration from converging (the guest dirties 4 MiB of other
    memory per round, downtime limit 1 ms) until the destination's page
    holds `wanted`, or `syncs` more dirty syncs ran without sending it
    again (nothing marked it dirty), or the migration left the active
    phase.  Returns the destination's page state then."""
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": 1})
    end = time.monotonic() + timeout
    state, n, first = None, 0, None
    while time.monotonic() < end:
        src.qt.memset(DIRTY_GPA, DIRTY_SIZE, 0x30 + n % 64)
        n += 1
        info = src.qmp.command("query-migrate")
        if info.get("status") != "active":
            break
        count = info.get("ram", {}).get("dirty-sync-count", 0)
        first = count if first is None else first
        state = g.page_state(dst, page)
        if state == wanted or count >= first + syncs:
            break
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": 300})
    return state


# Memory the guest keeps dirtying; apart from the target and the ballast.
DIRTY_GPA = 0x4000000
DIRTY_SIZE = 4 << 20
PT_TARGET = g.Mapping(0x200000, 0x200000)


def label_failure(r):
    if r.status == "failed" and r.error_desc and "vfio_container_dma_unmap" in r.error_desc:
        return "failed[unmap]"
    return "failed-other"


def next_migration(ctx, src, kw, page):
    """A second migration of the source to a new destination: the suffix
    of the label."""
    dst2 = ctx.vm("dst2", incoming=True, **kw).start()
    r = migration.migrate(src, dst2, pause=False)
    ctx.note("second migration: " + r.summary())
    if r.refused:
        return "+next-refused"
    if r.completed:
        same = src.qt.read(page, g.PAGE) == dst2.qt.read(page, g.PAGE)
        ctx.note("second destination gpa 0x%x: %s" % (page, g.page_state(dst2, page)))
        return "+next-intact" if same else "+next-lost"
    if not src.alive() or src.status() != "running":
        return "+next-source-not-running"
    return "+next-" + label_failure(r)


def run_during_migration(ctx, backend, persistent=False):
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(**kw)
    reasons = src.blocked_reasons()
    drv = guest_iommus.bring_up(src, "legacy", DID, passthrough=True)
    m = PT_TARGET
    g.fill_old(src, [m])
    st = {}

    def action():
        st["seq"] = src.event_seq()
        st["dma1"] = g.device_write(src, [m])
        src.ctl.add_fault(unmap_call(backend), nth=None if persistent else 1,
                          iova_range=(m.iova, m.iova + m.size - 1), errno="EBUSY")
        guest_iommus.block(drv, DID)
        if not persistent:
            src.ctl.clear_faults()
        st["end"] = src.event_seq()
        st["resent"] = keep_iterating_until(src, dst, m.gpa, "new")
        if st["resent"] == "new":
            st["dma2"] = g.device_write(src, [m], pattern=second_pattern)

    r = g.migrate_with_window(src, dst, [m], action)
    ctx.note("migration: " + r.summary())
    if r.refused:
        ctx.note("blocked-reasons: %s" % reasons)
        return "blocked[%s]" % reason_key(r.refused)
    if "seq" not in st:
        ctx.note("the window never opened: %s" % r.ordering_lost)
        return "ordering-lost"
    window = [e for e in src.events() if st["seq"] < e["seq"] <= st["end"]]
    for line in H.fmt_all(window, names=(H.GET_DIRTY, H.IOAS_UNMAP, H.TYPE1_UNMAP)):
        ctx.note("  while leaving pass-through: " + line)
    ctx.note("device writes: first %s, second %s; destination page before the "
             "second: %s" % ([x[1] for x in st.get("dma1", [])],
                             [x[1] for x in st.get("dma2", [])], st.get("resent")))
    if not [e for e in H.calls(window, unmap_call(backend)) if e.get("injected")]:
        return "fault-not-hit"
    if not src.alive():
        ctx.note("source exited rc=%s" % src.proc.returncode)
        return "source-not-running"
    status = src.status()                  # QMP must still answer
    ctx.note("source status after the migration: %s" % status)
    if r.completed:
        # Without a second write (the page was never sent again: its first
        # write was not harvested either) the first write is what is lost.
        a, b = src.qt.read(m.gpa, g.PAGE), dst.qt.read(m.gpa, g.PAGE)
        ctx.note("gpa 0x%x: source 0x%016x, destination 0x%016x"
                 % (m.gpa, struct.unpack_from("<Q", a)[0], struct.unpack_from("<Q", b)[0]))
        return "lost-pages" if a != b else "completed-intact"
    if status != "running":
        return "source-not-running"
    label = label_failure(r)
    if label != "failed[unmap]":
        return label
    dst.stop()
    if persistent:
        # The unmap still fails: the blocker comes once the migration
        # ended, and goes once QEMU's retry of the unmap succeeds.
        wait_blocker(src, True, m.iova, timeout=5.0)
        prefix, stop = blocker_steps(ctx, src, m.iova)
        if stop:
            return label + "+" + stop
        src.ctl.clear_faults()
        label += "+" + prefix.rstrip("+") if prefix else ""
    return label + next_migration(ctx, src, kw, m.gpa)


# Mapped and unmapped inside a calc-dirty-rate window: 2,048 pages, one
# host unmap.  All of them marked dirty in a 3 s window is a rate of
# 8,000 MiB / 3,000 ms = 2 MB/s; the device's one page alone rounds to 0.
RATE_RANGE = g.Mapping(0x1000000, 0x1000000, 8 << 20)
RATE_CALC_MS = 3000


def run_dirty_rate(ctx, backend, call, nths):
    """calc-dirty-rate measures while the device writes the range's first
    page and the guest unmaps the range; hostsim fails the call that
    reads its dirty bits at the unmap (one fault rule per entry of nths:
    None fails every such call until the unmap is done)."""
    v = ctx.vm("src", **dirty_rate_kw(backend)).start()
    drv = ctx.guest_iommu(v, DID)
    m = RATE_RANGE
    g.map_all(drv, DID, [m])
    st = {}

    def action():
        st["dma"] = g.device_write(v, [g.Mapping(m.iova, m.gpa)])
        for nth in nths:
            v.ctl.add_fault(call, nth=nth, iova_range=(m.iova, m.iova + m.size - 1),
                            errno="EIO")
        drv.unmap(DID, m.iova, m.size)
        v.ctl.clear_faults()

    w = R.dirty_rate_window(v, backend, action, calc_ms=RATE_CALC_MS, timeout=10.0)
    if w.error:
        ctx.note("dirty-rate: " + w.error)
        return "no-tracking"
    if w.ordering_lost:
        ctx.note(w.ordering_lost)
        return "ordering-lost"
    stop = dma_failed(ctx, st.get("dma", []))
    if stop:
        return stop
    window = R.window_events(v, w.start_seq, w.end_seq)
    for line in H.fmt_all(window, names=(H.GET_DIRTY, H.IOAS_UNMAP, H.TYPE1_UNMAP),
                          limit=12):
        ctx.note("  in the window: " + line)
    for line in v.trace_lines("vfio_container_stale_dma_unmap")[:8]:
        ctx.note("  trace: " + line)
    st = R.wait_dirty_rate(v, timeout=30.0)
    rate = st.get("dirty-rate") if st.get("status") == "measured" else None
    ctx.note("dirty-rate: %s MB/s" % rate)
    if not [e for e in window if e.get("injected")]:
        return "fault-not-hit"
    pages = m.size // g.PAGE
    all_marked = pages * 1000 * g.PAGE // (1 << 20) // RATE_CALC_MS
    # The calls on the page the device wrote (injected ones name no range)
    ours = [e for e in window if "iova" in e and R.covers(e, m.iova, g.PAGE)]
    unmapped = [e for e in H.unmaps_of(ours) if e.get("ret") == 0]
    lost = sum(e.get("lost_dirty_pages", 0) for e in H.unmaps_of(ours))
    reads = [e for e in H.calls(ours, H.GET_DIRTY, H.TYPE1_UNMAP)
             if e.get("ret") == 0 and e.get("dirty_pages", 0) >= 1]
    ctx.measures["dirty_rate"] = rate
    ctx.measures["lost_dirty_pages"] = lost
    if rate is None:
        return "not-measured"
    if rate >= all_marked:
        return "marked-all"
    if not unmapped:
        return "not-unmapped"
    if reads and not lost:
        return "read-on-retry"
    return "dropped" if lost else "other[rate=%s]" % rate


def cases():
    before = layout.build_before(FIX)
    veto = layout.build_before(BLOCKER_FIX)
    out = []
    for name, setup, backends in (
            ("translation-enable", setup_translation_enable, ("iommufd",)),
            ("guest-unmap", setup_guest_unmap, ("iommufd", "legacy"))):
        for backend in backends:
            base = backend_record(backend).base_blocker
            out.append(Case("e2e/failed-unmap/%s/%s" % (name, backend),
                            {"fork": "blocked[unmap]+refused+retried+completed-intact",
                             "base": base, veto: "failed[unmap]", before: "lost-pages"},
                            lambda ctx, b=backend, s=setup: run(ctx, b, s), __doc__))
    for backend in ("iommufd", "legacy"):
        base = backend_record(backend).base_blocker
        out.append(Case("e2e/failed-unmap/during-migration/%s" % backend,
                        {"fork": "failed[unmap]+next-intact", "base": base,
                         veto: "failed[unmap]+next-intact", before: "lost-pages"},
                        lambda ctx, b=backend: run_during_migration(ctx, b), __doc__))
        out.append(Case("e2e/failed-unmap/during-migration-persistent/%s" % backend,
                        {"fork": "failed[unmap]+blocked[unmap]+refused+retried"
                                 "+next-intact", "base": base,
                         veto: "failed[unmap]+next-failed[unmap]", before: "lost-pages"},
                        lambda ctx, b=backend: run_during_migration(ctx, b, True),
                        __doc__))
    for backend, call, name, nths, fork in (
            ("iommufd", H.GET_DIRTY, "once", (1,), "read-on-retry"),
            ("iommufd", H.GET_DIRTY, "persistent", (None,), "marked-all"),
            ("legacy", H.TYPE1_UNMAP, "once", (1,), "read-on-retry")):
        out.append(Case("e2e/failed-unmap/dirty-rate-read-%s/%s" % (name, backend),
                        {"fork": fork, veto: "dropped",
                         "base": "fault-not-hit" if backend == "iommufd" else "not-unmapped"},
                        lambda ctx, b=backend, c=call, n=nths: run_dirty_rate(ctx, b, c, n),
                        __doc__))
    return out
