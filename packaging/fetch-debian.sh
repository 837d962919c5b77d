#!/bin/bash
# Fetch Debian's source package of the base (base/pin.env): the .dsc, whose
# sha256 is pinned, and its debian.tar.xz and orig tarball, both checked
# against the hashes the .dsc lists. The orig tarball is the one base/fetch.sh
# already verified and cached; apt does not download it again.
#
# Prints, as its last line, the directory holding the three files
# ($CACHE_DIR/debian-source). Inputs as base/fetch.sh (OUT, CACHE_DIR,
# BASE_TARBALL_PATH, BASE_APT_SOURCES).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=base/pin.env
. "$repo/base/pin.env"
# shellcheck source=base/private-apt.sh
. "$repo/base/private-apt.sh"
: "${OUT:?OUT must name the build area}"
: "${CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-viommu-migration}"

# shellcheck source=packaging/fail.sh
. "$here/fail.sh"

# The sha256 the .dsc $1 lists for file $2.
dsc_sha256() {
	awk -v f="$2" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
		s && $3 == f { print $1 }' "$1"
}

# True when directory $1 holds the pinned .dsc and tarballs that match it.
verified() {
	local f
	[ -f "$1/$BASE_DSC" ] && [ "$(sha_of "$1/$BASE_DSC")" = "$BASE_DSC_SHA256" ] || return 1
	for f in "$BASE_TARBALL" "$BASE_DEBIAN_TARBALL"; do
		[ -f "$1/$f" ] && [ "$(sha_of "$1/$f")" = "$(dsc_sha256 "$1/$BASE_DSC" "$f")" ] ||
			return 1
	done
}

orig=$("$repo/base/fetch.sh" | tail -n 1)
dir="$CACHE_DIR/debian-source"
mkdir -p "$dir"
[ -f "$dir/$BASE_TARBALL" ] || cp "$orig" "$dir/$BASE_TARBALL"
if verified "$dir"; then
	echo "$dir"
	exit 0
fi

echo "packaging: fetching $BASE_DSC and $BASE_DEBIAN_TARBALL" >&2
tmp=$(mktemp -d "$CACHE_DIR/fetch-debian.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The orig tarball is already verified: apt keeps it instead of downloading.
cp "$orig" "$tmp/$BASE_TARBALL"
rc=0
private_apt_fetch_source "$tmp" || rc=$?
[ "$rc" -ne 1 ] ||
	fail "could not read Debian's package lists with apt (see $(private_apt_dir)/update.log). Is the Debian archive reachable?"
if [ "$rc" -ne 0 ]; then
	cp "$tmp/source.log" "$(private_apt_dir)/source-debian.log"
	fail "downloading Debian's source package $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION failed (see $(private_apt_dir)/source-debian.log). If the archive no longer serves it, obtain $BASE_DSC (sha256 $BASE_DSC_SHA256) and its tarballs elsewhere, for example from a Debian snapshot mirror, and put them in $dir."
fi
got=$(sha_of "$tmp/$BASE_DSC")
[ "$got" = "$BASE_DSC_SHA256" ] ||
	fail "hash mismatch: the downloaded $BASE_DSC has sha256 $got, the pin (base/pin.env) is $BASE_DSC_SHA256. Nothing was kept. Do not change the pin unless you mean to move the base."
verified "$tmp" ||
	fail "$BASE_DEBIAN_TARBALL or $BASE_TARBALL does not match the hashes $BASE_DSC lists. Nothing was kept."
mv -f "$tmp/$BASE_DSC" "$tmp/$BASE_DEBIAN_TARBALL" "$dir/"
echo "$dir"
