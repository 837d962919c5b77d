"""A host whose dirty bitmap queries are slow, so that the final dirty sync
alone takes longer than the downtime limit.

The final dirty sync runs after the source stopped the guest and before it
sends what is left: its time is downtime.  hostsim answers each dirty query
of the source (iommufd IOMMU_HWPT_GET_DIRTY_BITMAP, type1
VFIO_IOMMU_DIRTY_PAGES) late, as a kernel walking the page tables of many
DMA mappings would, so that every sync takes about 500 ms, more than
QEMU's default limit of LIMIT_MS: DELAY_MS per query, for the five RAM
sections queried without a vIOMMU and the one recorded run behind VT-d.
Nothing caps the bandwidth: the data left after the first pass fits the
limit at once.

QEMU 10.2.2 decides the switchover on the data left alone: it switches
over at once and the guest is stopped for longer than the limit
("over-limit", query-migrate's downtime above LIMIT_MS).  With "migration:
Count the last dirty sync's time in the downtime estimate" the migration
keeps iterating (status still "active" after HOLD_S seconds, dirty syncs
still running) and query-migrate's expected-downtime, which includes the
sync, is above the limit; meanwhile the device writes a page, which must
reach the destination; the limit is then raised to RAISED_MS and the
migration completes within it ("held+within-limit").

e2e/slow-dirty-sync/<backend>/no-viommu
  the device DMAs to guest physical addresses (no vIOMMU).
e2e/slow-dirty-sync/<backend>/intel
  behind intel-iommu, through one 4 KiB mapping (base: blocked[vIOMMU],
  legacy realize-failed[vIOMMU] as enable-migration=on).
"""

import time

from lib import backends
from lib import layout
from e2e import guestdma as g
from e2e.scenario import Case
from e2e.scenario import reason_key
from e2e.steps.migration_window import migration_kw
from lib.qmp import QMPError
from lib.migration import TERMINAL

DID = 1
DELAY_MS = {"no-viommu": 100, "intel": 500}
LIMIT_MS = 300
RAISED_MS = 10000
HOLD_S = 6.0
FIX = layout.build_before("Count-the-last-dirty-sync-s-time")
TARGET = {"no-viommu": g.Mapping(0x200000, 0x200000),
          "intel": g.Mapping(0x10000, 0x200000)}


def wait_terminal(vm, timeout):
    """query-migrate once the migration ended, or the last one seen when
    timeout seconds passed first."""
    end = time.monotonic() + timeout
    while True:
        info = vm.qmp.command("query-migrate")
        if info.get("status") in TERMINAL or time.monotonic() > end:
            return info
        time.sleep(0.1)


def held_outcome(ctx, src, dst, target, info):
    """The migration did not switch over: the device writes the target
    page, the limit is raised, and the migration must complete within the
    new limit with the page on the destination."""
    syncs = info.get("ram", {}).get("dirty-sync-count")
    ctx.note("after %.0f s: status %s, %s dirty syncs, expected-downtime %s ms"
             % (HOLD_S, info.get("status"), syncs, info.get("expected-downtime")))
    if info.get("expected-downtime", 0) <= LIMIT_MS:
        return "held+estimate-within-limit"
    reply = g.device_write(src, [target])[0][1]
    if not reply.get("ok"):
        ctx.note("device DMA failed: %s" % reply)
        return "held+dma-failed"
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": RAISED_MS})
    info = wait_terminal(src, 120)
    ctx.note("after raising downtime-limit to %d ms: status %s, downtime %s ms"
             % (RAISED_MS, info.get("status"), info.get("downtime")))
    if info.get("status") != "completed":
        return "held+" + info.get("status", "?")
    if info.get("ram", {}).get("dirty-sync-count", 0) <= syncs:
        return "held+no-sync"
    lost = [gpa for gpa, st in g.check_pages(dst, [target]).items() if st != "new"]
    ctx.measures["pages_compared"] = target.size // g.PAGE
    ctx.measures["pages_lost"] = len(lost)
    if lost:
        return "held+stale"
    ctx.measures["downtime_ms"] = info.get("downtime")
    return "held+within-limit" if info.get("downtime", 0) <= RAISED_MS else "held+over-limit"


def run(ctx, backend, viommu):
    kw = migration_kw(backend)
    src, dst = ctx.start_pair(viommu=viommu or None, **kw)
    target = TARGET[viommu or "no-viommu"]
    if viommu:
        g.map_all(ctx.guest_iommu(src, DID), DID, [target])
    g.fill_old(src, [target])
    src.ctl.add_delay(backends.get(backend).dirty_call, DELAY_MS[viommu or "no-viommu"])

    dst.qmp.command("migrate-incoming", uri="unix:%s/migrate" % dst.sockdir)
    src.qmp.command("migrate-set-parameters", **{"downtime-limit": LIMIT_MS})
    try:
        src.qmp.command("migrate", uri="unix:%s/migrate" % dst.sockdir)
    except QMPError as e:
        return "blocked[%s]" % reason_key(e.desc)
    info = wait_terminal(src, HOLD_S)
    if info.get("status") == "active":
        return held_outcome(ctx, src, dst, target, info)
    # switched over (or failed): the final stage may still be running
    info = wait_terminal(src, 120)
    if info.get("status") != "completed":
        ctx.note("migration: %s %s" % (info.get("status"), info.get("error-desc", "")))
        return info.get("status", "?")
    ctx.measures["downtime_ms"] = info.get("downtime")
    ctx.note("switched over without waiting: downtime %s ms, limit %d ms"
             % (info.get("downtime"), LIMIT_MS))
    return "over-limit" if info.get("downtime", 0) > LIMIT_MS else "within-limit"


def cases():
    out = []
    for backend in ("iommufd", "legacy"):
        out.append(Case("e2e/slow-dirty-sync/%s/no-viommu" % backend,
                        {"fork": "held+within-limit", "base": "over-limit",
                         FIX: "over-limit"},
                        lambda ctx, b=backend: run(ctx, b, None), __doc__))
        # legacy needs enable-migration=on, which the base refuses at realize
        base_intel = "blocked[vIOMMU]" if backend == "iommufd" else "realize-failed[vIOMMU]"
        out.append(Case("e2e/slow-dirty-sync/%s/intel" % backend,
                        {"fork": "held+within-limit", "base": base_intel,
                         FIX: "over-limit"},
                        lambda ctx, b=backend: run(ctx, b, "intel"), __doc__))
    return out
