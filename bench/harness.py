"""What the benchmarks need from the test harness (tests/lib, tests/e2e), and
the few things a measurement needs on top of it:

  * VMs whose hostsim event log is off (timed runs: the log is the model's
    cost, not QEMU's) or on (counting runs: the log is what is counted);
  * QEMU trace lines with wall-clock timestamps around each migration dirty
    sync (migration_bitmap_sync_start/end), so a sync is timed inside QEMU;
  * guest IOMMU mappings made in bulk: page-table pages written whole, then
    one domain-selective IOTLB invalidation (QEMU replays the domain and maps
    every entry on the host), so 100,000 mappings take seconds, not hours;
  * a steady device DMA load through hostsim's control socket.

Everything else (VM process, QMP, qtest, VT-d driver, migration driver,
event log) is the e2e harness's own modules, imported, not copied.
"""

import datetime
import os
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from lib import layout  # noqa: E402
from lib import hostlog as H  # noqa: E402
from lib import migration  # noqa: E402
from lib import qemu  # noqa: E402
from lib.viommu import vtd  # noqa: E402
from e2e.scenario import Case, Context  # noqa: E402
from e2e.steps.migration_window import migration_kw as default_kw  # noqa: E402

DID = 1
SYNC_TRACES = ["migration_bitmap_sync_start", "migration_bitmap_sync_end"]
DIRTY_QUERIES = (H.GET_DIRTY, H.TYPE1_DIRTY)


def model_cost(counters, calls=None):
    """hostsim's counters summed over these call names (None: every call):
    {"calls", "ns"}."""
    picked = [counters[c] for c in (counters if calls is None else calls) if c in counters]
    return {"calls": sum(k["calls"] for k in picked), "ns": sum(k["ns"] for k in picked)}


def set_log_dir(path):
    """Where the VMs' directories go (the e2e Context reads layout.E2E_OUT)."""
    layout.E2E_OUT = path


def binaries():
    """{build name: binary} the benchmarks compare: the fork, the base,
    "nine" = the queue up to the ninth commit of the series (the e2e
    harness's before-followups: $QEMU_BEFORE_FOLLOWUPS, the per-commit
    binary of $QEMU_BIN_DIR, or tests/e2e/build-before.sh's), and
    "unmerged" (RECORD_RUNS), when one of its binaries is there."""
    b = layout.builds()
    no_clear = os.environ.get("QEMU_NO_CLEAR_AT_UNMAP") or NO_CLEAR_BIN
    # layout.builds() names every per-commit binary, built or not
    unmerged = [p for p in (b.get(layout.build_before(RECORD_RUNS)), b.get("before-record-runs"))
                if p and os.path.isfile(p)]
    return {"fork": b["fork"], "base": b["base"], "nine": b.get("before-followups"),
            "no-clear": no_clear if os.path.isfile(no_clear) else None,
            "unmerged": unmerged[0] if unmerged else None}


# "unmerged": the queue just before the patch that merges VFIO's record
# into runs (the per-commit binary of the series checks, else
# tests/e2e/build-before.sh's qemu-before-record-runs)
RECORD_RUNS = "Record-runs-of-contiguous-vIOMMU"


# the fork with a clearing read before an iommufd unmap (tests/e2e/build-before.sh)
NO_CLEAR_BIN = os.path.join(layout.OUT, "e2e-before", "bin", "qemu-no-clear-at-unmap")


def missing_files(items=(1, 2, 3, 4, 5)):
    """What the items need and is not there."""
    out = [p for p in (layout.QEMU_FORK, layout.QEMU_BASE, layout.HOSTSIM_LIB)
           if not os.path.isfile(p)]
    if set(items) & {2, 3} and not binaries()["nine"]:
        out.append("the ninth commit's binary (tests/e2e/build-before.sh)")
    if 2 in items and not binaries()["unmerged"]:
        out.append("the binary before the record kept runs (tests/e2e/build-before.sh)")
    if 5 in items and not binaries()["no-clear"]:
        out.append("%s (tests/e2e/build-before.sh)" % NO_CLEAR_BIN)
    return out


class Run:
    """One measurement: a fresh e2e Context (its own log directory) with a
    source and a destination VM."""

    def __init__(self, name, binary, log, viommu=True, backend="iommufd",
                 ram="512M", hostsim_cfg=None, migration_kw=None, pair=True,
                 extra_args=(), iommu_props=""):
        """migration_kw: the device's VM arguments (default: the e2e
        harness's migratable device of that backend); pair=False: no
        destination."""
        self.ctx = Context(Case("bench/" + name, {}, None), "run", binary)
        kw = dict(migration_kw or default_kw(backend))
        kw["hostsim_cfg"] = dict(kw["hostsim_cfg"], **(hostsim_cfg or {}))
        kw.update(ram=ram, viommu=viommu, traces=SYNC_TRACES, iommu_props=iommu_props,
                  extra_args=["-msg", "timestamp=on"] + list(extra_args))
        self.dst = None
        try:
            self.src = self._vm("src", log, kw)
            if pair:
                self.dst = self._vm("dst", log, dict(kw, incoming=True))
        except BaseException:
            self.ctx.teardown()
            raise

    def _vm(self, name, log, kw):
        v = self.ctx.vm(name, **kw)
        if not log:
            cfg = dict(v.hostsim_cfg)
            cfg.pop("log", None)
            qemu.hostsim.write_config(v.cfg_path, **cfg)
        return v.start()

    def close(self):
        self.ctx.teardown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def guest_iommu(v, pool_base, pool_size, levels=4):
    """The e2e guest VT-d driver on v, device 00:05.0 in domain DID,
    translation on, with a page-table pool of the given size (levels=3 for
    a 39-bit address width)."""
    drv = vtd.VTd(v.qt, pool_base, pool_size, levels=levels)
    drv.init()
    drv.attach(qemu.VFIO_BUS, qemu.VFIO_DEVFN, DID)
    drv.enable_translation()
    return drv


def map_bulk(drv, pairs, level=1):
    """Map pages (iova, gpa) in domain DID: write each leaf table page
    whole (one qtest command per 512 entries), then one domain-selective
    IOTLB invalidation, after which QEMU (caching mode) replays the domain
    and maps every new entry on the host.  level=1: 4 KiB PTEs; level=2:
    2 MiB leaves (a PDE with the PS bit; QEMU's VT-d reports 2 MiB pages in
    CAP_REG.SLLPS), iova and gpa 2 MiB aligned."""
    dom = drv.domain(DID)
    leaf = vtd.SL_R | vtd.SL_W | (vtd.SL_PS if level > 1 else 0)
    tables = {}
    for iova, gpa in pairs:
        addr = dom.pte_addr(iova, level, create=True)
        tables.setdefault(addr & ~0xFFF, {})[(addr & 0xFFF) // 8] = \
            (gpa & vtd.SL_ADDR_MASK) | leaf
    for table, entries in tables.items():
        words = list(struct.unpack("<512Q", drv.qt.read(table, 4096)))
        for i, pte in entries.items():
            words[i] = pte
        drv.qt.write(table, struct.pack("<512Q", *words))
    drv.invalidate_iotlb_domain(DID)


def sync_times(v):
    """Durations (s) of the migration dirty syncs in v's trace, in order."""
    out, start = [], None
    for line in v.trace_lines("migration_bitmap_sync_"):
        w = line.split()
        if len(w) < 2:
            continue
        t = datetime.datetime.fromisoformat(w[0].replace("Z", "+00:00")).timestamp()
        if w[1] == "migration_bitmap_sync_start":
            start = t
        elif w[1] == "migration_bitmap_sync_end" and start is not None:
            out.append(t - start)
            start = None
    return out


def events_after(v, offset):
    """hostsim events logged after byte offset of v's event log, and the new
    offset (reads only what is new: logs of 100,000 mappings are large)."""
    import json
    with open(v.log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    # a line being written is not complete yet: leave it for the next read
    data = data[:data.rfind(b"\n") + 1]
    ev = [json.loads(l) for l in data.splitlines() if l.strip()]
    return ev, offset + len(data)


def log_size(v):
    try:
        return os.path.getsize(v.log_path)
    except OSError:
        return 0


class DmaLoad:
    """The device writes `chunk` bytes every `period` seconds, cycling over
    [iova, iova + size), until stopped: the same load with and without a
    vIOMMU when the IOVAs are identity-mapped.  Refused writes (a stopped
    device, during stop-copy) are counted, not fatal."""

    def __init__(self, v, iova, size, chunk=256 << 10, period=0.01):
        self.v, self.iova, self.size = v, iova, size
        self.chunk, self.period = chunk, period
        self.writes = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        off, n = 0, 0
        nxt = time.monotonic()
        while not self._stop.is_set():
            n += 1
            r = self.v.ctl.dma(self.iova + off, self.chunk, 0xB0AD000000000000 | n)
            if r.get("ok"):
                self.writes += 1
            else:
                self.refused += 1
            off = (off + self.chunk) % self.size
            nxt += self.period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)


def migrate(run, timeout=600.0, downtime_limit=None):
    """Migrate run.src -> run.dst with QEMU's default parameters (or that
    downtime limit, ms); returns the e2e MigrationResult (query-migrate's
    final answer in .info)."""
    return migration.migrate(run.src, run.dst, pause=False, timeout=timeout,
                             downtime_limit=downtime_limit)


def guarded(fn, *args, **kw):
    """fn(*args, **kw), or {"error": ...} when it raised: one failed run
    is reported in its row, the others still run."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 (any failure of one measurement)
        return {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
