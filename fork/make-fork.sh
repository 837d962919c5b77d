#!/bin/bash
# Generate the fork: a git tree whose history is
#   import of the pinned tarball (tag qemu-10.2.2+ds)
#   base fix-ups from base/fixups/series (tag base: the unpatched base)
#   the queue from patches/series, applied with git am (branch master)
# Fast and idempotent: nothing is redone when the inputs did not change.
# A fork with local commits or edits is never thrown away: export them first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/base/pin.env"
. "$repo/fork/identity.sh"
. "$repo/fork/queue.sh"
: "${OUT:=$repo/out}"
: "${FORK_DIR:=$OUT/fork}"
export OUT

fail() {
	printf '\nfork: %s\n\n' "$*" | fold -s -w 78 >&2
	exit 1
}

fixups="$repo/base/fixups"
patches="$repo/patches"
want=$(queue_fingerprint "$BASE_SHA256" "$fixups" "$patches")
for f in $(queue_files "$fixups") $(queue_files "$patches"); do
	[ -f "$f" ] || fail "$f is listed in $(dirname "$f")/series but does not exist."
done

if [ -d "$FORK_DIR/.git" ]; then
	have=$(git -C "$FORK_DIR" config --get qvm.fingerprint || true)
	made=$(git -C "$FORK_DIR" config --get qvm.head || true)
	head=$(git -C "$FORK_DIR" rev-parse -q --verify HEAD || true)
	dirty=$(git -C "$FORK_DIR" status --porcelain --untracked-files=no)
	if [ "$have" = "$want" ] && [ "$head" = "$made" ] && [ -z "$dirty" ]; then
		echo "fork: $FORK_DIR is up to date ($(git -C "$FORK_DIR" rev-list --count base..HEAD) commits on base)"
		exit 0
	fi
	if { [ "$head" != "$made" ] || [ -n "$dirty" ]; } && [ -z "${FORCE:-}" ]; then
		fail "$FORK_DIR has commits or edits that are not in patches/ (HEAD $head, generated as ${made:-unknown}). Nothing was changed. Commit your edits there and run 'make export' to write them to patches/, or run again with FORCE=1 to discard them."
	fi
fi

tarball=$("$repo/base/fetch.sh" | tail -n 1)

new="$FORK_DIR.new"
rm -rf "$new" "$FORK_DIR.failed"
mkdir -p "$new"
echo "fork: importing $(basename "$tarball")"
tar -xf "$tarball" -C "$new" --strip-components=1 "$BASE_TOPDIR"
git -C "$new" init -q -b master
git -C "$new" config core.autocrlf false
# No background "git gc --auto" from git am: it would still be writing into
# the tree while it is moved into place or removed.
git -C "$new" config gc.auto 0
git -C "$new" config maintenance.auto false
git -C "$new" add -A -f .
git -C "$new" commit -q -m "Import QEMU 10.2.2 from Debian's $BASE_TARBALL

Debian source package $BASE_SOURCE_PACKAGE $BASE_SOURCE_VERSION,
sha256 $BASE_SHA256."
git -C "$new" tag qemu-10.2.2+ds

apply_queue() {
	local dir=$1 what=$2 f
	for f in $(queue_files "$dir"); do
		if ! git -C "$new" am -q --keep-cr --committer-date-is-author-date "$f" \
			>"$new.am.log" 2>&1; then
			said=$(head -n 5 "$new.am.log" | tr '\n' ' ')
			git -C "$new" am --abort >/dev/null 2>&1 || true
			rm -rf "$FORK_DIR.failed"
			mv "$new" "$FORK_DIR.failed"
			mv "$new.am.log" "$FORK_DIR.failed/git-am.log"
			fail "$what patch $(basename "$f") does not apply. git am said: $said The fork at $FORK_DIR was left as it was; the partial attempt is in $FORK_DIR.failed for inspection. Rebase the patch onto the commits before it and run again."
		fi
	done
	rm -f "$new.am.log"
}
apply_queue "$fixups" "base fix-up"
git -C "$new" tag base
apply_queue "$patches" "series"
git -C "$new" config qvm.fingerprint "$want"
git -C "$new" config qvm.head "$(git -C "$new" rev-parse HEAD)"

# Swap in the new tree only now that it is complete.
if [ -e "$FORK_DIR" ]; then
	mv "$FORK_DIR" "$FORK_DIR.old"
fi
mv "$new" "$FORK_DIR"
rm -rf "$FORK_DIR.old"
echo "fork: $FORK_DIR generated: $(git -C "$FORK_DIR" rev-list --count base..HEAD) commits on base"
