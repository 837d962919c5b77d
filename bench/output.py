"""The benchmark's three outputs: the table (text), the result file (JSON)
and the plots (PNG, drawn by gnuplot from a script written next to them)."""

import json
import os
import shutil
import subprocess

from migrate_viommu import METRICS
from stats import fmt_spread

PLOTS = ("sync-cost.png", "migration-viommu.png")


def _metric_scale(unit):
    return 1.0 / (1 << 20) if unit == "MiB" else 1.0


def table(res):
    """The table as a list of lines."""
    meta = res["meta"]
    lines = ["Benchmarks (%s, %s; %d repetitions; values: median [min-max])"
             % (meta["date"], meta["machine"], meta["reps"])]
    mig = res.get("migration")
    if mig:
        lines += ["", "1. Migration with vs without vIOMMU (fork; ratio = vIOMMU / no vIOMMU)",
                  "%-8s %-5s %-6s | %-24s %-24s %-24s | %s" % (
                      "backend", "RAM", "device", "total time ratio", "downtime ratio",
                      "transferred ratio", "no-vIOMMU / vIOMMU medians: total ms, downtime ms, MiB, "
                      "hostsim ms")]
        for c in mig["configs"]:
            med = []
            for key, _, unit in METRICS:
                s = _metric_scale(unit)
                f = "%.2f" if key == "hostsim" else "%.0f"    # the model: well under 1 ms
                a, b = c[key]["no-viommu"], c[key]["viommu"]
                med.append("%s/%s" % ("-" if a is None else f % (a["median"] * s),
                                      "-" if b is None else f % (b["median"] * s)))
            lines.append("%-8s %-5s %-6s | %-24s %-24s %-24s | %s%s" % (
                c["backend"], c["ram"], c["load"],
                fmt_spread(c["total-time"]["ratio"]), fmt_spread(c["downtime"]["ratio"]),
                fmt_spread(c["transferred"]["ratio"]), ", ".join(med),
                "  ERRORS: %d" % len(c["errors"]) if c["errors"] else ""))
    syn = res.get("sync")
    if syn:
        base = syn["base_count"]
        lines += ["", "2. Dirty sync cost vs live guest IOMMU mappings (nine = the "
                  "nine commits alone, unmerged = the queue before the record kept runs, "
                  "fork = whole queue; 2 MiB mappings share 128 guest target pages)",
                  "%-8s %-4s %-10s %8s %-8s | %12s | %-22s %-22s %-22s | %-27s %-18s | %s"
                  " | %-22s %s" % (
                      "backend", "page", "IOVAs", "mappings", "build", "queries/sync",
                      "mean sync ms", "final sync ms", "hostsim ms/sync",
                      "final vs %d map" % base, "final fork/nine", "downtime ms",
                      "QEMU ms/sync", "QEMU/sync vs %d map" % base)]
        for p in syn["points"]:
            cps = p["calls_per_sync"]
            lines.append("%-8s %-4s %-10s %8d %-8s | %12s | %-22s %-22s %-22s | %-27s %-18s | %-18s"
                         " | %-22s %s%s" % (
                p["backend"], p["page"], p["layout"], p["mappings"], p["build"],
                "-" if cps is None else "%.1f" % cps,
                fmt_spread(p["mean_sync_ms"]), fmt_spread(p["final_sync_ms"]),
                fmt_spread(p["model_ms_per_sync"]),
                fmt_spread(p["final_vs_%d" % base]),
                fmt_spread(p["final_vs_nine"]) if p["build"] == "fork" else "",
                fmt_spread(p["downtime_ms"], digits=0),
                fmt_spread(p["qemu_ms_per_sync"]), fmt_spread(p["qemu_vs_%d" % base]),
                "  ERRORS: %d" % len(p["errors"]) if p["errors"] else ""))
    unm = res.get("unmap")
    if unm:
        lines += ["", "3. One guest unmap, dirty tracking off vs on (hostsim calls; on = inside "
                  "calc-dirty-rate)",
                  "%-8s %-9s %-5s | %-13s %-13s %-19s | %-8s | %s" % (
                      "backend", "unmap", "build", "calls off/on", "reads off/on",
                      "bitmap bytes off/on", "off=base", "invalidation ms off / on")]
        for p in unm["points"]:
            lines.append("%-8s %-9s %-5s | %-13s %-13s %-19s | %-8s | %s / %s%s" % (
                p["backend"], p["kind"], p["build"],
                "%s/%s" % (p["off"]["calls"], p["on"]["calls"]),
                "%s/%s" % (p["off"]["reads"], p["on"]["reads"]),
                "%s/%s" % (p["off"]["bitmap_bytes"], p["on"]["bitmap_bytes"]),
                "yes" if p["off_same_as_base"] else "NO",
                fmt_spread(p["off"]["unmap_ms"]), fmt_spread(p["on"]["unmap_ms"]),
                "  ERRORS: %d" % len(p["errors"]) if p["errors"] else ""))
    tdn = res.get("teardown")
    if tdn:
        lines += ["", "4. Whole address space teardown with dirty tracking on (514 live 4 KiB "
                  "mappings; hostsim calls; refused = unmaps QEMU refused, E2BIG)",
                  "%-8s %-5s %-4s %-5s | %6s %7s %13s %8s %12s | %s" % (
                      "backend", "RAM", "aw", "build", "calls", "unmaps", "bitmap bytes",
                      "refused", "left mapped", "bytes within mapped/32768; within the word bound")]
        for p in tdn["points"]:
            if p["errors"]:
                lines.append("%-8s %-5s %-4d %-5s | ERROR: %s" % (
                    p["backend"], p["ram"], p["aw"], p["build"], p["errors"][0][:80]))
                continue
            lines.append("%-8s %-5s %-4d %-5s | %6d %7d %13d %8d %12d | %s (bound %d); %s (%d)" % (
                p["backend"], p["ram"], p["aw"], p["build"], p["calls"], p["unmaps"],
                p["bitmap_bytes"], p["refused"], p["left_mapped"],
                "yes" if p["within_bound"] else "no", p["bound_bytes"],
                "yes" if p["within_word_bound"] else "no", p["word_bound_bytes"]))
    clr = res.get("clears")
    if clr:
        pts = clr["points"]
        lines += ["", "5. Dirty-bit clears per migration (a clear: a read that clears the "
                  "bits, an IOTLB flush on a real IOMMU), %d 4 KiB mappings, %d unmapped "
                  "one by one during the migration; fork reads with NO_CLEAR before an unmap, "
                  "no-clear = the fork with a clearing read there" % (
                      pts[0]["mapped"], pts[0]["unmapped"]) if pts else "",
                  "%-8s %-8s | %-16s %-16s %-16s | %-16s %-8s %-10s %-5s | %s" % (
                      "backend", "build", "clears", "at syncs", "at unmaps", "NO_CLEAR reads",
                      "unmaps", "syncs", "lost", "clears fork / no-clear")]
        for p in pts:
            lines.append("%-8s %-8s | %-16s %-16s %-16s | %-16s %-8s %-10s %-5s | %s%s" % (
                p["backend"], p["build"], fmt_spread(p["clears"], digits=0),
                fmt_spread(p["clears_at_sync"], digits=0),
                fmt_spread(p["clears_at_unmap"], digits=0),
                fmt_spread(p["no_clear_reads"], digits=0), fmt_spread(p["unmaps"], digits=0),
                fmt_spread(p["syncs"], digits=0), fmt_spread(p["pages_lost"], digits=0),
                fmt_spread(p["clears_vs_no_clear"]) if p["build"] == "fork" else "",
                "  ERRORS: %d" % len(p["errors"]) if p["errors"] else ""))
    bld = res.get("build")
    if bld:
        lines += ["", "6. Build cost: configure + build of qemu-system-x86_64 (warm: ccache "
                  "warm; cold: empty ccache); per-commit = the series stage's build of every "
                  "commit in turn",
                  "%-5s %-16s | %-20s | %-22s %-22s" % (
                      "cache", "ratio", "median [min-max]", "numerator s", "denominator s")]
        for p in bld["rows"]:
            lines.append("%-5s %-16s | %-20s | %-22s %-22s%s%s" % (
                p["kind"], p["what"], fmt_spread(p["ratio"]), fmt_spread(p["num_s"], digits=0),
                fmt_spread(p["den_s"], digits=0),
                " (%s commits)" % p["commits"] if p["what"].startswith("per") else "",
                "  ERRORS: %d (%s)" % (len(p["errors"]), p["errors"][0][:80])
                if p["errors"] else ""))
    return lines


def write_json(res, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _sync_plot(res, d, term):
    """Data files and gnuplot commands of the item 2 figure: a row per
    backend, final sync time on the left, queries per sync on the right,
    a line per page size, layout and build."""
    syn = res.get("sync")
    if not syn:
        return []
    backends, series = [], []
    for p in syn["points"]:
        if p["backend"] not in backends:
            backends.append(p["backend"])
        key = (p["page"], p["layout"], p["build"])
        if key not in series:
            series.append(key)
    cmds = [term(120 + 480 * len(backends)),
            "set output '%s'" % os.path.join(d, "sync-cost.png"),
            "set multiplot layout %d,2 title 'Migration dirty sync vs live guest IOMMU "
            "mappings (%s, %s)'" % (len(backends), res["meta"]["date"][:10],
                                    res["meta"]["machine"]),
            "set logscale xy", "set key top left", "set grid",
            "set xlabel 'live guest IOMMU mappings'"]
    for be in backends:
        plots_t, plots_c = [], []
        for pg, lay, b in series:
            data = os.path.join(d, "sync-%s-%s-%s-%s.dat" % (be, pg, lay, b))
            with open(data, "w") as f:
                f.write("# mappings final_ms_median min max queries_per_sync\n")
                for p in syn["points"]:
                    if (p["backend"], p["page"], p["layout"], p["build"]) != (be, pg, lay, b):
                        continue
                    s = p["final_sync_ms"]
                    if s is None:
                        continue
                    f.write("%d %g %g %g %s\n" % (p["mappings"], s["median"], s["min"],
                                                  s["max"], p["calls_per_sync"] or "NaN"))
            title = "%s %s %s" % (b, pg, lay)
            # 2 MiB mappings dashed, 4 KiB solid
            dt = " dt 2" if pg != "4K" else ""
            plots_t.append("'%s' using 1:2:3:4 with yerrorlines%s title '%s'"
                           % (data, dt, title))
            plots_c.append("'%s' using 1:5 with linespoints%s title '%s'" % (data, dt, title))
        cmds += ["set autoscale y",
                 "set ylabel '%s: final dirty sync (ms), median, min-max'" % be,
                 "plot " + ", ".join(plots_t),
                 "set yrange [0.5:*]",
                 "set ylabel '%s: dirty-bitmap queries per sync'" % be,
                 "plot " + ", ".join(plots_c)]
    cmds.append("unset multiplot")
    return cmds


def _migration_plot(res, d, term):
    mig = res.get("migration")
    if not mig:
        return []
    data = os.path.join(d, "migration-viommu.dat")
    with open(data, "w") as f:
        f.write("# index label " + " ".join("%s_med %s_min %s_max" % (k, k, k)
                                            for k, _, _ in METRICS) + "\n")
        for i, c in enumerate(mig["configs"]):
            row = ["%d" % i, "%s/%s/%s" % (c["backend"], c["ram"], c["load"])]
            for k, _, _ in METRICS:
                s = c[k]["ratio"]
                row += ["NaN"] * 3 if s is None else ["%g" % s["median"], "%g" % s["min"],
                                                     "%g" % s["max"]]
            f.write(" ".join(row) + "\n")
    plots = []
    for j, (k, label, _) in enumerate(METRICS):
        col = 3 + 3 * j
        # the configuration names under the middle series only
        plots.append("'%s' using ($1+%g):%d:%d:%d%s with yerrorbars pt 7 title '%s'"
                     % (data, (j - 1) * 0.15, col, col + 1, col + 2,
                        ":xtic(2)" if j == 1 else "", label))
    return [term(600), "set output '%s'" % os.path.join(d, "migration-viommu.png"),
            "unset logscale", "set logscale y", "set grid", "set key top left",
            "set title 'Migration with vIOMMU / without, fork (%s, %s)'"
            % (res["meta"]["date"][:10], res["meta"]["machine"]),
            "set xlabel 'backend / RAM / device'", "set ylabel 'ratio vIOMMU / no vIOMMU'",
            "set xtics rotate by -30", "set xrange [-0.5:%g]" % (len(mig["configs"]) - 0.5),
            "plot " + ", ".join(plots) + ", 1 notitle lt 0"]


def plots(res, d):
    """Draw the PNGs into d with gnuplot; return the paths written."""
    gp = shutil.which("gnuplot")
    if not gp:
        raise RuntimeError("gnuplot not found (build/deps.sh installs gnuplot-nox)")
    kind = "pngcairo" if _has_pngcairo(gp) else "png"

    def term(height):
        return "set terminal %s size 1400,%d noenhanced" % (kind, height)
    cmds = _sync_plot(res, d, term) + _migration_plot(res, d, term)
    script = os.path.join(d, "plots.gp")
    with open(script, "w") as f:
        f.write("\n".join(cmds) + "\n")
    subprocess.run([gp, script], check=True, stdout=subprocess.DEVNULL)
    return [os.path.join(d, p) for p in PLOTS if os.path.exists(os.path.join(d, p))]


def _has_pngcairo(gp):
    r = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (r.stdout + r.stderr)
