#!/bin/bash
# Export the fork's queue (base..HEAD) back into patches/ with git
# format-patch, and rewrite patches/series to match. The way to change a
# patch: edit and commit (or rebase) in the fork, then run this.
# Output is stable: zero commit ids, no signature, fixed numbering and full
# blob ids on the index lines (an abbreviated id is as long as the fork's
# object count makes it, which differs between two forks of the same
# queue), so an export of an unchanged fork changes no file.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/fork/queue.sh"
. "$repo/base/pin.env"
: "${OUT:=$repo/out}"
: "${FORK_DIR:=$OUT/fork}"
patches="$repo/patches"

fail() {
	printf '\nexport: %s\n\n' "$*" | fold -s -w 78 >&2
	exit 1
}

[ -d "$FORK_DIR/.git" ] || fail "no fork at $FORK_DIR; run 'make fork' first."
git -C "$FORK_DIR" rev-parse -q --verify base >/dev/null ||
	fail "$FORK_DIR has no 'base' tag; it was not made by fork/make-fork.sh."
[ -z "$(git -C "$FORK_DIR" status --porcelain --untracked-files=no)" ] ||
	fail "$FORK_DIR has uncommitted edits; commit them (or stash) first. Nothing was exported."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$FORK_DIR" format-patch -q --zero-commit --no-signature \
	--full-index --no-numbered -o "$tmp" base..HEAD

# Keep the comment lines of the old series file at the same positions.
declare -A comments=()
i=0
if [ -f "$patches/series" ]; then
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		'#'*|'') comments[$i]+="$line"$'\n' ;;
		*) i=$((i + 1)) ;;
		esac
	done <"$patches/series"
fi

for f in $(queue_files "$patches"); do
	rm -f "$f"
done
i=0
{
	for f in "$tmp"/*.patch; do
		[ -e "$f" ] || continue
		printf '%s' "${comments[$i]:-}"
		cp "$f" "$patches/"
		basename "$f"
		i=$((i + 1))
	done
	printf '%s' "${comments[$i]:-}"
} >"$patches/series.new"
mv "$patches/series.new" "$patches/series"

# The fork now matches patches/: record that so make-fork.sh keeps it.
git -C "$FORK_DIR" config qvm.fingerprint \
	"$(queue_fingerprint "$BASE_SHA256" "$repo/base/fixups" "$patches")"
git -C "$FORK_DIR" config qvm.head "$(git -C "$FORK_DIR" rev-parse HEAD)"
echo "export: $i patches written to $patches (series updated)"
