"""Scenario 7: fail-nth sweep.  The idea of the kernel's iommufd selftest
iommufd_fail_nth (fail the Nth allocation, for every N, and check that
the code unwinds cleanly), applied to QEMU's side of the kernel
interfaces.

The scenario swept is the legacy-mode vIOMMU, DMA-domain cell of the
matrix (scenarios/viommu_matrix.py): guest maps A, B, C; live migration;
the device writes through all of them while the migration iterates; the
guest unmaps A (PTE zeroed); at the pause before switchover it zeroes C's
PDE; the destination's pages are compared.

A clean reference run first lists every kernel-interface call the source
QEMU makes (hostsim's event log: ioctls, open, read/write of the
migration data fd, pread/pwrite of device regions; the device's own DMA
and close(), which the model never fails, are not QEMU calls).  Then the
scenario is re-run once per call: for the n-th call named C, the source
starts with the hostsim rule "fault = C nth=n errno=E", which fails that
one call before the model acts, with the errno the kernel returns there:
ENOMEM (what fail-nth injects: every ioctl path allocates) for ioctls and
open, EIO for reads and writes of the device's regions and data fd.

For every point the requirement is: QEMU does not crash or hang; the
source VM keeps running and answers QMP; and either the migration
completes with every page equal to what the device (or the guest) last
wrote, or it fails with an error (failed migration with error-desc, a
refused `migrate`, or a startup that ends with an error message).

Outcome classes (counted, printed by report_table):
  completed-intact   migration completed, all pages equal
  failed-cleanly     migration failed with an error, source running
  refused            `migrate` refused with an error (e.g. a blocker)
  startup-error      QEMU exited at startup with an error message, rc 1
  not-reached        the n-th call did not happen in this run (timing)
and failures: crashed, hung, source-not-running, lost-pages, error, and
  upstream-abort: QEMU 10.2.2's hw_error() at startup when a RAM
  section cannot be mapped, which the base shows at the same point.

make check runs every point of the calls that map, unmap, track dirty
pages or drive the device's migration state, and every 4th point of the
others (device setup, region info, config space); E2E_FAILNTH_STRIDE=k
changes that k, and tests/e2e/stress runs all points (k=1).  The output
says which points ran.
"""

import os
import shutil
import subprocess
import time
import traceback

from lib import backends
from lib import layout
from e2e import guestdma as g
from lib import migration
from lib import viommu as guest_iommus
from lib import qemu
from lib.qmp import QMPError
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import backend_kw
from e2e.steps.matrix import A, B, C, DMA_DID

TARGETS = [A, B] + C
RAM_TOP = 256 << 20              # the VMs' RAM (qemu.VM default); all below 4 GiB
HW_ERROR = "hardware error: vfio: DMA mapping failed, unable to continue"
NOT_QEMU_CALLS = ("dma", "close", "unhandled")
# "upstream-abort" is counted and listed, but it fails the sweep: the fork
# refuses to start instead (docs/behaviour.md [dma-map-failure]).
OK_OUTCOMES = ("completed-intact", "failed-cleanly", "refused", "startup-error",
               "not-reached")
DEFAULT_STRIDE = int(os.environ.get("E2E_FAILNTH_STRIDE", "0") or 0)
OTHER_STRIDE = 4                 # make check: every 4th point of the other calls
VIOMMU_CALLS = {"IOMMU_IOAS_MAP", "IOMMU_IOAS_UNMAP", "IOMMU_HWPT_GET_DIRTY_BITMAP",
                "VFIO_IOMMU_MAP_DMA", "VFIO_IOMMU_UNMAP_DMA", "VFIO_IOMMU_DIRTY_PAGES"}
FOCUS_CALLS = {"IOMMU_IOAS_MAP", "IOMMU_IOAS_UNMAP", "IOMMU_HWPT_SET_DIRTY_TRACKING",
               "IOMMU_HWPT_GET_DIRTY_BITMAP", "VFIO_IOMMU_MAP_DMA", "VFIO_IOMMU_UNMAP_DMA",
               "VFIO_IOMMU_DIRTY_PAGES", "VFIO_DEVICE_FEATURE", "VFIO_MIG_GET_PRECOPY_INFO",
               "read", "write"}


def errno_for(call):
    """The errno the kernel can return for this call.  Reads and writes of
    device regions and of the migration data fd: EIO.  Unmaps do not
    allocate when they remove whole mappings (all QEMU asks for):
    iommufd's iopt_unmap_iova_range() fails with EBUSY (an area being
    mapped or unmapped concurrently) and type1's vfio_dma_do_unmap() with
    EBUSY too (pinned pages not released), so EBUSY.  Everything else
    allocates on its way (fail-nth's injection point): ENOMEM."""
    if call in ("read", "write", "pread", "pwrite"):
        return "EIO"
    if call in ("IOMMU_IOAS_UNMAP", "VFIO_IOMMU_UNMAP_DMA"):
        return "EBUSY"
    return "ENOMEM"


def _stop(vms):
    for v in vms:
        try:
            v.stop(timeout=5)
        except Exception:
            v.kill()


def _finish_on_source(src, timeout):
    """Wait for the source's migration to end; a MigrationResult or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        info = src.qmp.command("query-migrate")
        st = info.get("status")
        if st == "pre-switchover":
            src.qmp.command("migrate-continue", state="pre-switchover")
        elif st in migration.TERMINAL:
            r = migration.MigrationResult()
            r.info, r.status, r.error_desc = info, st, info.get("error-desc")
            return r
        time.sleep(0.02)
    return None


def run_once(workdir, binary, backend, fault=None, timeout=30.0, startup_only_config=False,
             viommu="intel"):
    """One run of the swept scenario.  Returns (outcome, facts, src_events).
    startup_only_config: leave enable-migration at its default (to compare
    the startup of a build that refuses enable-migration=on with a vIOMMU).
    viommu: "intel" (VT-d, legacy mode), "virtio" or "amd"."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    kw = backend_kw(backend)
    kw["viommu"] = viommu
    if startup_only_config:
        kw.pop("enable_migration", None)
    cfg = dict(kw.pop("hostsim_cfg"))
    src_cfg = dict(cfg)
    if fault:
        src_cfg["fault"] = fault
    facts = []
    vms = []
    src = qemu.VM("src", binary, workdir, hostsim_cfg=src_cfg, **kw)
    vms.append(src)
    try:
        try:
            src.start(timeout=timeout)
        except qemu.RealizeError as e:
            lines = [l for l in e.stderr.splitlines() if "qemu" in l]
            facts.append("startup: rc=%s %s" % (e.rc, " | ".join(lines)[-400:]))
            if e.rc is not None and e.rc < 0:
                return "crashed", facts, src.events()
            errors = [l for l in e.stderr.splitlines() if "warning:" not in l and l.strip()]
            if e.rc == 1 and errors:
                return "startup-error", facts, src.events()
            return "error", facts, src.events()
        dst = qemu.VM("dst", binary, workdir, incoming=True, hostsim_cfg=cfg, **kw)
        vms.append(dst)
        dst.start(timeout=timeout)
        replies = []
        drv = guest_iommus.bring_up(src, "legacy" if viommu == "intel" else viommu, DMA_DID)
        g.map_all(drv, DMA_DID, TARGETS)
        g.fill_old(src, TARGETS)

        def action():
            # one DMA per page: a page whose mapping failed faults, keeps "old"
            for m in TARGETS:
                for iova, gpa in m.pages():
                    replies.append((gpa, src.ctl.dma(iova, g.PAGE, g.new_pattern(gpa))))
            drv.unmap(DMA_DID, A.iova, A.size)

        def on_pause(r):
            if viommu == "virtio":
                for m in C:
                    drv.unmap(DMA_DID, m.iova, m.size)
            else:
                drv.zero_upper_entry(DMA_DID, C[0].iova, level=2)

        try:
            r = g.migrate_with_window(src, dst, TARGETS, action, pause=True,
                                      on_pause=on_pause, timeout=timeout)
        except TimeoutError as e:
            facts.append("timeout: %s" % e)
            return "hung", facts, src.events()
        except (OSError, EOFError) as e:
            # The destination went away under the test's feet (a failed
            # source migration cuts the stream and the destination exits
            # while the test reads its RAM): follow the source alone.  The
            # exiting destination may not be reaped yet: give it a moment.
            if dst.alive():
                try:
                    dst.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if not src.alive() or dst.alive():
                raise
            facts.append("destination exited (rc=%s) during the migration: %r"
                         % (dst.proc.returncode, e))
            r = _finish_on_source(src, timeout)
            if r is None:
                facts.append("the source's migration never ended")
                return "hung", facts, src.events()
        facts.append("migration: " + r.summary())
        if not src.alive():
            lines = [l for l in src.stderr().splitlines() if "qemu" in l]
            facts.append("source exited rc=%s: %s" % (src.proc.returncode, " | ".join(lines)[-400:]))
            return "crashed" if (src.proc.returncode or 0) < 0 else "source-exited", facts, src.events()
        status = src.status()              # QMP must still answer
        if r.refused:
            return "refused", facts, src.events()
        if r.completed:
            # The migration is correct when the destination holds what the
            # (stopped) source holds in every page the device may have
            # written: the guest's targets, and -- where a failed call left
            # the host IOMMU different from the guest's tables -- the page
            # at the IOVA itself (a stale identity mapping of the
            # pass-through phase).
            pages = {gpa for m in TARGETS for _, gpa in m.pages()}
            pages |= {iova for m in TARGETS for iova, _ in m.pages() if iova < RAM_TOP}
            bad = {}
            for gpa in sorted(pages):
                a, b = src.qt.read(gpa, g.PAGE), dst.qt.read(gpa, g.PAGE)
                if a != b:
                    bad[hex(gpa)] = (g.page_state(src, gpa), g.page_state(dst, gpa))
            # informational: did the device's data land where the guest mapped it?
            missed = [hex(gpa) for gpa, rep in replies
                      if rep.get("ok") and g.page_state(src, gpa) != "new"]
            if missed:
                facts.append("device writes that did not land at the guest's target "
                             "(host IOMMU differs from the guest's tables): %s" % missed)
            if bad:
                facts.append("pages differing between source and destination "
                             "(source, destination): %s" % bad)
                return "lost-pages", facts, src.events()
            return "completed-intact", facts, src.events()
        if r.status == "failed" and r.error_desc:
            if status != "running":
                facts.append("source status after failed migration: %s" % status)
                return "source-not-running", facts, src.events()
            return "failed-cleanly", facts, src.events()
        facts.append("migration ended %s without an error" % r.status)
        return "error", facts, src.events()
    except Exception:
        facts.append(traceback.format_exc().strip().splitlines()[-1])
        if not src.alive() and src.proc is not None:
            lines = [l for l in src.stderr().splitlines() if "qemu" in l]
            facts.append("source exited rc=%s: %s" % (src.proc.returncode, " | ".join(lines)[-400:]))
            return ("crashed" if (src.proc.returncode or 0) < 0 else "source-exited"), facts, src.events()
        return "error", facts, src.events()
    finally:
        _stop(vms)


def reference_calls(events):
    """[(call name, count)] of the calls the source QEMU made, in order of
    first appearance."""
    counts = {}
    for e in events:
        c = e.get("call")
        if c in NOT_QEMU_CALLS:
            continue
        counts[c] = counts.get(c, 0) + 1
    return list(counts.items())


def sweep(ctx, backend, stride=None, viommu="intel"):
    t0 = time.monotonic()
    ref_dir = os.path.join(ctx.workdir, "reference")
    outcome, facts, events = run_once(ref_dir, ctx.binary, backend, viommu=viommu)
    for f in facts:
        ctx.note("reference: " + f)
    if outcome != "completed-intact":
        # the base: the vIOMMU blocker (or its realize failure) stops it
        if outcome == "refused":
            return "blocked[%s]" % reason_key(" ".join(facts))
        if outcome == "startup-error":
            return "realize-failed[%s]" % reason_key(" ".join(facts))
        return "reference-" + outcome
    calls = reference_calls(events)
    points = [(c, n) for c, count in calls for n in range(1, count + 1)]
    total = len(points)
    if stride is None:
        stride = DEFAULT_STRIDE or OTHER_STRIDE
    # Every point of the calls that map, unmap, track dirty pages or move
    # the device's migration state; every stride-th of the others (device
    # setup, region info, config space) unless the stride is 1.
    focus = [p for p in points if p[0] in FOCUS_CALLS]
    others = [p for p in points if p[0] not in FOCUS_CALLS]
    if viommu != "intel" and stride != 1:
        # The other vIOMMUs in make check: every other point of the host
        # map, unmap and dirty-read calls, where the vIOMMU makes a
        # difference (AMD-Vi's teardown alone makes dozens of unmaps).
        focus = [p for p in focus if p[0] in VIOMMU_CALLS][::2]
        others = []
    chosen = focus + others[::stride]
    ctx.note("points: all %d of %s; every %d of the other %d"
             % (len(focus), sorted({c for c, _ in focus}), stride, len(others)))
    ctx.note("reference run: %d kernel-interface calls: %s" % (total, calls))
    counts = {}
    failures = []
    upstream = []
    by_call = {}
    for i, (call, n) in enumerate(chosen):
        spec = "%s nth=%d errno=%s" % (call, n, errno_for(call))
        wd = os.path.join(ctx.workdir, "point-%03d" % i)
        outcome, facts, events = run_once(wd, ctx.binary, backend, fault=spec, viommu=viommu)
        if outcome in ("completed-intact", "failed-cleanly", "refused", "startup-error") \
                and not any(e.get("injected") for e in events):
            outcome = "not-reached"
        if outcome == "crashed" and any(HW_ERROR in f for f in facts) \
                and any("startup" in f for f in facts):
            # QEMU 10.2.2's deliberate abort when a RAM section cannot be
            # mapped after the container is set up (vfio_listener_region_add()).
            # The fork refuses to start instead; a point that still aborts
            # is labelled after what the base does there, and fails.
            if not os.access(layout.QEMU_BASE, os.X_OK):
                facts.append("cannot compare with the base: no binary at %s" % layout.QEMU_BASE)
                b_out, b_facts = "missing", []
            else:
                b_out, b_facts, _ = run_once(wd + "-base", layout.QEMU_BASE, backend,
                                             fault=spec, startup_only_config=True,
                                             viommu=viommu)
            shutil.rmtree(wd + "-base", ignore_errors=True)
            if b_out == "crashed" and any(HW_ERROR in f for f in b_facts):
                outcome = "upstream-abort"
                upstream.append(spec)
            else:
                facts.append("base at the same point: %s %s" % (b_out, b_facts))
        counts[outcome] = counts.get(outcome, 0) + 1
        by_call.setdefault(call, {}).setdefault(outcome, 0)
        by_call[call][outcome] += 1
        if outcome not in OK_OUTCOMES:
            failures.append(spec)
            ctx.note("FAULT %s -> %s" % (spec, outcome))
            for f in facts:
                ctx.note("    " + f)
            ctx.note("    logs: %s" % wd)
        else:
            shutil.rmtree(wd, ignore_errors=True)
    secs = time.monotonic() - t0
    ctx.measures.update({"points_total": total, "points_run": len(chosen), "stride": stride,
                         "points_focus": len(focus),
                         "outcomes": counts, "by_call": by_call, "failures": failures,
                         "upstream_aborts": upstream,
                         "seconds": round(secs, 1)})
    ctx.note("swept %d of %d points (every %d), %.0f s: %s"
             % (len(chosen), total, stride, secs, counts))
    return "survives-all" if not failures else "fails[%d]" % len(failures)


def make_case(backend, stride=None, viommu="intel"):
    name = backend if viommu == "intel" else "%s/%s" % (viommu, backend)
    return Case("e2e/fail-nth/%s" % name,
                {"fork": "survives-all",
                 "base": backends.get(backend).base_blocker},
                lambda ctx: sweep(ctx, backend, stride, viommu), __doc__)


def cases():
    """VT-d on both backends; make check sweeps virtio-iommu on iommufd and
    AMD-Vi on legacy, the stress run (E2E_FAILNTH_STRIDE=1) both on both."""
    full = DEFAULT_STRIDE == 1
    out = [make_case("iommufd"), make_case("legacy")]
    for viommu, backend in (("virtio", "iommufd"), ("virtio", "legacy"),
                            ("amd", "iommufd"), ("amd", "legacy")):
        if full or (viommu, backend) in (("virtio", "iommufd"), ("amd", "legacy")):
            out.append(make_case(backend, viommu=viommu))
    return out


def report_table(results):
    from e2e import report
    rows = [r for r in results if r["name"].startswith("e2e/fail-nth/")]
    if not rows:
        return
    report.diag("")
    report.diag("fail-nth sweep (source QEMU's kernel-interface calls, one failed per run):")
    for r in rows:
        m = r.get("measures") or {}
        if "points_total" not in m:
            report.diag("  %s: %s" % (r["name"].replace("e2e/fail-nth/", ""), r["label"]))
            continue
        which = ("all" if m["stride"] == 1 else
                 "all %d map/unmap/dirty-tracking/migration-state points, every %d%s of the rest"
                 % (m.get("points_focus", 0), m["stride"], {2: "nd", 3: "rd"}.get(m["stride"], "th")))
        report.diag("  %s: %s; %d of %d points swept (%s), %.0f s; outcomes: %s"
                    % (r["name"].replace("e2e/fail-nth/", ""), r["label"], m["points_run"],
                       m["points_total"], which, m["seconds"],
                       ", ".join("%s %d" % kv for kv in sorted(m["outcomes"].items()))))
        for f in m.get("failures", [])[:20]:
            report.diag("    failing point: fault = %s" % f)
        if m.get("upstream_aborts"):
            report.diag("    %d points abort in QEMU's vfio_listener_region_add() (\"%s\") at "
                        "startup, on the base too: %s"
                        % (len(m["upstream_aborts"]), HW_ERROR, ", ".join(m["upstream_aborts"])))
