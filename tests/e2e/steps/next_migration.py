"""The check that ends every QEMU-fault case (docs/behaviour.md
[qemu-faults]): after the fault, the source QEMU is still there, and a
migration without the fault carries every page the device writes.

next_migration_label() has each device write its pages once they were
sent (VM and devices running), migrates, and compares every written page
on the destination: "intact", "stale[<names>]" (a page arrived old:
lost), or what stopped the migration ("refused", "migrate-failed",
"dma-failed", "ordering-lost").
"""

from e2e import guestdma as g
from e2e.steps.migration_window import count_lost


def next_migration_label(ctx, src, dst, writes, **migrate_kw):
    """writes: [(name, device index, guestdma.Mapping)], the device writes
    through each mapping's IOVA.  Records pages_compared and pages_lost
    (migration_window.count_lost)."""
    maps = [m for _, _, m in writes]
    g.fill_old(src, maps)
    replies = []

    def action():
        for name, dev, m in writes:
            replies.append((name, src.ctl.dma(m.iova, m.size, g.new_pattern(m.gpa), dev=dev)))

    r = g.migrate_with_window(src, dst, maps, action, **migrate_kw)
    ctx.note("next migration: " + r.summary())
    if r.refused:
        return "refused"
    if r.ordering_lost:
        return "ordering-lost"
    for name, reply in replies:
        if not reply.get("ok"):
            ctx.note("device write %s failed: %s" % (name, reply))
            return "dma-failed"
    if not r.completed:
        return "migrate-failed"
    if not count_lost(ctx, dst, maps):
        return "intact"
    stale = [name for name, _, m in writes
             if set(g.check_pages(dst, [m]).values()) != {"new"}]
    return "stale[%s]" % "+".join(stale)


def alive_label(ctx, v):
    """None while QEMU runs and answers QMP; else what happened to it."""
    if v.alive():
        try:
            ctx.note("%s status: %s" % (v.name, v.status()))
            return None
        except Exception as e:
            ctx.note("%s does not answer QMP: %r" % (v.name, e))
            return "no-qmp"
    rc = v.proc.returncode
    ctx.note("%s exited rc=%s: %s" % (v.name, rc,
                                       v.stderr().strip().replace("\n", " | ")[-600:]))
    return "crashed[signal %d]" % -rc if rc < 0 else "exited[%d]" % rc
