"""Paths and defaults of the end-to-end suite, all overridable by environment.

  OUT          build area (logs go to $OUT/e2e/<test>/)
  QEMU_BASE    unpatched qemu-system-x86_64 (QEMU 10.2.2 as Debian ships it)
  QEMU_FORK    qemu-system-x86_64 built from the fork (series applied)
  QEMU_BEFORE_<NAME>
               optional binaries of intermediate commits; a scenario that
               names a "before" build (e.g. QEMU_BEFORE_PREUNMAP_QUERY) is
               also run against it when the variable is set.
  QEMU_BIN_DIR per-commit binaries qemu-system-x86_64.NN of the queue
               (default $OUT/bin): builds "upto-NN", see queue_builds().
  HOSTSIM_LIB  libhostsim.so (the VFIO/iommufd model, LD_PRELOADed)
"""

import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

OUT = os.environ.get("OUT") or os.path.join(REPO, "out")
E2E_OUT = os.path.join(OUT, "e2e")

# The pipeline's builds (tests/build-tree): make check sets these too.
QEMU_BASE = os.environ.get("QEMU_BASE") or os.path.join(
    OUT, "base", "build", "qemu-system-x86_64")
QEMU_FORK = os.environ.get("QEMU_FORK") or os.path.join(
    OUT, "build", "qemu-system-x86_64")
HOSTSIM_LIB = os.environ.get("HOSTSIM_LIB") or os.path.join(
    OUT, "hostsim", "libhostsim.so")
HOSTSIM_PY_DIR = os.environ.get("HOSTSIM_PY_DIR") or os.path.join(REPO, "hostsim")
FIRMWARE_DIR = os.environ.get("QEMU_FIRMWARE_DIR") or "/usr/share/seabios"

# hostsim settings every VM starts from; scenarios override per row.
HOSTSIM_DEFAULTS = {
    "kernel": "6.14",
    "migration": "on",
    "precopy": "on",
    "p2p": "on",
    "dma_logging": "off",
    "iommu_dirty": "on",
    "type1.migration_cap": "on",
}


BEFORE_BIN_DIR = os.path.join(OUT, "e2e-before", "bin")
NINTH = ("vfio/migration: Allow live migration with vIOMMU without VFs "
         "using device dirty tracking")


def queue_binary(subject):
    """The pipeline's per-commit binary ($QEMU_BIN_DIR/qemu-system-x86_64.NN,
    NN = position in the queue on top of tag "base" of $FORK_DIR) of the
    commit with this subject, or None."""
    bindir, fork = os.environ.get("QEMU_BIN_DIR"), os.environ.get("FORK_DIR")
    if not bindir or not fork:
        return None
    try:
        log = subprocess.run(["git", "-C", fork, "log", "--reverse", "--format=%s",
                              "base..HEAD"], check=True, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    subjects = log.splitlines()
    if subject not in subjects:
        return None
    path = os.path.join(bindir, "qemu-system-x86_64.%02d" % (subjects.index(subject) + 1))
    return path if os.path.isfile(path) else None


def builds():
    """Ordered {build name: binary} of the builds to test.  "fork" and
    "base" always; before-<name> for each QEMU_BEFORE_<NAME> set; then
    before-followups from the pipeline's per-commit binaries (the ninth
    commit's); then each $OUT/e2e-before/bin/qemu-before-<name>
    (tests/e2e/build-before.sh) not named yet."""
    out = {"fork": QEMU_FORK, "base": QEMU_BASE}
    for key in sorted(os.environ):
        if key.startswith("QEMU_BEFORE_") and os.environ[key]:
            out["before-" + key[len("QEMU_BEFORE_"):].lower().replace("_", "-")] = os.environ[key]
    if "before-followups" not in out:
        ninth = queue_binary(NINTH)
        if ninth:
            out["before-followups"] = ninth
    if os.path.isdir(BEFORE_BIN_DIR):
        for f in sorted(os.listdir(BEFORE_BIN_DIR)):
            if f.startswith("qemu-before-"):
                out.setdefault(f[len("qemu-"):], os.path.join(BEFORE_BIN_DIR, f))
    out.update(queue_builds())
    return out


# Per-commit binaries of the patch queue, kept by the series checks
# (tests/series/run): $QEMU_BIN_DIR/qemu-system-x86_64.NN is the queue up to
# and including its NN-th patch (patches/series order).  A case that states
# an expectation for build "upto-NN" also runs on that binary, e.g. a
# follow-up's test on the commit just before it; when the binary was not
# built the runner reports the test as skipped.
QEMU_BIN_DIR = os.environ.get("QEMU_BIN_DIR") or os.path.join(OUT, "bin")


def queue_patches():
    """File names in patches/series, in queue order."""
    try:
        with open(os.path.join(REPO, "patches", "series")) as f:
            return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    except OSError:
        return []


def queue_builds():
    """{"upto-NN": $QEMU_BIN_DIR/qemu-system-x86_64.NN} for every patch of
    patches/series."""
    return {"upto-%02d" % i: os.path.join(QEMU_BIN_DIR, "qemu-system-x86_64.%02d" % i)
            for i in range(1, len(queue_patches()) + 1)}


def build_before(patch):
    """Name of the build just before the queue's patch whose file name
    contains `patch` (e.g. "Keep-the-iova-tree-intact"): "upto-NN", or
    "base" for the first patch.  Follows the queue when patches move."""
    names = queue_patches()
    pos = [i for i, n in enumerate(names, 1) if patch in n]
    if len(pos) != 1:
        raise LookupError("patches/series: %d patches match %r" % (len(pos), patch))
    return "base" if pos[0] == 1 else "upto-%02d" % (pos[0] - 1)


def build_with(patch):
    """Name of the build of the queue up to and including that patch."""
    before = build_before(patch)
    return "upto-01" if before == "base" else "upto-%02d" % (int(before[5:]) + 1)
