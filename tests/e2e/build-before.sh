#!/bin/bash
# Build the intermediate QEMU binaries the end-to-end cases also run on, to
# show that they catch the bugs the series and its follow-ups fix:
#
#   qemu-before-followups       the queue up to the ninth commit of the
#                               series ("vfio/migration: Allow live migration
#                               with vIOMMU without VFs using device dirty
#                               tracking"), i.e. without the follow-ups
#                               (make check gets it for free from the
#                               per-commit binaries in $QEMU_BIN_DIR)
#   qemu-before-preunmap-query  the whole queue plus before/no-preunmap-query.patch:
#                               iommufd unmaps without reading the dirty
#                               bitmap first (what "vfio/iommufd: Query dirty
#                               bitmap before DMA unmap" adds); no queue
#                               prefix can show this, as the vIOMMU blocker
#                               goes only with the ninth commit
#   qemu-before-upstream-teardown-lookup
#                               the nine plus before/upstream-teardown-lookup.patch:
#                               "intel_iommu: Fix unmap_bitmap failure with legacy
#                               VFIO backend" looking up the recorded mappings of
#                               a teardown as upstream's cac33cb5 does, with the
#                               notifier's unclamped range (it wraps for the
#                               notifier above the interrupt window)
#   qemu-before-record-runs     the queue just before "vfio/listener: Record runs
#                               of contiguous vIOMMU mappings as one entry"
#                               (make bench's item 2 compares it: "unmerged")
#   qemu-no-clear-at-unmap      the whole queue plus bench/before/no-clear-at-unmap.patch:
#                               iommufd reads the dirty bits before an unmap
#                               without NO_CLEAR, clearing them (make bench's
#                               item 5 compares its clear operations)
#   qemu-before-cpr-exec-unblocked
#                               the whole queue plus before/cpr-exec-unblocked.patch:
#                               the prerequisite fix without its CPR exec half
#                               (the blocker names CPR transfer twice, as in
#                               10.2.2); no queue prefix can show this, as the
#                               build before the fix is the base, which crashes
#                               at realize on such a kernel
#
# into $OUT/e2e-before/bin/, from the generated fork ($FORK_DIR, default
# $OUT/fork).  tests/e2e/run picks them up from there.  One checkout and
# build tree ($OUT/e2e-before/{fork,build}, the pipeline's layout, so ccache
# entries are shared), rebuilt incrementally between the binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${OUT:=$repo/out}"
: "${FORK_DIR:=$OUT/fork}"
export OUT
work=$OUT/e2e-before
ninth="vfio/migration: Allow live migration with vIOMMU without VFs using device dirty tracking"
record_runs="vfio/listener: Record runs of contiguous vIOMMU mappings as one entry"

fail() { echo "build-before: $*" >&2; exit 1; }

[ -d "$FORK_DIR/.git" ] || fail "no fork at $FORK_DIR (run 'make fork')"
head=$(git -C "$FORK_DIR" rev-parse HEAD)

commit_titled() {   # $1 = subject; prints the queue commit with that title
	local sha
	sha=$(git -C "$FORK_DIR" log --format='%H %s' "$head" |
		awk -v s="$1" 'substr($0, 42) == s { print $1; exit }')
	[ -n "$sha" ] || fail "commit \"$1\" not found in $FORK_DIR"
	echo "$sha"
}
ninth_sha=$(commit_titled "$ninth")
record_runs_sha=$(commit_titled "$record_runs")

mkdir -p "$work/bin"
if [ ! -d "$work/fork/.git" ]; then
	git clone -q --no-checkout "$FORK_DIR" "$work/fork"
fi
git -C "$work/fork" fetch -q "$FORK_DIR" "$head"

build() {   # $1 = commit, $2 = binary name, $3 = optional patch
	git -C "$work/fork" checkout -q -f --detach "$1"
	if [ -n "${3:-}" ]; then
		git -C "$work/fork" apply "$3" || fail "$3 does not apply to $1"
	fi
	SRC="$work/fork" BUILD_DIR="$work/build" JOBS="${JOBS:-2}" \
		"$repo/build/build.sh" > "$work/$2.log" 2>&1 ||
		fail "build of $2 failed, see $work/$2.log"
	cp "$work/build/qemu-system-x86_64" "$work/bin/$2.tmp"
	mv "$work/bin/$2.tmp" "$work/bin/$2"
	git -C "$work/fork" checkout -q -f "$1"
	echo "build-before: $work/bin/$2 ($(git -C "$work/fork" log -1 --format=%h "$1")${3:+ + $(basename "$3")})"
}

build "$ninth_sha" qemu-before-followups
build "$ninth_sha" qemu-before-upstream-teardown-lookup "$here/before/upstream-teardown-lookup.patch"
build "$record_runs_sha~1" qemu-before-record-runs
build "$head" qemu-before-preunmap-query "$here/before/no-preunmap-query.patch"
build "$head" qemu-before-cpr-exec-unblocked "$here/before/cpr-exec-unblocked.patch"
build "$head" qemu-no-clear-at-unmap "$repo/bench/before/no-clear-at-unmap.patch"
