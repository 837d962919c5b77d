#!/bin/bash
# Download the packages of tests/nested/pins.env into $1 (a package cache),
# each pinned one at its pinned version. A cached .deb is reused only when it
# is that exact version; one of another version (left by an older pin, or by
# a download that took the archive's newest) is removed and fetched again.
#
# apt-get runs with the environment's apt configuration, so APT_CONFIG can
# point it at another archive (tests/nested/pins-test does).
# Exit status 1 with one line "nested: ..." on stderr that names the package,
# the pin, what the archive has now and where to change the pin.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/pins.env"
dir=${1:?usage: download.sh DIR}
mkdir -p "$dir" || { echo "nested: cannot create $dir" >&2; exit 1; }

fail() {
	echo "nested: $*" >&2
	exit 1
}

# The cached .deb of package $1 (any version), if there is one.
cached() {
	local f
	for f in "$dir/$1"_*.deb; do
		[ -e "$f" ] || continue
		[ "$(dpkg-deb -f "$f" Package 2>/dev/null)" = "$1" ] && { echo "$f"; return 0; }
	done
	return 1
}

# apt-get download $1 (name or name=version) into $dir, refreshing the
# package lists once if the first attempt fails.
fetch() {
	(cd "$dir" && apt-get -q download "$1") >"$dir/.apt.log" 2>&1 && return 0
	echo "# nested prepare: apt-get download $1 failed, refreshing package lists once" >&2
	apt-get -q update >"$dir/.apt-update.log" 2>&1
	(cd "$dir" && apt-get -q download "$1") >"$dir/.apt.log" 2>&1
}

served_versions() {
	apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
		sort -u -V | paste -sd, - | sed 's/,/, /g'
}

for spec in $PINNED_PKGS; do
	name=${spec%%=*} version=${spec#*=}
	f=$(cached "$name") && {
		[ "$(dpkg-deb -f "$f" Version)" = "$version" ] && continue
		echo "# nested prepare: $(basename "$f") is not the pinned $version; replacing it" >&2
		rm -f "$f"
	}
	echo "# nested prepare: downloading $name=$version" >&2
	if ! fetch "$spec"; then
		now=$(served_versions "$name")
		fail "package $name: the pinned version $version cannot be downloaded ($(tail -n 1 "$dir/.apt.log")). The archive serves ${now:-no version of it} now. Change the pin in tests/nested/pins.env (KVER, KABI and KPKGVER move together) to one of those versions."
	fi
	f=$(cached "$name") || fail "package $name: apt-get download $spec reported success but left no .deb in $dir"
	got=$(dpkg-deb -f "$f" Version)
	[ "$got" = "$version" ] ||
		fail "package $name: apt-get download $spec delivered version $got; the pin in tests/nested/pins.env is $version"
done
for name in $UNPINNED_PKGS; do
	cached "$name" >/dev/null && continue
	echo "# nested prepare: downloading $name" >&2
	fetch "$name" || fail "package $name could not be downloaded: $(tail -n 1 "$dir/.apt.log")"
done
