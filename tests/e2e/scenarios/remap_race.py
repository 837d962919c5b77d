"""A present PTE rewritten in place while the migration syncs.

The VT-d specification lets hardware use either the old or the new
translation of a present entry the guest modified until the guest
invalidates it (6.5 "Invalidation": software must invalidate after
modifying a present entry).  So a device write through the old
translation in that window is legitimate, and the page it wrote must
reach the destination.

  1. guest maps IOVA 0x10000 -> G1 (0x200000); migration iterates, with a
     CPU-dirtied keepalive region and a 1 ms downtime limit so that it
     keeps syncing (as in scenarios/churn.py);
  2. once G1 was sent, the device writes "new" into G1 through the IOVA;
  3. the guest rewrites the PTE to G2 (0x300000) without invalidating;
  4. the test waits for a migration dirty sync (dirty-sync-count grows);
     the sync reads the IOVA's dirty bit from the host IOMMU, which still
     maps G1;
  5. the guest invalidates; QEMU unmaps the old and maps the new target;
  6. switchover; G1 must hold "new" on the destination.

QEMU's periodic sync replays the vIOMMU's mappings to know which IOVAs
to read and where to mark their dirty bits.  Replaying the *current*
page table, the sync of step 4 marks the bit of G1 on G2: G1 arrives
stale ("lost"), as on the commit before "intel_iommu: Replay the
recorded translation of entries not invalidated yet", which replays the
translation the host still maps (the address space's recorded mapping)
instead.  Found by the churn (its in-place "remap" op), made
deterministic here.

Labels: "intact", "lost", "no-sync-in-window" (the sync did not read the
IOVA between steps 3 and 5), "blocked[...]", "realize-failed[...]".
"""

CLEAR_DOC = """A PTE cleared, and the VM stopped for switchover before the
guest invalidated it.

  1. guest maps IOVA 0x10000 -> G1; migration iterates (as above);
  2. once G1 was sent, the device writes "new" into G1 through the IOVA;
  3. the guest zeroes the PTE, as Linux unmaps, and the VM stops for the
     switchover before its invalidation (a vCPU can be stopped between
     the two); the invalidation would happen on the destination;
  4. G1 must hold "new" on the destination.

No UNMAP reaches QEMU's VFIO code on the source, so only a dirty sync
can read the IOVA's dirty bit, the final one at the latest.  Replaying
the current page table, the syncs skip the cleared entry although the
host still maps it: G1 arrives stale ("lost").  With the recorded
mapping replayed the sync reads it: "intact".

Labels: "intact", "lost", "ordering-lost" (a sync read the IOVA between
the device write and the PTE clear), "blocked[...]",
"realize-failed[...]".
"""

import time

from lib import backends
from lib import layout
from e2e import guestdma as g
from lib import hostlog as H
from lib import migration
from lib import viommu as guest_iommus
from e2e.scenario import Case, reason_key
from e2e.steps import iterating
from e2e.steps.migration_window import backend_kw

DID = 1
IOVA = 0x10000
G1 = 0x200000
G2 = 0x300000

FIX = "Read-the-dirty-bits-of-vIOMMU"


def _migrate_through(ctx, src, dst, hook, state):
    """Migrate with the window `hook` in the active phase; the label of a
    migration that did not get as far as the page check, or None."""
    r = migration.migrate(src, dst, pause=False, active_hook=hook,
                          bandwidth=iterating.BANDWIDTH, downtime_limit=1, timeout=60.0)
    ctx.note("migration: " + r.summary().replace(" ORDERING LOST:", " (expected, syncs ran):"))
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if not state.get("dma", {}).get("ok"):
        ctx.note("device DMA: %s" % state.get("dma"))
        return "dma-failed"
    if not r.completed:
        return "migrate-failed"
    return None


def run_remap(ctx, backend, mode="legacy"):
    src, dst = ctx.start_pair(iommu_props=guest_iommus.iommu_props(mode), **backend_kw(backend))
    drv = guest_iommus.bring_up(src, mode, DID)
    m1 = g.Mapping(IOVA, G1)
    m2 = g.Mapping(IOVA, G2)
    drv.map(DID, IOVA, G1, g.PAGE)
    g.fill_old(src, [m1, m2])
    src.qmp.command("migrate-set-parameters",
                    **{"avail-switchover-bandwidth": iterating.BANDWIDTH})
    migration.ballast(src, iterating.BALLAST_GPA, iterating.BALLAST_SIZE)
    state = {}

    def syncs():
        return src.qmp.command("query-migrate").get("ram", {}).get("dirty-sync-count", 0)

    def keepalive(i):
        src.qt.memset(iterating.KEEPALIVE_GPA, iterating.KEEPALIVE_SIZE, (i & 0xFF) or 1)

    def wait_sync(what):
        s0 = syncs()
        t0 = time.monotonic()
        i = 0
        while syncs() == s0:
            if time.monotonic() - t0 > iterating.SYNC_TIMEOUT:
                raise TimeoutError("no dirty sync while waiting for " + what)
            i += 1
            keepalive(i)
            time.sleep(0.01)

    def hook(r):
        keepalive(1)
        # G1 is on the destination with "old" (it was sent)
        t0 = time.monotonic()
        while set(g.check_pages(dst, [m1]).values()) != {"old"}:
            if time.monotonic() - t0 > 30:
                raise TimeoutError("G1 never reached the destination")
            keepalive(2)
            time.sleep(0.01)
        wait_sync("the first pass to end")
        state["dma"] = src.ctl.dma(IOVA, g.PAGE, g.new_pattern(G1))
        state["seq_pte"] = src.event_seq()
        drv.map(DID, IOVA, G2, g.PAGE, invalidate=False)     # PTE rewritten in place
        wait_sync("a sync between the PTE write and its invalidation")
        state["seq_inv"] = src.event_seq()
        drv.invalidate_range(DID, IOVA, g.PAGE)
        src.qmp.command("migrate-set-parameters", **{"downtime-limit": 300})

    failed = _migrate_through(ctx, src, dst, hook, state)
    if failed:
        return failed
    window = [e for e in src.events() if state["seq_pte"] < e["seq"] <= state["seq_inv"]]
    reads = [e for e in window if e.get("call") in (H.GET_DIRTY, H.TYPE1_DIRTY)
             and e.get("iova", -1) <= IOVA < e.get("iova", -1) + (H.length(e) or 0)]
    for e in reads:
        ctx.note("read between PTE write and invalidation: " + H.fmt(e))
    for l in src.trace_lines("vfio_container_query_dirty_bitmap iova=0x%x " % IOVA):
        ctx.note("  trace: " + l)
    if not reads:
        return "no-sync-in-window"
    st = g.check_pages(dst, [m1])[G1]
    ctx.note("destination G1 (0x%x): %s" % (G1, st))
    ctx.measures.update({"pages_compared": 1, "pages_lost": 0 if st == "new" else 1})
    return "intact" if st == "new" else "lost"


def run_clear(ctx, backend, mode="legacy"):
    src, dst = ctx.start_pair(iommu_props=guest_iommus.iommu_props(mode), **backend_kw(backend))
    drv = guest_iommus.bring_up(src, mode, DID)
    m1 = g.Mapping(IOVA, G1)
    drv.map(DID, IOVA, G1, g.PAGE)
    g.fill_old(src, [m1])
    src.qmp.command("migrate-set-parameters",
                    **{"avail-switchover-bandwidth": iterating.BANDWIDTH})
    migration.ballast(src, iterating.BALLAST_GPA, iterating.BALLAST_SIZE)
    state = {}

    def hook(r):
        t0 = time.monotonic()
        while set(g.check_pages(dst, [m1]).values()) != {"old"}:
            if time.monotonic() - t0 > 30:
                raise TimeoutError("G1 never reached the destination")
            src.qt.memset(iterating.KEEPALIVE_GPA, iterating.KEEPALIVE_SIZE, 2)
            time.sleep(0.01)
        state["seq_dma"] = src.event_seq()
        state["dma"] = src.ctl.dma(IOVA, g.PAGE, g.new_pattern(G1))
        drv.unmap(DID, IOVA, g.PAGE, invalidate=False)   # never invalidated here
        state["seq_pte"] = src.event_seq()
        src.qmp.command("migrate-set-parameters", **{"downtime-limit": 300})

    failed = _migrate_through(ctx, src, dst, hook, state)
    if failed:
        return failed
    for l in src.trace_lines("vfio_container_query_dirty_bitmap iova=0x%x " % IOVA):
        ctx.note("  trace: " + l)
    early = [e for e in src.events() if state["seq_dma"] < e["seq"] <= state["seq_pte"]
             and e.get("call") in (H.GET_DIRTY, H.TYPE1_DIRTY)
             and e.get("iova", -1) <= IOVA < e.get("iova", -1) + (H.length(e) or 0)]
    if early:
        ctx.note("read between the device write and the PTE clear: " + H.fmt(early[0]))
        return "ordering-lost"
    st = g.check_pages(dst, [m1])[G1]
    ctx.note("destination G1 (0x%x): %s" % (G1, st))
    ctx.measures.update({"pages_compared": 1, "pages_lost": 0 if st == "new" else 1})
    return "intact" if st == "new" else "lost"


def cases():
    before = layout.build_before(FIX)
    out = []
    for backend in ("iommufd", "legacy"):
        blocked = backends.get(backend).base_blocker
        out.append(Case(
            "e2e/remap-in-place-during-sync/%s" % backend,
            {"fork": "intact", "base": blocked, before: "lost"},
            lambda ctx, b=backend: run_remap(ctx, b), __doc__))
        out.append(Case(
            "e2e/clear-before-switchover/%s" % backend,
            {"fork": "intact", "base": blocked, before: "lost"},
            lambda ctx, b=backend: run_clear(ctx, b), CLEAR_DOC))
    return out
