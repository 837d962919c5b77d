#!/usr/bin/env python3
"""Live-migrate a VM with a vIOMMU and an assigned device whose DMA goes
on during migration while the guest unmaps IOVAs before switchover, then
check every page the device wrote on the destination and print a report.

  python3 tests/e2e/demo.py [--qemu BINARY] [--backend iommufd|legacy]
                            [--ram 512M] [--pages 64]

While migration iterates, VM and device running, once every target page
has reached the destination (bandwidth cap and ballast keep the first
pass busy), the device (hostsim) writes through N mapped IOVAs, each to its
own guest page, in two rounds:
  * round 1 writes every page, then the guest unmaps quarter A of the IOVAs
    Linux-style (zero PTE, invalidate);
  * round 2 writes the still-mapped pages again with other data, then the
    guest unmaps quarter B.
In the pre-switchover pause (VM and device stopped) the guest unmaps quarter
C; quarter D stays mapped to the end (harvested by the final sync).  Every
written page is then compared between source and destination.

Exit status 0 only if the migration completed and no page was lost.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib import layout  # noqa: E402
from e2e import guestdma as g  # noqa: E402
from lib import backends  # noqa: E402
from lib import hostlog as H  # noqa: E402
from lib import migration  # noqa: E402
from e2e.scenario import Case, Context  # noqa: E402
from e2e.steps.migration_window import backend_kw  # noqa: E402

DID = 1


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qemu", default=layout.QEMU_FORK)
    ap.add_argument("--backend", default="iommufd", choices=("iommufd", "legacy"))
    ap.add_argument("--ram", default="512M")
    ap.add_argument("--pages", type=int, default=64)
    args = ap.parse_args()

    ram = parse_size(args.ram)
    n = args.pages - args.pages % 4
    # IOVAs packed in one region; targets scattered over the lower half of
    # guest RAM above the VT-d structure pool, one page each; non-zero
    # ballast in the upper half keeps the first pass busy (bandwidth cap)
    # after the targets were sent.
    span = (ram // 2 - (32 << 20)) // n & ~0xFFF
    ballast_gpa, ballast_size = ram // 2, min(64 << 20, ram // 4)
    maps = [g.Mapping(0x80000000 + i * 0x1000, (32 << 20) + i * span) for i in range(n)]
    quarter_a, quarter_b = maps[0:n // 4], maps[n // 4:n // 2]
    quarter_c = maps[n // 2:3 * n // 4]

    case = Case("e2e/demo/%s" % args.backend, {}, None)
    ctx = Context(case, "demo", args.qemu)
    t_start = time.monotonic()
    try:
        src, dst = ctx.start_pair(ram=args.ram, **backend_kw(args.backend))
        drv = ctx.guest_iommu(src, DID, queued=True)
        g.map_all(drv, DID, maps)
        g.fill_old(src, maps)
        counts = {"dma": 0, "dma_failed": 0, "unmaps": 0}
        seq0 = src.event_seq()

        def dma(ms, pattern=None):
            for _, rep in g.device_write(src, ms, pattern):
                counts["dma"] += 1
                if not rep.get("ok"):
                    counts["dma_failed"] += 1

        def unmap(ms):
            for m in ms:
                drv.unmap(DID, m.iova, m.size)
                counts["unmaps"] += 1

        def while_active(r):
            dma(maps)
            unmap(quarter_a)
            dma(maps[n // 4:], lambda gpa: ~g.new_pattern(gpa) & (2 ** 64 - 1))
            unmap(quarter_b)

        def at_pause(r):
            unmap(quarter_c)

        migration.ballast(src, ballast_gpa, ballast_size)

        def sent():
            return set(g.check_pages(dst, maps).values()) == {"old"}

        r = migration.migrate(src, dst, on_pause=at_pause, active_hook=while_active,
                              sent=sent, bandwidth=32 << 20)
        events = H.after(src.events(), seq0)
        be = backends.get(args.backend)
        harvested = sum(e.get("dirty_pages", 0) for e in H.calls(events, be.read_at_unmap)
                        if e.get("flags", 0) & be.unmap_read_flag)
        compared = lost = written = 0
        lost_pages = []
        if r.completed:
            for m in maps:
                for _, gpa in m.pages():
                    compared += 1
                    if g.page_state(src, gpa) != "old":
                        written += 1
                    if src.qt.read(gpa, g.PAGE) != dst.qt.read(gpa, g.PAGE):
                        lost += 1
                        lost_pages.append((m, g.page_state(dst, gpa)))
        info = r.info
        rows = [
            ("QEMU", args.qemu),
            ("backend", "%s, intel-iommu caching-mode=on, -accel qtest" % args.backend),
            ("RAM size", args.ram),
            ("migration", r.summary()),
            ("dirty syncs around the running window", r.window_syncs),
            ("DMA writes (4 KiB)", "%d (%d failed)" % (counts["dma"], counts["dma_failed"])),
            ("unmaps during migration", counts["unmaps"]),
            ("dirty pages harvested at unmap", harvested),
            ("pages compared on destination", "%d (%d hold device data on the source)"
             % (compared, written)),
            ("pages lost (must be 0)", lost),
            ("total time (QEMU)", "%s ms" % info.get("total-time", "?")),
            ("downtime (QEMU)", "%s ms" % info.get("downtime", "?")),
            ("wall time (this run)", "%.1f s" % (time.monotonic() - t_start)),
            ("logs", ctx.workdir),
        ]
        width = max(len(k) for k, _ in rows)
        print("Live migration with vIOMMU and device DMA during migration")
        for k, v in rows:
            print("  %-*s  %s" % (width, k, v))
        for m, st in lost_pages[:8]:
            print("  lost: %r (destination holds %s)" % (m, st))
        if r.refused:
            return 2
        ok = r.completed and lost == 0 and not counts["dma_failed"] and written == compared
        return 0 if ok else 1
    finally:
        ctx.teardown()


if __name__ == "__main__":
    sys.exit(main())
