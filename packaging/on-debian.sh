# Source this file: apply_ours, which applies one patch of our queue on a
# tree where Debian's patch stack is applied (packaging/make-source.sh), and
# names the Debian patches it collides with when it does not apply.
# shellcheck shell=bash

# Files a patch touches (its "+++ b/..." lines).
touched() {
	sed -n 's|^+++ b/||p' "$1" | sed 's/\t.*//' | sort -u
}

# Apply patch $2 on tree $1 with neither fuzz nor offset. When it does not
# apply cleanly, print which of Debian's patches (debian/patches/series,
# without ours under $3/) touch the same files, and return 1.
apply_ours() {
	local tree=$1 p=$2 ours_dir=$3 out deb hits=""
	if out=$(patch -d "$tree" -p1 -F 0 -N --no-backup-if-mismatch <"$p" 2>&1) &&
		! grep -q 'offset\|fuzz' <<<"$out"; then
		return 0
	fi
	while read -r deb; do
		[ -n "$(comm -12 <(touched "$p") <(touched "$tree/debian/patches/$deb"))" ] &&
			hits="$hits $deb"
	done < <(grep -v '^#' "$tree/debian/patches/series" | grep . | grep -v "^$ours_dir/")
	echo "our patch $(basename "$p") does not apply cleanly on Debian's patch stack ($out). Debian patches that touch the same files:${hits:- none}. Rebase it (make export after fixing the fork) and run again."
	return 1
}
