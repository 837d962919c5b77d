"""Scenario 1: the realize-time policy table of docs/behaviour.md [realize-table], row by row.

Each row configures hostsim (device DMA logging, IOMMU dirty tracking) and
the vfio-pci properties, then observes what a user sees: does QEMU start
(realize), what query-migrate blocked-reasons says, whether `migrate` is
refused, and, when nothing blocks, whether a migration to a destination
completes.

| DMA logging | IOMMU dirty tracking | vIOMMU | enable-migration | fork | base |

Rows ending in -virtio / -amd use virtio-iommu-pci / amd-iommu,dma-remap=on
instead of intel-iommu.
"""

import os

from lib import migration
from lib.qmp import QMPError
from e2e.scenario import Case, REASONS, reason_key

WARNING = REASONS["no-dirty-tracking"]
# 4 KiB bitmap -> 4096 * 8 pages * 4 KiB = 128 MiB: smaller than 256M RAM.
SMALL_BITMAP = {"type1.max_dirty_bitmap_size": 4096}


def policy_label(ctx, backend, viommu, cfg, enable_migration=None,
                 device_dirty_tracking=None, ram="256M"):
    kw = dict(backend=backend, viommu=viommu, hostsim_cfg=cfg, ram=ram,
              enable_migration=enable_migration,
              device_dirty_tracking=device_dirty_tracking)
    src = ctx.vm("src", **kw).start()           # RealizeError -> realize-failed[..]
    warned = [l for l in src.stderr().splitlines() if "warning" in l and WARNING in l]
    if warned:
        ctx.note("warning: " + warned[0].strip())
    reasons = src.blocked_reasons()
    ctx.note("blocked-reasons: %s" % reasons)
    if reasons:
        try:
            src.qmp.command("migrate", uri="unix:%s" % os.path.join(src.sockdir, "nowhere"))
        except QMPError as e:
            ctx.note("migrate refused: %s" % e.desc)
            return "blocked[%s]" % reason_key(reasons[0])
        return "blocked-but-migrate-accepted"
    dst = ctx.vm("dst", incoming=True, **kw).start()
    # Backends without precise tracking report all mapped RAM dirty at
    # every sync; a generous downtime limit lets such a migration converge.
    r = migration.migrate(src, dst, pause=False, downtime_limit=100000)
    ctx.note("migration: " + r.summary())
    if r.refused:
        return "refused[%s]" % reason_key(r.refused)
    if not r.completed:
        return "migrate-failed"
    return "migratable+warning" if warned else "migratable"


def row(name, backend, viommu, cfg, expect, doc, **kw):
    def run(ctx):
        return policy_label(ctx, backend, viommu, cfg, **kw)
    return Case("e2e/realize-policy/%s/%s" % (backend, name), expect, run, doc)


def cases():
    out = []
    for be in ("legacy", "iommufd"):
        out.append(row("device-logging-viommu-auto", be, True, {"dma_logging": "on"},
                       {"fork": "blocked[vIOMMU]", "base": "blocked[vIOMMU]"},
                       "usable DMA logging + vIOMMU: blocker unchanged"))
        out.append(row("no-tracking-viommu-auto", be, True,
                       {"dma_logging": "off", "iommu_dirty": "off"},
                       {"fork": "blocked[no-dirty-tracking]",
                        "base": "blocked[no-dirty-tracking]"},
                       "no usable tracking (legacy bitmap does not count for auto)"))
        out.append(row("no-tracking-no-viommu-auto", be, False,
                       {"dma_logging": "off", "iommu_dirty": "off"},
                       {"fork": "blocked[no-dirty-tracking]",
                        "base": "blocked[no-dirty-tracking]"},
                       "no usable tracking, no vIOMMU: blocker unchanged"))
    out.append(row("iommu-dirty-viommu-auto", "iommufd", True,
                   {"dma_logging": "off", "iommu_dirty": "on"},
                   {"fork": "migratable", "base": "blocked[vIOMMU]"},
                   "iommufd HWPT dirty tracking + vIOMMU: migratable (new)"))
    out.append(row("device-logging-forced-off-viommu-auto", "iommufd", True,
                   {"dma_logging": "on", "iommu_dirty": "on"},
                   {"fork": "migratable", "base": "blocked[vIOMMU]"},
                   "x-device-dirty-page-tracking=off makes DMA logging unusable",
                   device_dirty_tracking="off"))
    out.append(row("type1-bitmap-viommu-on", "legacy", True,
                   {"dma_logging": "off", "type1.migration_cap": "on"},
                   {"fork": "migratable+warning", "base": "realize-failed[vIOMMU]"},
                   "legacy type1 bitmap + vIOMMU, enable-migration=on: migratable with warning (new)",
                   enable_migration="on"))
    cfg = {"dma_logging": "off", "type1.migration_cap": "on"}
    cfg.update(SMALL_BITMAP)
    out.append(row("type1-bitmap-viommu-on-ram-over-limit", "legacy", True, cfg,
                   {"fork": "realize-failed[large-memory]", "base": "realize-failed[vIOMMU]"},
                   "RAM larger than the type1 bitmap limit: realize fails (large-memory)",
                   enable_migration="on"))
    out.append(row("type1-bitmap-no-viommu-on-ram-over-limit", "legacy", False, dict(cfg),
                   {"fork": "realize-failed[large-memory]", "base": "migrate-failed"},
                   "without vIOMMU too: the limit is checked at realize instead of "
                   "failing the migration",
                   enable_migration="on"))
    nocap = {"dma_logging": "off", "type1.migration_cap": "off"}
    nocap.update(SMALL_BITMAP)
    out.append(row("no-tracking-viommu-on", "legacy", True, nocap,
                   {"fork": "migratable+warning", "base": "realize-failed[vIOMMU]"},
                   "no tracking at all, enable-migration=on, vIOMMU: warning only",
                   enable_migration="on"))
    out.append(row("no-tracking-no-viommu-on", "legacy", False, dict(nocap),
                   {"fork": "migratable+warning", "base": "migratable+warning"},
                   "no tracking at all, enable-migration=on: warning only, no size check",
                   enable_migration="on"))
    out.append(row("no-tracking-viommu-on", "iommufd", True,
                   {"dma_logging": "off", "iommu_dirty": "off"},
                   {"fork": "migratable+warning", "base": "realize-failed[vIOMMU]"},
                   "iommufd without dirty tracking, enable-migration=on, vIOMMU: warning only",
                   enable_migration="on"))
    # The other vIOMMUs: the ninth commit lifts the blocker for them as
    # for VT-d, and the fork, which harvests from its own record of what
    # VFIO mapped, lets them migrate with 0 pages lost
    # (scenarios/other_viommus.py).
    for viommu in ("virtio", "amd"):
        out.append(row("device-logging-viommu-auto-" + viommu, "iommufd", viommu,
                       {"dma_logging": "on"},
                       {"fork": "blocked[vIOMMU]", "base": "blocked[vIOMMU]"},
                       "usable DMA logging + %s vIOMMU: blocker unchanged" % viommu))
        out.append(row("iommu-dirty-viommu-auto-" + viommu, "iommufd", viommu,
                       {"dma_logging": "off", "iommu_dirty": "on"},
                       {"fork": "migratable", "base": "blocked[vIOMMU]",
                        "before-followups": "migratable"},
                       "iommufd HWPT dirty tracking + %s vIOMMU: migratable" % viommu))
        out.append(row("type1-bitmap-viommu-on-" + viommu, "legacy", viommu,
                       {"dma_logging": "off", "type1.migration_cap": "on"},
                       {"fork": "migratable+warning",
                        "base": "realize-failed[vIOMMU]",
                        "before-followups": "migratable+warning"},
                       "legacy type1 bitmap + %s vIOMMU, enable-migration=on: "
                       "migratable with the warning" % viommu,
                       enable_migration="on"))
    # The prerequisite fix: on a kernel without IOMMU_IOAS_CHANGE_PROCESS
    # (before 6.14, e.g. Debian's 6.12) QEMU 10.2.2 crashes realizing a
    # vfio-pci device on iommufd (bool/int mix-up in the CPR blocker
    # registration dereferences a NULL error).
    out.append(row("iommu-dirty-viommu-auto-kernel-6.12", "iommufd", True,
                   {"dma_logging": "off", "iommu_dirty": "on", "kernel": "6.12"},
                   {"fork": "migratable", "base": "crashed[signal 11]"},
                   "kernel 6.12 (no IOMMU_IOAS_CHANGE_PROCESS): realize must not crash"))
    return out
