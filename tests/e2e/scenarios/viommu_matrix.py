"""Scenario 6: the series author's test matrix.

  {legacy-mode vIOMMU, scalable-mode vIOMMU (x-scalable-mode=on, second-
  stage translation)} x {iommufd backend, legacy VFIO backend} x {the guest
  keeps the device in a DMA domain, the guest uses pass-through}

plus the dma cell behind virtio-iommu and AMD-Vi (matrix/{virtio,amd}/...),
where the fork keeps the vIOMMU blocker (scenarios/other_viommus.py).

Every cell is a live migration with device DMA during migration and guest
unmaps before switchover, and counts the pages lost (a page the device
wrote whose new content is not on the destination).

dma cell: the device sits in DMA domain 1 with three mappings:
  A  iova 0x10000 -> gpa 0x200000            unmapped during the window
  B  iova 0x20000 -> gpa 0x280000 (4 pages)  kept
  C  iova 0x40000000 -> 0x2000000, 0x40001000 -> 0x2345000
                                             unmapped at the pause before
                                             switchover (PDE zeroed)
  Once A, B and C hold "old" on the destination (VM and device running,
  first pass busy with ballast), the device writes "new" through all of
  them and the guest unmaps A (PTE zeroed, as Linux does).  At the pause
  before switchover the guest zeroes C's PDE.
pt cell: the device is in a pass-through domain (DMA address = guest
  physical address).  In the window it writes "new" into P (three pages),
  then the guest moves it to a blocking domain (legacy mode: context entry
  cleared; scalable mode: PASID entry torn down), which removes the
  passthrough mappings, then attaches it to DMA domain 1, maps A, the
  device writes through A and the guest unmaps A.

Labels: "intact" (migration completed, 0 pages lost), "lost" (counts in the measures and the table),
"migrate-failed", "ordering-lost", "blocked[...]", "realize-failed[...]".
On the base the vIOMMU blocker stops every cell (iommufd: blocked-reasons
and a refused migrate; legacy with enable-migration=on: realize fails).
"""

from lib import backends
from e2e import guestdma as g
from e2e import report
from lib import viommu as guest_iommus
from e2e.scenario import Case, reason_key
from e2e.steps.migration_window import count_lost
from e2e.steps.matrix import A, B, C, DMA_DID, P
from e2e.steps.migration_window import backend_kw

PT_DID = 2


def run_cell(ctx, mode, backend, domain):
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(iommu_props=guest_iommus.iommu_props(mode), **kw)
    state = {"dma": []}
    if domain == "dma":
        drv = guest_iommus.bring_up(src, mode, DMA_DID)
        targets = [A, B] + C
        g.map_all(drv, DMA_DID, targets)
        g.fill_old(src, targets)

        def action():
            state["dma"] += g.device_write(src, targets)
            drv.unmap(DMA_DID, A.iova, A.size)

        def on_pause(r):
            drv.zero_upper_entry(DMA_DID, C[0].iova, level=2)
    else:
        drv = guest_iommus.bring_up(src, mode, PT_DID, passthrough=True)
        targets = P + [A]
        g.fill_old(src, targets)

        def action():
            state["dma"] += g.device_write(src, P)
            guest_iommus.block(drv, PT_DID)
            guest_iommus.attach(drv, DMA_DID)
            g.map_all(drv, DMA_DID, [A])
            state["dma"] += g.device_write(src, [A])
            drv.unmap(DMA_DID, A.iova, A.size)

        def on_pause(r):
            pass

    r = g.migrate_with_window(src, dst, targets, action, pause=True, on_pause=on_pause)
    ctx.note("migration: " + r.summary())
    return cell_outcome(ctx, r, drv, state["dma"], dst, targets)


def cell_outcome(ctx, r, drv, dma, dst, targets):
    """The label of a cell's migration r: refused, not judged, failed, or
    whether every written target reached dst."""
    ctx.note("guest driver: " + "; ".join(drv.log[-12:]))
    if r.refused:
        return "blocked[%s]" % reason_key(r.refused)
    if r.ordering_lost:
        return "ordering-lost"
    failed = [(m, rep) for m, rep in dma if not rep.get("ok")]
    if failed:
        ctx.note("device DMA failed: %s" % failed[:3])
        return "dma-failed"
    if not r.completed:
        return "migrate-failed"
    return "intact" if not count_lost(ctx, dst, targets) else "lost"


def run_other_cell(ctx, viommu, backend):
    """The dma cell behind virtio-iommu or AMD-Vi (their guest drivers have
    no upper-level entry to zero: C is unmapped page by page at the pause
    before switchover)."""
    kw = backend_kw(backend)
    src, dst = ctx.start_pair(viommu=viommu, **kw)
    reasons = src.blocked_reasons()
    drv = ctx.guest_iommu(src, DMA_DID)
    targets = [A, B] + C
    g.map_all(drv, DMA_DID, targets)
    g.fill_old(src, targets)
    state = {"dma": []}

    def action():
        state["dma"] += g.device_write(src, targets)
        drv.unmap(DMA_DID, A.iova, A.size)

    def on_pause(r):
        for m in C:
            drv.unmap(DMA_DID, m.iova, m.size)

    r = g.migrate_with_window(src, dst, targets, action, pause=True, on_pause=on_pause)
    ctx.note("migration: " + r.summary())
    ctx.note("blocked-reasons: %s" % reasons)
    return cell_outcome(ctx, r, drv, state["dma"], dst, targets)


# vIOMMUs other than VT-d: the fork migrates behind them with 0 pages
# lost (scenarios/other_viommus.py); the nine commits alone lose pages.
OTHER_VIOMMUS = ("virtio", "amd")


def cases():
    out = []
    for mode in guest_iommus.MODES:
        for backend in ("iommufd", "legacy"):
            for domain in ("dma", "pt"):
                # before-followups (the nine alone): A's page is lost in
                # every cell (its PTE is zeroed: docs/behaviour.md [real-page])
                expect = {"fork": "intact",
                          "base": backends.get(backend).base_blocker,
                          "before-followups": "lost"}
                out.append(Case(
                    "e2e/matrix/%s/%s/%s" % (mode, backend, domain), expect,
                    lambda ctx, m=mode, b=backend, d=domain: run_cell(ctx, m, b, d),
                    __doc__))
    for viommu in OTHER_VIOMMUS:
        for backend in ("iommufd", "legacy"):
            expect = {"fork": "intact",
                      "base": backends.get(backend).base_blocker,
                      "before-followups": "lost"}
            out.append(Case(
                "e2e/matrix/%s/%s/dma" % (viommu, backend), expect,
                lambda ctx, v=viommu, b=backend: run_other_cell(ctx, v, b),
                __doc__))
    return out


def report_table(results):
    """Print the matrix (called by the runner after all cases)."""
    rows = [r for r in results if r["name"].startswith("e2e/matrix/")]
    if not rows:
        return
    by_cell = {}
    for r in rows:
        _, _, mode, backend, domain, build = r["name"].split("/")
        m = r.get("measures") or {}
        text = r["label"]
        if r["label"] == "intact" or r["label"].startswith("lost"):
            text += " (%s of %s pages lost)" % (m.get("pages_lost"), m.get("pages_compared"))
        if not r["ok"]:
            text += " FAIL, expected " + r["expected"]
        by_cell.setdefault((mode, backend, domain), {})[build] = text
    builds = sorted({b for cell in by_cell.values() for b in cell},
                    key=lambda b: (b != "fork", b != "base", b))
    head = ["vIOMMU (mode)", "VFIO backend", "guest domain"] + builds
    lines = []
    for (mode, backend, domain), cell in by_cell.items():
        lines.append([mode, backend, "DMA domain" if domain == "dma" else "pass-through"]
                     + [cell.get(b, "-") for b in builds])
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    fmt = lambda row: "| " + " | ".join(x.ljust(w) for x, w in zip(row, widths)) + " |"
    report.diag("")
    report.diag("vIOMMU migration matrix (live migration, DMA during migration, "
                "unmaps before switchover):")
    report.diag(fmt(head))
    report.diag("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in lines:
        report.diag(fmt(row))
