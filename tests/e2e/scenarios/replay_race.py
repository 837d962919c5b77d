"""A dirty sync that runs between a guest's page-table change and its IOTLB
invalidation (fixed by the follow-up "vfio/listener: Read the dirty bits of
vIOMMU mappings from VFIO's record": the sync reads VFIO's record and no
longer replays the guest's tables).

intel_iommu keeps, per address space, an iova tree of what its notifiers
(VFIO) were told is mapped; an invalidation's page walk sends MAP/UNMAP for
the difference between that tree and the guest's page tables.  VFIO's dirty
sync replayed the IOMMU section (to query the dirty bitmap of every present
mapping) before the fix, and vtd_iommu_replay() clears the tree and
re-records what the page tables hold *now*.  A guest writes an entry first
and invalidates it afterwards, so a sync can land in between (any sync:
migration iterations, calc-dirty-rate, dirty-limit):

unmap  the guest zeroes a PTE; a sync runs; the guest invalidates.  The
       tree forgot the mapping, the invalidation sends no UNMAP: the host
       IOMMU keeps translating the IOVA to a page the guest took away
       from the device.  User-visible: the device's DMA to that IOVA
       still lands in guest memory (it must fault), and during migration
       the dirty bits the device left there are never read (neither the
       sync, which only queries present PTEs, nor an unmap, which never
       comes): the page the device wrote arrives stale.
map    the guest writes a PTE; a sync runs; the guest invalidates.  The
       tree recorded the mapping although only the sync's temporary
       notifier heard of it; the invalidation sends no MAP.  User-visible:
       the device's DMA through the new IOVA faults and its data is lost.

Variants:
  dirty-rate  calc-dirty-rate (calc-time 1 s, mode dirty-bitmap) turns dirty
              tracking on for one second without migration, so it runs on
              every build, the base included (its migration is blocked by
              the vIOMMU, its dirty syncs are not).  The guest change is made
              right after the command, the sync at the end of the
              measurement follows it, the guest invalidates once the
              measurement is done.  Then the device DMAs through the IOVA.
  migration   the race during a live migration (VM and device running).
              Once the pages were sent (first pass, bandwidth capped), the
              device writes through a mapping K the guest keeps and, for
              unmap, through M; the guest zeroes M's PTE (unmap) or writes
              it (map) and dirties 16 MiB it already sent, so the migration
              iterates once more; the test waits for that iteration's dirty
              sync, caps the bandwidth further so the migration stays in the
              active phase, and the guest invalidates; for map the device
              then writes through M.  The destination must hold the
              device's data in both pages (K is the control: the ordinary
              sync harvests it on every build).  Before the fix, unmap loses
              the page M (its dirty bits stay in the host IOMMU, unread) and
              map's device write faults.

Each run proves the ordering it relies on: a dirty-bitmap query of K (the
present mapping every replay visits) is logged by hostsim between the
guest's change and its invalidation, otherwise the label is
"no-sync-in-window".

Labels: <host>+<consequence>; host in {unmapped, still-mapped} (the host
unmap of M seen in the event log and M gone from hostsim's mappings) or
{mapped, never-mapped}; consequence in {dma-faults, dma-reaches-page,
dma-ok} (dirty-rate) or {intact, stale, dma-faults} (migration);
"inconsistent" when the event log and the host's mappings disagree.
"ordering-lost" when the migration variant could not place the sync
between the guest's change and its invalidation in the active phase.
"""

import time

from lib import backends
from lib import layout
from e2e import guestdma as g
from lib import hostlog as H
from lib import migration
from lib import viommu as guest_iommus
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import dirty_rate_kw, migration_kw
from e2e.steps.unmap_reads import wait_dirty_rate

FIX = "Read-the-dirty-bits-of-vIOMMU"
DID = 1
M = g.Mapping(0x10000, 0x200000)        # the mapping the guest changes
K = g.Mapping(0x20000, 0x300000)        # kept mapped: every replay queries it
# RAM the guest dirties during the migration variant so that the migration
# iterates once more after the page targets were sent (sent before the
# ballast, after the targets and the VT-d structures).
CHURN_GPA = 0x1000000
CHURN_SIZE = 16 << 20
CHURN_MARK = 0xC4

# Bandwidth cap while the guest invalidates after the sync: the churn then
# takes seconds to send, the migration stays in the active phase.
HOLD_BANDWIDTH = 1 << 20


def covers(e, iova):
    n = H.length(e)
    return "iova" in e and n is not None and e["iova"] <= iova < e["iova"] + n


def queried(events, iova):
    """Dirty-bitmap queries of iova (iommufd or type1)."""
    return [e for e in H.calls(events, H.GET_DIRTY, H.TYPE1_DIRTY) if covers(e, iova)]


def host_maps(vm, iova):
    return any(m["iova"] <= iova < m["iova"] + m["length"]
               for m in vm.ctl.state().get("mappings", []))


def note_events(ctx, title, events):
    ctx.note(title)
    for line in H.fmt_all(events, limit=30):
        ctx.note("  " + line)


def host_unmap_fact(ctx, events, still):
    """events: the host calls of the invalidation; still: whether the host
    IOMMU maps M right after it."""
    unmapped = any(covers(e, M.iova) and e.get("ret") == 0 for e in H.unmaps_of(events))
    ctx.note("after the invalidation: host unmap of M logged: %s; host maps M: %s"
             % (unmapped, still))
    if unmapped != (not still):
        return "inconsistent"
    return "unmapped" if unmapped else "still-mapped"


def host_map_fact(ctx, events, present):
    mapped = any(covers(e, M.iova) and e.get("ret") == 0 for e in H.maps_of(events))
    ctx.note("after the invalidation: host map of M logged: %s; host maps M: %s"
             % (mapped, present))
    if mapped != present:
        return "inconsistent"
    return "mapped" if mapped else "never-mapped"


def dma_consequence(ctx, src, race):
    """The device writes through M now; where does it land?  After the guest
    unmapped M a write that succeeds lands in a page the guest took away
    from the device."""
    reply = src.ctl.dma(M.iova, g.PAGE, g.new_pattern(M.gpa))
    page = g.page_state(src, M.gpa)
    ctx.note("device DMA through M after the invalidation: %s; guest page 0x%x: %s"
             % (reply, M.gpa, page))
    if reply.get("ok") and page == "new":
        return "dma-reaches-page" if race == "unmap" else "dma-ok"
    if not reply.get("ok") and reply.get("error") == "fault" and page == "old":
        return "dma-faults"
    return "dma-odd"


def calc_dirty_rate(ctx, src, change):
    """Run calc-dirty-rate (1 s, dirty-bitmap) with change() made right after
    it started; return the hostsim events from change() to the end of the
    measurement (dirty tracking is off again then)."""
    src.qmp.command("calc-dirty-rate", **{"calc-time": 1, "mode": "dirty-bitmap"})
    seq = src.event_seq()
    change()
    st = wait_dirty_rate(src)
    ctx.note("query-dirty-rate: status %s" % st.get("status"))
    return H.after(src.events(), seq)


def run_dirty_rate(ctx, backend, race, mode="legacy"):
    """mode: the guest's VT-d mode (lib/viommu): the replay is the same
    code in legacy and scalable mode."""
    src = ctx.vm("src", iommu_props=guest_iommus.iommu_props(mode),
                 **dirty_rate_kw(backend)).start()
    drv = ctx.guest_iommu(src, DID) if mode == "legacy" else guest_iommus.bring_up(src, mode, DID)
    if race == "unmap":
        g.map_all(drv, DID, [M, K])
        change = lambda: drv.unmap(DID, M.iova, M.size, invalidate=False)
    else:
        g.map_all(drv, DID, [K])
        change = lambda: drv.map(DID, M.iova, M.gpa, M.size, invalidate=False)
    g.fill_old(src, [M])
    window = calc_dirty_rate(ctx, src, change)
    note_events(ctx, "host calls between the guest's PTE write and its invalidation:", window)
    if not queried(window, K.iova):
        return "no-sync-in-window"
    seq = src.event_seq()
    drv.invalidate_range(DID, M.iova, M.size, leaf=(race == "unmap"))
    events = H.after(src.events(), seq)
    note_events(ctx, "host calls for the invalidation:", events)
    if race == "unmap":
        host = host_unmap_fact(ctx, events, host_maps(src, M.iova))
    else:
        host = host_map_fact(ctx, events, host_maps(src, M.iova))
    return host + "+" + dma_consequence(ctx, src, race)


def run_migration(ctx, backend, race):
    src, dst = ctx.start_pair(**migration_kw(backend))
    drv = ctx.guest_iommu(src, DID)
    g.map_all(drv, DID, [M, K] if race == "unmap" else [K])
    g.fill_old(src, [M, K])
    # The last churn page carries a mark, so the destination shows when the
    # churn region was sent (it must be, for rewriting it to dirty it).
    src.qt.memset(CHURN_GPA + CHURN_SIZE - g.PAGE, g.PAGE, CHURN_MARK)
    migration.ballast(src, g.BALLAST_GPA, g.BALLAST_SIZE)
    st = {}

    def sent():
        return (set(g.check_pages(dst, [M, K]).values()) == {"old"}
                and dst.qt.read(CHURN_GPA + CHURN_SIZE - 8, 8) == bytes([CHURN_MARK]) * 8)

    def syncs():
        info = src.qmp.command("query-migrate")
        return info.get("status"), info.get("ram", {}).get("dirty-sync-count")

    def action(r):
        status, s0 = syncs()
        # unmap: the device writes through M while the guest still maps it,
        # then the guest zeroes the PTE.  map: the guest writes M's PTE; the
        # device uses M only once the guest invalidated (below).
        st["dma"] = g.device_write(src, [M, K] if race == "unmap" else [K])
        st["change_seq"] = src.event_seq()
        if race == "unmap":
            drv.unmap(DID, M.iova, M.size, invalidate=False)
        else:
            drv.map(DID, M.iova, M.gpa, M.size, invalidate=False)
        src.qt.memset(CHURN_GPA, CHURN_SIZE, CHURN_MARK ^ 0xFF)
        status, s1 = syncs()
        st["syncs"] = [s0, s1]
        if s1 != s0:
            st["lost"] = "a dirty sync ran before the guest changed the PTE"
            return
        end = time.monotonic() + 30
        while status == "active" and s1 == s0 and time.monotonic() < end:
            time.sleep(0.005)
            status, s1 = syncs()
        # Hold the migration in this iteration (the churn is still being
        # sent) while the guest invalidates and the device writes, however
        # slow this host is; the runner lifts the cap after the hook.
        src.qmp.command("migrate-set-parameters", **{"max-bandwidth": HOLD_BANDWIDTH})
        st["syncs"].append(s1)
        if status != "active":
            st["lost"] = "migration left the active phase (%s) before the sync" % status
            return
        st["inv_seq"] = src.event_seq()
        drv.invalidate_range(DID, M.iova, M.size, leaf=(race == "unmap"))
        st["inv_end"] = src.event_seq()
        st["host_maps_m"] = host_maps(src, M.iova)
        if race == "map":
            st["dma"] += g.device_write(src, [M])
        status, s2 = syncs()
        st["syncs"].append(s2)
        if status != "active":
            st["lost"] = "migration left the active phase (%s) during the invalidation" % status

    # A low downtime limit keeps the migration iterating over the churn
    # after the first pass; the runner lifts the bandwidth cap afterwards.
    r = migration.migrate(src, dst, pause=False, active_hook=action, sent=sent,
                          bandwidth=g.BANDWIDTH, downtime_limit=50)
    # migration.migrate() calls a dirty sync inside the hook "ordering
    # lost"; here that sync is the point, st["syncs"] shows it is where it
    # must be: dirty-sync-count at the device write, after the PTE change,
    # at the invalidation, after it.
    ctx.note("migration: %s (dirty-sync-count %s)"
             % (r.summary().split(" ORDERING LOST")[0], st.get("syncs")))
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if st.get("lost"):
        ctx.note("ordering lost: " + st["lost"])
        return "ordering-lost"
    if "inv_seq" not in st:              # the pages were never seen sent in time
        ctx.note("ordering lost: %s" % r.ordering_lost)
        return "ordering-lost"
    events = src.events()
    window = [e for e in events if st["change_seq"] < e["seq"] <= st["inv_seq"]]
    note_events(ctx, "host calls between the PTE change and the invalidation:", window)
    if not queried(window, K.iova):
        return "no-sync-in-window"
    inv = [e for e in events if st["inv_seq"] < e["seq"] <= st["inv_end"]]
    note_events(ctx, "host calls for the invalidation:", inv)
    for line in src.trace_lines("vfio_container_query_dirty_bitmap")[-4:]:
        ctx.note("  trace: " + line)
    if race == "unmap":
        host = host_unmap_fact(ctx, inv, st["host_maps_m"])
    else:
        host = host_map_fact(ctx, inv, st["host_maps_m"])
    for m, reply in st["dma"]:
        if not reply.get("ok"):
            ctx.note("device DMA through %r failed: %s" % (m, reply))
            return host + ("+dma-faults" if m is M and race == "map" else "+dma-failed")
    if not r.completed:
        return host + "+migrate-failed"
    pages = g.check_pages(dst, [M, K])
    ctx.note("destination: M page %s, K page %s" % (pages[M.gpa], pages[K.gpa]))
    if pages[K.gpa] != "new":
        return host + "+kept-mapping-stale"
    return host + ("+intact" if pages[M.gpa] == "new" else "+stale")


def cases():
    out = []
    # The queue just before the fix; the base has the same
    # vtd_iommu_replay().
    before = layout.build_before(FIX)
    for backend in ("iommufd", "legacy"):
        out.append(Case(
            "e2e/replay-race/unmap/%s/dirty-rate" % backend,
            {"base": "still-mapped+dma-reaches-page",
             before: "still-mapped+dma-reaches-page",
             "fork": "unmapped+dma-faults"},
            lambda ctx, b=backend: run_dirty_rate(ctx, b, "unmap"), __doc__))
        out.append(Case(
            "e2e/replay-race/map/%s/dirty-rate" % backend,
            {"base": "never-mapped+dma-faults",
             before: "never-mapped+dma-faults",
             "fork": "mapped+dma-ok"},
            lambda ctx, b=backend: run_dirty_rate(ctx, b, "map"), __doc__))
        out.append(Case(
            "e2e/replay-race/unmap/%s/migration" % backend,
            {"base": backends.get(backend).base_blocker,
             before: "still-mapped+stale",
             "fork": "unmapped+intact"},
            lambda ctx, b=backend: run_migration(ctx, b, "unmap"), __doc__))
        out.append(Case(
            "e2e/replay-race/map/%s/migration" % backend,
            {"base": backends.get(backend).base_blocker,
             before: "never-mapped+dma-faults",
             "fork": "mapped+intact"},
            lambda ctx, b=backend: run_migration(ctx, b, "map"), __doc__))
    # The same race with the guest in scalable mode (PASID table, 256-bit
    # queued invalidation).
    out.append(Case(
        "e2e/replay-race/unmap/iommufd/dirty-rate-scalable",
        {"base": "still-mapped+dma-reaches-page",
         before: "still-mapped+dma-reaches-page",
         "fork": "unmapped+dma-faults"},
        lambda ctx: run_dirty_rate(ctx, "iommufd", "unmap", "scalable"), __doc__))
    out.append(Case(
        "e2e/replay-race/map/iommufd/dirty-rate-scalable",
        {"base": "never-mapped+dma-faults",
         before: "never-mapped+dma-faults",
         "fork": "mapped+dma-ok"},
        lambda ctx: run_dirty_rate(ctx, "iommufd", "map", "scalable"), __doc__))
    return out
