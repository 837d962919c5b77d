#!/bin/bash
# Build the comparison binary that no queue prefix provides:
#
#   qemu-no-clear-at-unmap   the whole queue plus before/no-clear-at-unmap.patch:
#                            the dirty-bitmap query before an iommufd unmap
#                            clears the dirty bits (flags 0), as it did before
#                            "vfio/iommufd: Add IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
#                            flag support"; the queue up to the commit before
#                            it cannot show this, as it still refuses
#                            migration with a vIOMMU
#
# into $OUT/bench-before/bin/ (item 5 of bench/run), from the generated fork
# ($FORK_DIR, default $OUT/fork).  The pipeline's layout
# ($OUT/bench-before/{fork,build}) shares ccache entries with the other
# trees; the build is incremental after the first one.  A binary built from
# the fork's current HEAD with the current patch (stamp file beside it) is
# kept: then this takes a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
: "${OUT:=$repo/out}"
: "${FORK_DIR:=$OUT/fork}"
export OUT
work=$OUT/bench-before
name=qemu-no-clear-at-unmap
patch=$here/before/no-clear-at-unmap.patch

fail() { echo "bench/build-before: $*" >&2; exit 1; }

[ -d "$FORK_DIR/.git" ] || fail "no fork at $FORK_DIR (run 'make fork')"
head=$(git -C "$FORK_DIR" rev-parse HEAD)
stamp="$head $(sha1sum <"$patch" | cut -d' ' -f1)"
if [ -x "$work/bin/$name" ] && [ "$(cat "$work/bin/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi
mkdir -p "$work/bin"
if [ ! -d "$work/fork/.git" ]; then
	git clone -q --no-checkout "$FORK_DIR" "$work/fork"
fi
git -C "$work/fork" fetch -q "$FORK_DIR" "$head"
git -C "$work/fork" checkout -q -f --detach "$head"
git -C "$work/fork" apply "$patch" || fail "$patch does not apply to the fork's HEAD"
SRC="$work/fork" BUILD_DIR="$work/build" JOBS="${JOBS:-2}" \
	"$repo/build/build.sh" >"$work/$name.log" 2>&1 ||
	fail "build of $name failed, see $work/$name.log"
cp "$work/build/qemu-system-x86_64" "$work/bin/$name.tmp"
mv "$work/bin/$name.tmp" "$work/bin/$name"
echo "$stamp" >"$work/bin/$name.stamp"
git -C "$work/fork" checkout -q -f "$head"
echo "bench/build-before: $work/bin/$name ($(git -C "$work/fork" log -1 --format=%h "$head") + $(basename "$patch"))"
