"""Item 1: what a vIOMMU costs a live migration.

The same VM (q35, hostsim device with IOMMU dirty tracking; iommufd, or
the legacy type1 container with enable-migration=on) is migrated with and
without `-device intel-iommu`, one right after the other in every
repetition (after an unmeasured run of the same RAM size, in alternating
order: the first VM to use memory that others just freed pays for the host
faulting it in, about 7 s at 2 GiB here), with the device idle or writing
a steady DMA load.  The load is
the same in both: 256 KiB every 10 ms cycling over a 4 MiB window of guest
RAM; with the vIOMMU the guest maps that window IOVA = GPA in 4 KiB pages
(1,024 live mappings, also when the device is idle), without it the
device's IOVAs are guest-physical addresses.  32 MiB of non-zero guest
data make the RAM pass transfer something besides zero pages.  QEMU's
migration parameters are its defaults.  Measured: total time, downtime and
RAM bytes transferred as query-migrate reports them, the time hostsim spent
answering QEMU's calls during the migration (its per-call counters), and
their ratio vIOMMU / no vIOMMU.

hostsim's type1 model runs with precise dirty bits (type1.dirty =
precise, as the e2e cases do): the kernel's type1 reports every mapped
page dirty, which without a vIOMMU is all of guest RAM at every sync, a
migration that never converges, and not a cost of the series.
"""

import harness as h
from stats import ratios, spread

LOAD_GPA, LOAD_SIZE = 0x4000000, 4 << 20          # 64 MiB, 4 MiB window
DATA_GPA, DATA_SIZE = 0x6000000, 32 << 20         # 96 MiB, non-zero data
POOL_BASE, POOL_SIZE = 0x800000, 4 << 20
METRICS = (("total-time", "total time", "ms"), ("downtime", "downtime", "ms"),
           ("transferred", "RAM transferred", "MiB"), ("hostsim", "hostsim time", "ms"))


def one(binary, backend, ram, load, viommu):
    """One migration; returns {"total-time", "downtime", "transferred",
    "hostsim", "syncs", "dma_writes"} or {"error": text}."""
    name = "migrate/%s/%s/%s/%s" % (backend, ram, load, "viommu" if viommu else "no-viommu")
    with h.Run(name, binary, log=False, viommu=viommu, backend=backend, ram=ram) as run:
        src = run.src
        if viommu:
            drv = h.guest_iommu(src, POOL_BASE, POOL_SIZE)
            h.map_bulk(drv, [(LOAD_GPA + o, LOAD_GPA + o) for o in range(0, LOAD_SIZE, 4096)])
        src.qt.memset(DATA_GPA, DATA_SIZE, 0x5A)
        # before the DMA load's thread shares the control socket
        src.ctl.clear_counters()
        dma = h.DmaLoad(src, LOAD_GPA, LOAD_SIZE).start() if load == "dma" else None
        try:
            r = h.migrate(run)
        finally:
            if dma:
                dma.stop()
        counters = src.ctl.counters()
        if not r.completed:
            return {"error": r.summary()}
        info = r.info
        ram_info = info.get("ram", {})
        return {"total-time": info.get("total-time"), "downtime": info.get("downtime"),
                "transferred": ram_info.get("transferred"),
                # the device's own writes are the workload, not QEMU's calls
                "hostsim": h.model_cost(counters, [c for c in counters if c != "dma"])["ns"] / 1e6,
                "syncs": ram_info.get("dirty-sync-count"),
                "dma_writes": dma.writes if dma else 0}


def measure(binary, reps, backends, rams, loads, progress):
    """{"configs": [...]} with every repetition's numbers and the ratios."""
    configs = [(b, r, l) for b in backends for r in rams for l in loads]
    raw = {c: {"viommu": [], "no-viommu": []} for c in configs}
    for rep in range(reps):
        for c in configs:
            # The first VM after others freed their memory pays for the
            # host faulting its RAM in (at 2 GiB about 7 s of kernel time on
            # the destination, here): an unmeasured run of the same size
            # first, and the order alternates, so neither side pays it.
            h.guarded(one, binary, *c, viommu=False)
            for viommu in (False, True) if rep % 2 == 0 else (True, False):
                res = h.guarded(one, binary, *c, viommu=viommu)
                raw[c]["viommu" if viommu else "no-viommu"].append(res)
                progress("item 1 rep %d/%d %s/%s/%s %s: %s" % (
                    rep + 1, reps, c[0], c[1], c[2], "viommu" if viommu else "no-viommu",
                    res.get("error") or "total %s ms, downtime %s ms" % (
                        res["total-time"], res["downtime"])))
    out = []
    for (backend, ram, load), runs in raw.items():
        entry = {"backend": backend, "ram": ram, "load": load, "runs": runs,
                 "errors": [r["error"] for side in runs.values() for r in side
                            if "error" in r]}
        for key, _, _ in METRICS:
            v = [r.get(key) for r in runs["viommu"]]
            n = [r.get(key) for r in runs["no-viommu"]]
            entry[key] = {"viommu": spread(v), "no-viommu": spread(n),
                          "ratio": spread(ratios(v, n))}
        out.append(entry)
    return {"configs": out}
