#!/bin/bash
# make deb: our Debian source package (make-source.sh), then the binary
# packages for an x86 user built from it with dpkg-buildpackage
# (binary-tree.sh, build-deps.sh, build-binary.sh), a list of every file
# produced with its size and sha256, the packages installed into a scratch
# root (scratch-root.sh) and the installed qemu-system-x86_64 checked
# (check-installed: its --version, the e2e realize-policy scenario and an
# unmap-during-migration scenario per backend).
#
# DEB_RESUME=1 continues a build that stopped (dpkg-buildpackage -nc in the
# existing tree: what it built is kept, the steps after the failed one run).
#
# Writes the outcome, date and duration to packaging/latest-result.txt
# (shown in README.md) whether it passes or fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/version.env"
. "$here/binary.env"
: "${OUT:=$repo/out}"
export OUT

result=$here/latest-result.txt
listing=$OUT/deb-bin/files.txt
start=$(date +%s)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
step=start
build_secs=
resumed=

duration() {
	printf '%dh%02dm' $(($1 / 3600)) $(($1 % 3600 / 60))
}

write_result() {
	local rc=$? outcome
	if [ "$rc" -eq 0 ]; then
		outcome=passed
	else
		outcome="failed at step \"$step\" (exit $rc)"
	fi
	{
		echo "# The latest run of make deb (written by packaging/make-deb.sh)"
		echo "date:     $started"
		echo "duration: $(duration $(($(date +%s) - start))) in all${build_secs:+, of which $(duration "$build_secs") dpkg-buildpackage}"
		echo "machine:  $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), build at nice 19"
		echo "version:  $DEB_VERSION"
		echo "profiles: $DEB_PROFILES"
		echo "outcome:  $outcome"
		[ -z "$resumed" ] || echo "resumed:  $resumed"
		if [ -s "$listing" ]; then
			echo
			echo "files (bytes, sha256):"
			cat "$listing"
		fi
	} >"$result"
	echo "packaging: $outcome; result in $result"
}
trap write_result EXIT
rm -f "$listing"

step=source
"$here/make-source.sh"
step=unpack
upstream=${DEB_VERSION#*:}
tree=$OUT/deb-bin/qemu-${upstream%-*}
if [ -n "${DEB_RESUME:-}" ] && [ -d "$tree/b" ]; then
	# Resume a build that stopped late: keep its tree and what it built.
	echo "packaging: DEB_RESUME: continuing the build in $tree"
	# The run it continues, as its result file says (the times add up).
	resumed="the build of the run of $(sed -n 's/^date: *//p' "$result" 2>/dev/null) ($(sed -n 's/^duration: *//p' "$result" 2>/dev/null); $(sed -n 's/^outcome: *//p' "$result" 2>/dev/null))"
else
	tree=$("$here/binary-tree.sh")
fi
step=build-deps
"$here/build-deps.sh" "$tree"
step=build
b0=$(date +%s)
"$here/build-binary.sh" "$tree"
build_secs=$(($(date +%s) - b0))
echo "packaging: dpkg-buildpackage took $(duration "$build_secs")"

step=list
bindir=$(dirname "$tree")
shopt -s nullglob
files=("$OUT"/deb/*.dsc "$OUT"/deb/*.debian.tar.xz "$OUT"/deb/*.orig.tar.xz
	"$bindir"/*.deb "$bindir"/*.buildinfo "$bindir"/*.changes)
[ ${#files[@]} -gt 3 ] || { echo "packaging: no binary packages in $bindir" >&2; exit 1; }
for f in "${files[@]}"; do
	printf '%10d  %s  %s\n' "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" \
		"$(basename "$f")"
done >"$listing"
cat "$listing"

step=install
root=$("$here/scratch-root.sh" "$bindir")
step=scenarios
"$here/check-installed" "$root"
