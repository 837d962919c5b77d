"""Drive a live migration source -> destination over a local UNIX socket.

Two ways to make ordering deterministic.

1. The iterative phase (active_hook + sent + bandwidth): with non-zero
ballast after the pages of interest and a bandwidth cap, the first RAM
pass lasts; the test waits until the destination already holds its pages
(read through the destination's qtest socket), then the device writes and
the guest unmaps while the VM and the device run, and the harvest at unmap
is the only way the dirty bit can survive: the dirty-sync count is checked
unchanged across the window.

2. The pause-before-switchover capability:
the source sends all RAM (the first pass and any further iterations), stops
the VM, and then waits in state "pre-switchover" *before* the final dirty
sync and the device's stop-copy data.  Everything the test does in that
window (device DMA into pages that were already sent, guest unmaps) must be
caught by the final sync or by the harvest at unmap, exactly as writes
between the last iteration and switchover in a real guest.  The VM is
stopped there (and the device is in STOP_COPY), so this window is less
realistic for device DMA than the first; cases use it as a variant.
"""

import os
import time

from lib.qmp import QMPError

TERMINAL = ("completed", "failed", "cancelled")


class MigrationResult:
    def __init__(self):
        self.refused = None          # QMPError text when `migrate` was refused
        self.status = None           # final source status
        self.error_desc = None
        self.info = {}               # final source query-migrate
        self.paused = False          # reached pre-switchover
        self.dst_status = None       # destination run state after migration
        self.dst_exited = None       # destination exit code if it exited
        self.timeline = []           # (seconds, status) seen on the source
        self.ordering_lost = None    # why the intended ordering did not hold
        self.window_syncs = None     # dirty-sync-count before/after active_hook

    @property
    def completed(self):
        return self.status == "completed"

    def summary(self):
        if self.refused:
            return "migrate refused: %s" % self.refused
        s = "status=%s" % self.status
        if self.error_desc:
            s += " error-desc=%r" % self.error_desc
        if self.dst_status:
            s += " destination=%s" % self.dst_status
        if self.ordering_lost:
            s += " ORDERING LOST: " + self.ordering_lost
        if self.dst_exited is not None:
            s += " destination exited rc=%s" % self.dst_exited
        return s


def _wait_status(vm, wanted, timeout, result, t0):
    end = time.monotonic() + timeout
    last = None
    while True:
        info = vm.qmp.command("query-migrate")
        st = info.get("status")
        if st != last:
            result.timeline.append((round(time.monotonic() - t0, 3), st))
            last = st
        if st in wanted:
            return info
        if time.monotonic() > end:
            raise TimeoutError("migration stuck in %r (wanted %s)" % (st, wanted))
        time.sleep(0.02)


def migrate(src, dst, pause=True, on_pause=None, active_hook=None,
            sent=None, bandwidth=None, downtime_limit=None, timeout=120.0):
    """Migrate src to dst (dst started with incoming=True).

    active_hook(result) runs while the migration iterates with the VM and
    the device running: once status is "active" and, if given, sent()
    returns true (typically: the destination already holds the pages the
    hook will have the device write).  A bandwidth cap keeps the first pass
    going meanwhile (the scenario puts non-zero ballast after its pages);
    the cap is lifted after the hook.  The number of dirty syncs before and
    after the hook is recorded: if it changed, or the migration left the
    active phase, result.ordering_lost says so and the scenario's ordering
    assumption does not hold.

    on_pause(result) runs in the pre-switchover window (VM stopped, all RAM
    sent, final sync not yet done).  downtime_limit (ms) lets a migration
    converge whose backend reports every mapped page dirty at every sync
    (type1 without precise tracking).  Returns a MigrationResult."""
    r = MigrationResult()
    uri = "unix:%s" % os.path.join(dst.sockdir, "migrate")
    t0 = time.monotonic()

    dst.qmp.command("migrate-set-capabilities", capabilities=[
        {"capability": "events", "state": True}])
    dst.qmp.command("migrate-incoming", uri=uri)

    caps = [{"capability": "events", "state": True},
            {"capability": "pause-before-switchover", "state": bool(pause)}]
    src.qmp.command("migrate-set-capabilities", capabilities=caps)
    if bandwidth is not None:
        src.qmp.command("migrate-set-parameters", **{"max-bandwidth": bandwidth})
    if downtime_limit is not None:
        src.qmp.command("migrate-set-parameters", **{"downtime-limit": downtime_limit})

    try:
        src.qmp.command("migrate", uri=uri)
    except QMPError as e:
        r.refused = e.desc
        return r

    if active_hook is not None:
        end = time.monotonic() + timeout
        while True:
            info = src.qmp.command("query-migrate")
            st = info.get("status")
            if st != "active" and st != "setup":
                r.ordering_lost = "migration reached %r before the device wrote" % st
                break
            if st == "active" and (sent is None or sent()):
                break
            if time.monotonic() > end:
                raise TimeoutError("pages never reached the destination")
            time.sleep(0.005)
        if not r.ordering_lost:
            s0 = info.get("ram", {}).get("dirty-sync-count")
            active_hook(r)
            info = src.qmp.command("query-migrate")
            s1 = info.get("ram", {}).get("dirty-sync-count")
            r.window_syncs = (s0, s1)
            if info.get("status") != "active" or s0 != s1:
                r.ordering_lost = ("a dirty sync ran inside the window (syncs %s -> %s, "
                                   "status %s)" % (s0, s1, info.get("status")))
        # lift the cap so the migration converges
        src.qmp.command("migrate-set-parameters", **{"max-bandwidth": 0})

    if pause:
        info = _wait_status(src, ("pre-switchover",) + TERMINAL, timeout, r, t0)
        if info["status"] == "pre-switchover":
            r.paused = True
            if on_pause is not None:
                on_pause(r)
            src.qmp.command("migrate-continue", state="pre-switchover")

    info = _wait_status(src, TERMINAL, timeout, r, t0)
    r.info = info
    r.status = info["status"]
    r.error_desc = info.get("error-desc")

    if r.completed:
        end = time.monotonic() + timeout
        while True:
            if not dst.alive():
                r.dst_exited = dst.proc.returncode
                break
            st = dst.status()
            if st != "inmigrate":
                r.dst_status = st
                break
            if time.monotonic() > end:
                r.dst_status = st
                break
            time.sleep(0.02)
    else:
        # A failed source migration cuts the stream; the destination exits.
        try:
            dst.proc.wait(timeout=10)
        except Exception:
            pass
        if not dst.alive():
            r.dst_exited = dst.proc.returncode
    return r


def ballast(vm, gpa, size, byte=0x5A):
    """Fill guest RAM with non-zero data the first pass must send, so that
    under a bandwidth cap the pass lasts (size / cap seconds)."""
    vm.qt.memset(gpa, size, byte)


def ram_stats(result):
    return result.info.get("ram", {})
