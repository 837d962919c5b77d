#!/bin/bash
# Fetch the pinned base tarball, verify its sha256, keep it in the cache.
#
# Prints the path of the verified tarball as its last line of stdout.
# Inputs (environment):
#   OUT          build area (for the private apt state)
#   CACHE_DIR    where verified tarballs are kept across builds and clones
#   BASE_TARBALL_PATH  use this tarball instead of downloading (still verified)
#   BASE_APT_SOURCES   alternative sources list for the private apt (tests)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=base/pin.env
. "$here/pin.env"
# shellcheck source=base/private-apt.sh
. "$here/private-apt.sh"
: "${OUT:?OUT must name the build area}"
: "${CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-viommu-migration}"

fail() {
	printf '\nbase: %s\n\n' "$*" | fold -s -w 78 >&2
	exit 1
}

if [ -n "${BASE_TARBALL_PATH:-}" ]; then
	[ -f "$BASE_TARBALL_PATH" ] ||
		fail "BASE_TARBALL_PATH=$BASE_TARBALL_PATH does not exist. Point it at a copy of $BASE_TARBALL, or unset it to download the tarball from Debian's source package $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION."
	got=$(sha_of "$BASE_TARBALL_PATH")
	[ "$got" = "$BASE_SHA256" ] ||
		fail "hash mismatch for $BASE_TARBALL_PATH: sha256 is $got, the pinned base (base/pin.env) is $BASE_SHA256. This is not the $BASE_TARBALL of $BASE_SOURCE_PACKAGE $BASE_SOURCE_VERSION. Nothing was changed; point BASE_TARBALL_PATH at the right file or unset it to download."
	echo "$BASE_TARBALL_PATH"
	exit 0
fi

mkdir -p "$CACHE_DIR"
cached="$CACHE_DIR/$BASE_TARBALL"
if [ -f "$cached" ]; then
	if [ "$(sha_of "$cached")" = "$BASE_SHA256" ]; then
		echo "$cached"
		exit 0
	fi
	# A cached file that no longer verifies (truncated copy, disk error) is
	# set aside rather than trusted or silently deleted.
	mv -f "$cached" "$cached.corrupt"
	echo "base: cached $cached failed verification; moved to $cached.corrupt, downloading again" >&2
fi

echo "base: fetching $BASE_TARBALL from Debian source package $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION" >&2
tmp=$(mktemp -d "$CACHE_DIR/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
private_apt_fetch_source "$tmp" || rc=$?
[ "$rc" -ne 1 ] ||
	fail "could not read Debian's package lists with apt (see $(private_apt_dir)/update.log). Is the network or the Debian archive reachable? If you already have $BASE_TARBALL, run again with BASE_TARBALL_PATH=/path/to/$BASE_TARBALL (it is verified against the pinned sha256)."
if [ "$rc" -ne 0 ]; then
	cp "$tmp/source.log" "$(private_apt_dir)/source.log"
	if grep -q "Can not find version\|Unable to find a source package" "$tmp/source.log"; then
		fail "Debian's archive no longer offers source package $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION (see $(private_apt_dir)/source.log). Obtain $BASE_TARBALL (sha256 $BASE_SHA256) elsewhere, for example from a Debian snapshot mirror, and run again with BASE_TARBALL_PATH=/path/to/it."
	fi
	fail "downloading $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION failed (see $(private_apt_dir)/source.log). Check the network, or run again with BASE_TARBALL_PATH=/path/to/$BASE_TARBALL."
fi
[ -f "$tmp/$BASE_TARBALL" ] ||
	fail "apt fetched $BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION but it has no $BASE_TARBALL; base/pin.env and the archive disagree."
got=$(sha_of "$tmp/$BASE_TARBALL")
if [ "$got" != "$BASE_SHA256" ]; then
	mv -f "$tmp/$BASE_TARBALL" "$cached.rejected"
	fail "hash mismatch: the downloaded $BASE_TARBALL has sha256 $got, the pinned base (base/pin.env) is $BASE_SHA256. It was kept as $cached.rejected and not used. Do not change the pin unless you mean to move the base; report the mismatch."
fi
mv -f "$tmp/$BASE_TARBALL" "$cached"
echo "$cached"
