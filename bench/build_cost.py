"""Item 6: what the queue costs the build: configure + build of
qemu-system-x86_64 (build/build.sh, the pipeline's configuration) of the
fork against the unpatched base (the fork's `base` tag), and the series
stage's per-commit build check (tests/series/run: every commit of the
queue in turn, incrementally, in one checkout and build directory) against
one build of the fork.

  warm  ccache as the pipeline leaves it (the user's CCACHE_DIR): what a
        developer's rebuild costs;
  cold  an empty private CCACHE_DIR for each measurement (removed after
        it): what a first build costs.

Every measurement starts from an empty build directory, in
$OUT/bench/build-cost/ (the pipeline's layout, <dir>/fork beside
<dir>/build, so warm builds hit the entries the pipeline made).  In every
repetition the base, the fork and the per-commit check run one right after
the other.  Ratios: fork / base, per-commit check / one fork build.
Not run by default: on a 2-core machine the warm variant takes about 20
minutes per repetition, the cold one (three compiles of QEMU without a
cache) hours.
"""

import os
import shutil
import subprocess
import time

import harness as h
from lib import trees
from stats import ratios, spread

KINDS = ("warm", "cold")


def rows(kinds):
    """(kind, what) of the table's rows."""
    return [(k, w) for k in kinds for w in ("fork/base", "per-commit/fork")]


def _build(src, build_dir, cache, fresh=True):
    """Seconds build/build.sh takes to configure and build src in an empty
    build_dir (fresh=False: build in it as it is, incrementally); cache: a
    private CCACHE_DIR or None (the user's)."""
    if fresh:
        shutil.rmtree(build_dir, ignore_errors=True)
    env = dict(os.environ, SRC=src, BUILD_DIR=build_dir, TARGETS="qemu-system-x86_64")
    if cache:
        env["CCACHE_DIR"] = cache
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(h.REPO, "build", "build.sh")], env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    took = time.monotonic() - t0
    if r.returncode:
        raise RuntimeError("build of %s failed: %s" % (src, r.stdout[-400:]))
    return took


def _fresh_cache(work, kind):
    if kind != "cold":
        return None
    cache = os.path.join(work, "ccache-cold")
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    return cache


def one(fork, work, kind):
    """{"base": s, "fork": s, "per-commit": s, "commits": n} for one
    repetition of that kind."""
    out = {}
    for what, rev in (("base", "base"), ("fork", "HEAD")):
        tree = trees.sync_checkout(fork, os.path.join(work, what), rev)
        cache = _fresh_cache(work, kind)
        try:
            out[what] = _build(tree, os.path.join(work, what, "build"), cache)
        finally:
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
    # tests/series/run's walk: one checkout, commit after commit
    queue = trees.queue(fork)
    walk = os.path.join(work, "walk")
    cache = _fresh_cache(work, kind)
    try:
        total = 0.0
        for i, (commit, _) in enumerate(queue):
            tree = trees.sync_checkout(fork, walk, commit)
            total += _build(tree, os.path.join(walk, "build"), cache, fresh=(i == 0))
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    out.update({"per-commit": total, "commits": len(queue)})
    return out


def measure(reps, kinds, d, progress):
    fork = os.environ.get("FORK_DIR") or os.path.join(h.layout.OUT, "fork")
    work = os.path.join(d, "build-cost")
    raw = {k: [] for k in kinds}
    for rep in range(reps):
        for k in kinds:
            r = h.guarded(one, fork, work, k)
            raw[k].append(r)
            # the build directories are 2 GiB; the checkouts stay for the next run
            for what in ("base", "fork", "walk"):
                shutil.rmtree(os.path.join(work, what, "build"), ignore_errors=True)
            progress("item 6 rep %d/%d %s: %s" % (rep + 1, reps, k, r.get("error") or (
                "base %.0f s, fork %.0f s, per-commit check %.0f s (%d commits)" % (
                    r["base"], r["fork"], r["per-commit"], r["commits"]))))
    out = []
    for k, what in rows(kinds):
        runs = raw[k]
        num, den = what.split("/")
        e = {"kind": k, "what": what, "runs": runs,
             "errors": [r["error"] for r in runs if "error" in r],
             "num_s": spread([r.get(num) for r in runs]),
             "den_s": spread([r.get(den) for r in runs]),
             "ratio": spread(ratios([r.get(num) for r in runs], [r.get(den) for r in runs])),
             "commits": next((r["commits"] for r in runs if "commits" in r), None)}
        out.append(e)
    return {"rows": out}
