"""Where things are: the build area's paths, the QEMU_* variables, and the
patch queue's builds.  Every path can be overridden by environment:

  OUT          build area (default <repo>/out); e2e logs go to $OUT/e2e/
  FORK_DIR     the generated fork (default $OUT/fork)
  QEMU_BASE    unpatched qemu-system-x86_64 (QEMU 10.2.2 as Debian ships it)
  QEMU_FORK    qemu-system-x86_64 built from the fork (series applied)
  QEMU_BIN_DIR per-commit binaries qemu-system-x86_64.NN of the queue
               (default $OUT/bin, kept by tests/series/run)
  QEMU_BEFORE_<NAME>
               binaries of intermediate builds: build "before-<name>"
  HOSTSIM_LIB  libhostsim.so (the VFIO/iommufd model, LD_PRELOADed)
  QEMU_FIRMWARE_DIR  firmware for -L (default /usr/share/seabios)

Build names (tests/e2e/run --build, the keys of a case's expectations):
  fork, base        the two pipeline builds
  upto-NN           the queue up to and including its NN-th patch
                    (patches/series order): $QEMU_BIN_DIR/qemu-system-x86_64.NN
  before-followups  the queue up to the ninth commit of the series, i.e.
                    without the follow-ups: the upto-NN of that commit,
                    which is never listed under its number ("upto-NN" is
                    accepted for it on the command line, see build_name())
  before-<name>     tests/e2e/build-before.sh's other binaries
                    ($OUT/e2e-before/bin/qemu-before-<name>)

Standard library only: the nested runner imports it inside the L1 guest.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)

OUT = os.environ.get("OUT") or os.path.join(REPO, "out")
FORK_DIR = os.environ.get("FORK_DIR") or os.path.join(OUT, "fork")
E2E_OUT = os.path.join(OUT, "e2e")
QEMU_BASE = os.environ.get("QEMU_BASE") or os.path.join(
    OUT, "base", "build", "qemu-system-x86_64")
QEMU_FORK = os.environ.get("QEMU_FORK") or os.path.join(
    OUT, "build", "qemu-system-x86_64")
QEMU_BIN_DIR = os.environ.get("QEMU_BIN_DIR") or os.path.join(OUT, "bin")
HOSTSIM_LIB = os.environ.get("HOSTSIM_LIB") or os.path.join(
    OUT, "hostsim", "libhostsim.so")
BEFORE_BIN_DIR = os.path.join(OUT, "e2e-before", "bin")
FIRMWARE_DIR = os.environ.get("QEMU_FIRMWARE_DIR") or "/usr/share/seabios"
PATCH_DIR = os.path.join(REPO, "patches")

# The ninth commit of the series, by its patch file name: the last build
# without the follow-ups.
NINTH = "vfio-migration-Allow-live-migration-with-vIOMMU-with"


def suite_env(base=None):
    """The environment make check gives every suite: the variables above
    set to their defaults when unset."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OUT", OUT)
    env.setdefault("FORK_DIR", FORK_DIR)
    env.setdefault("QEMU_BASE", QEMU_BASE)
    env.setdefault("QEMU_FORK", QEMU_FORK)
    env.setdefault("QEMU_BIN_DIR", QEMU_BIN_DIR)
    env.setdefault("HOSTSIM_LIB", HOSTSIM_LIB)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# ---- the queue -------------------------------------------------------------
def queue_patches(patch_dir=PATCH_DIR):
    """Patch file names of <patch_dir>/series, in queue order ([] without
    the file)."""
    try:
        with open(os.path.join(patch_dir, "series")) as f:
            return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    except OSError:
        return []


def queue_position(patch):
    """1-based position in the queue of the patch whose file name contains
    `patch` (e.g. "Keep-the-iova-tree-intact")."""
    pos = [i for i, n in enumerate(queue_patches(), 1) if patch in n]
    if len(pos) != 1:
        raise LookupError("patches/series: %d patches match %r" % (len(pos), patch))
    return pos[0]


def queue_binary(pos):
    """$QEMU_BIN_DIR/qemu-system-x86_64.NN: the queue up to its pos-th patch."""
    return os.path.join(QEMU_BIN_DIR, "qemu-system-x86_64.%02d" % pos)


def build_name(pos):
    """Name of the build of the queue up to its pos-th patch ("base" for 0)."""
    if pos == 0:
        return "base"
    if pos == queue_position(NINTH):
        return "before-followups"
    return "upto-%02d" % pos


def build_before(patch):
    """Name of the build just before the queue's patch whose file name
    contains `patch`: "base" for the first patch.  Follows the queue when
    patches move."""
    return build_name(queue_position(patch) - 1)


def build_with(patch):
    """Name of the build of the queue up to and including that patch."""
    return build_name(queue_position(patch))


def queue_builds():
    """{build name: per-commit binary} for every patch of patches/series."""
    return {build_name(i): queue_binary(i) for i in range(1, len(queue_patches()) + 1)}


def builds():
    """Ordered {build name: binary} of the builds to test: "fork" and "base";
    before-<name> for each QEMU_BEFORE_<NAME> set; before-followups (the
    per-commit binary when it was built, else build-before.sh's); each
    other $OUT/e2e-before/bin/qemu-before-<name>; then the queue's
    per-commit builds."""
    out = {"fork": QEMU_FORK, "base": QEMU_BASE}
    for key in sorted(os.environ):
        if key.startswith("QEMU_BEFORE_") and os.environ[key]:
            out["before-" + key[len("QEMU_BEFORE_"):].lower().replace("_", "-")] = os.environ[key]
    queue = queue_builds()
    if "before-followups" not in out and os.path.isfile(queue.get("before-followups", "")):
        out["before-followups"] = queue["before-followups"]
    if os.path.isdir(BEFORE_BIN_DIR):
        for f in sorted(os.listdir(BEFORE_BIN_DIR)):
            if f.startswith("qemu-before-"):
                out.setdefault(f[len("qemu-"):], os.path.join(BEFORE_BIN_DIR, f))
    for name, path in queue.items():
        out.setdefault(name, path)
    return out


def canonical_build(name):
    """A build name as given on a command line: "upto-NN" of the ninth
    commit is before-followups."""
    if name.startswith("upto-") and name[5:].isdigit():
        return build_name(int(name[5:]))
    return name
