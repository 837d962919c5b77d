"""Scenario framework: a named case, its expected outcome per build, and
the context a run gets (VM factory, guest VT-d driver, diagnostics).

A case's run(ctx) returns an outcome *label* (a short string such as
"intact", "blocked[vIOMMU]", "stale", "realize-failed[vIOMMU]") computed
from what was observed.  The expectation is data: {"fork": label,
"base": label, ...}.  The runner passes a case on a build when the label
equals the expectation for that build, so a case that behaves the same on
both builds where the series changes behaviour fails on one of them.

Labels used across scenarios:
  migratable              realize ok, no blocker, migration completed
  migratable+warning      same, and QEMU warned (enable-migration=on paths)
  blocked[<reason>]       realize ok, query-migrate blocked-reasons names
                          <reason> and `migrate` was refused
  realize-failed[<reason>] QEMU exited at startup with <reason>
  intact / stale / ...    data outcomes of migration scenarios
"""

import os
import shutil
import traceback

from lib import layout
from lib import qemu
from lib import viommu

# Messages QEMU prints, by short reason key.
REASONS = {
    "vIOMMU": "Migration is currently not supported with vIOMMU enabled",
    "no-dirty-tracking": "doesn't support device and IOMMU dirty tracking",
    "large-memory": "not supported with large memory VM due to dirty tracking limitation",
    "migration-disabled": "Migration is disabled for VFIO device",
}



def reason_key(text):
    for key, msg in REASONS.items():
        if msg in text:
            return key
    return "other:" + text.strip().splitlines()[-1][:120] if text.strip() else "other"


class Case:
    def __init__(self, name, expect, run, doc=""):
        self.name = name          # e.g. "e2e/unmap-during-migration/iommufd/pte"
        self.expect = expect      # {"fork": label, "base": label, "before-x": label}
        self.run = run            # function(ctx) -> label
        self.doc = doc


class Context:
    """Everything one run of one case on one build needs."""

    def __init__(self, case, build, binary):
        self.case = case
        self.build = build
        self.binary = binary
        self.workdir = os.path.join(layout.E2E_OUT, case.name.replace("e2e/", "").replace("/", "_"), build)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir, exist_ok=True)
        self.vms = []
        self.notes = []           # facts observed, printed as diagnostics
        self.measures = {}        # numbers a report may print

    def note(self, text):
        self.notes.append(text)

    def vm(self, name, **kw):
        v = qemu.VM(name, self.binary, self.workdir, **kw)
        self.vms.append(v)
        return v

    def start_pair(self, **kw):
        """Source and destination with the same configuration."""
        src = self.vm("src", **kw).start()
        dst = self.vm("dst", incoming=True, **kw).start()
        return src, dst

    def guest_iommu(self, v, did=1, queued=False):
        """Bring up the guest driver of VM v's vIOMMU (VT-d, virtio-iommu
        or AMD-Vi) and attach the assigned device to domain did with
        translation enabled.  queued: VT-d's invalidation queue."""
        return viommu.bring_up(v, viommu.mode_of(v), did, queued=queued)

    def teardown(self):
        for v in self.vms:
            try:
                v.stop()
            except Exception:
                v.kill()


def startup_label(ctx, err):
    """Label for a VM that failed to start (realize error): the reason of
    its error lines (warnings printed before the error are skipped)."""
    ctx.note("QEMU stderr: " + err.stderr.strip().replace("\n", " | ")[-800:])
    if err.rc is not None and err.rc < 0:
        ctx.note("QEMU was killed by signal %d at startup" % -err.rc)
        return "crashed[signal %d]" % -err.rc
    errors = [l for l in err.stderr.splitlines()
              if "warning:" not in l and not l.startswith("rom: ")]
    return "realize-failed[%s]" % reason_key("\n".join(errors) or err.stderr)


def run_case(case, build, binary):
    """Run one case on one build; return (label, ctx, exception text)."""
    ctx = Context(case, build, binary)
    try:
        label = case.run(ctx)
        exc = None
    except qemu.RealizeError as e:
        label = startup_label(ctx, e)
        exc = None
    except Exception:
        label = "error"
        exc = traceback.format_exc()
    finally:
        ctx.teardown()
    return label, ctx, exc
