"""Steps shared by the scenarios in which the device writes guest pages and
the guest then changes its IOMMU state, inside a window: during a migration
(guestdma.migrate_with_window: the pages were already sent, VM and device
running) or while calc-dirty-rate has dirty tracking on
(unmap_reads.dirty_rate_window: no migration, so the base can show what its
unmap path does).

Each scenario supplies what the guest does in the window and how the host
unmaps are judged; the steps here start the VMs, run the window, stop the
case with the label of what got in the way (blocked[...], ordering-lost,
dma-failed, no-tracking, no-sync-read) and, after a migration, turn the judged harvest
and the destination's pages into the case's label.

Not a scenario module (no cases()).
"""

from e2e import guestdma as g
from lib import backends
from e2e.scenario import reason_key
from e2e.steps import unmap_reads as R


def dirty_rate_kw(backend):
    """A device with IOMMU dirty tracking, realizable on the base too (no
    enable-migration=on): dirty tracking comes from calc-dirty-rate."""
    return dict(backend=backend, hostsim_cfg=dict(backends.get(backend).dirty_cfg))


def migration_kw(backend):
    """A device that migrates with IOMMU dirty tracking on the fork."""
    kw = dirty_rate_kw(backend)
    if backends.get(backend).needs_enable_migration:
        kw["enable_migration"] = "on"
    return kw


# The name most cases use for it.
backend_kw = migration_kw


def dma_failed(ctx, replies):
    """"dma-failed" if one of the device's writes in the window failed
    (replies as guestdma.device_write returns them), else None."""
    for m, reply in replies:
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return "dma-failed"
    return None


class MigrationWindow:
    """A source and a destination VM started with vm_kw; run() migrates,
    and in the window the device writes every page of maps, then the guest
    does guest_action()."""

    def __init__(self, ctx, **vm_kw):
        self.ctx = ctx
        self.src, self.dst = ctx.start_pair(**vm_kw)
        # Read before the guest touches its IOMMU, for the report of a
        # refused migration.
        self.reasons = self.src.blocked_reasons()
        self.state = {}         # seq (before the writes), dma (replies), end
        self.result = None      # migration.migrate()'s result
        self.window = None      # hostsim events of the window (src)

    def run(self, maps, guest_action, ballast_gpa=g.BALLAST_GPA):
        """None when the window ran as intended (its events are then in
        self.window), else the label of what stopped the case."""
        src, ctx, state = self.src, self.ctx, self.state

        def action():
            state["seq"] = src.event_seq()
            state["dma"] = g.device_write(src, maps)
            guest_action()
            state["end"] = src.event_seq()

        r = self.result = g.migrate_with_window(src, self.dst, maps, action,
                                                ballast_gpa=ballast_gpa)
        ctx.note("migration: " + r.summary())
        if r.refused:
            ctx.note("blocked-reasons: %s" % self.reasons)
            return "blocked[%s]" % reason_key(r.refused)
        if r.ordering_lost:
            return "ordering-lost"
        stop = dma_failed(ctx, state.get("dma", []))
        if stop:
            return stop
        self.window = R.window_events(src, state["seq"], state["end"])
        return None

    def outcome(self, harvest, maps, ok="read-ok"):
        """The case's label from the judged harvest and the destination:
        "intact" if harvest is ok and every page of maps holds the device's
        data there, else "<harvest>+<intact|stale|migrate-failed>"."""
        ctx = self.ctx
        if not self.result.completed:
            return harvest + "+migrate-failed"
        data = "intact" if not count_lost(ctx, self.dst, maps) else "stale"
        if harvest == ok and data == "intact":
            return "intact"
        return harvest + "+" + data


def count_lost(ctx, dst, maps):
    """How many pages of maps do not hold the device's data on dst; notes
    each page's state and records pages_compared and pages_lost."""
    pages = g.check_pages(dst, maps)
    bad = [gpa for gpa, st in pages.items() if st != "new"]
    ctx.measures["pages_compared"] = len(pages)
    ctx.measures["pages_lost"] = len(bad)
    for gpa, st in sorted(pages.items()):
        ctx.note("destination gpa 0x%x: %s" % (gpa, st))
    return len(bad)


def dirty_rate_run(ctx, v, backend, maps, guest_action, note_window, timeout=30.0):
    """On VM v, inside a calc-dirty-rate window, the device writes every
    page of maps, then the guest does guest_action(); note_window(ctx, v,
    events) reports the window's hostsim events.  Returns (events, None),
    or (None, label of what stopped the case)."""
    state = {}

    def action():
        state["dma"] = g.device_write(v, maps)
        guest_action()

    w = R.dirty_rate_window(v, backend, action, timeout=timeout)
    if w.error:
        ctx.note("dirty-rate: " + w.error)
        # Tracking started but the syncs read nothing from the host: the
        # dirty sync of an IOMMU section found no mapping to read.
        return None, "no-sync-read" if "never read" in w.error else "no-tracking"
    window = R.window_events(v, w.start_seq, w.end_seq)
    note_window(ctx, v, window)
    periodic = R.periodic_reads(window)
    if w.ordering_lost or periodic:
        ctx.note("ordering lost: %s %s" % (w.ordering_lost or "", [R.H.fmt(e) for e in periodic]))
        return None, "ordering-lost"
    stop = dma_failed(ctx, state.get("dma", []))
    if stop:
        return None, stop
    return window, None


# Downtime a migration that finds all RAM dirty at every sync may take.
ALL_DIRTY_DOWNTIME_MS = 2000


def allow_all_dirty(vm):
    """Migration parameters under which a migration that finds all RAM
    dirty at every sync converges (a device no dirty source covers)."""
    vm.qmp.command("migrate-set-parameters", **{"zero-page-detection": "none",
                                                "downtime-limit": ALL_DIRTY_DOWNTIME_MS})
