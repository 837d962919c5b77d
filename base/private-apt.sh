# Source this file: defines private_apt, which runs apt-get/apt-cache with a
# configuration of our own (sources list and state under $OUT/apt), so that
# fetching the base never touches the system's apt sources or lists.
# shellcheck shell=bash

private_apt_dir() {
	echo "${OUT:?}/apt"
}

private_apt() {
	local tool=$1; shift
	local d
	d=$(private_apt_dir)
	mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" \
		"$d/etc/sources.list.d" "$d/etc/preferences.d"
	"$tool" \
		-o Dir::State="$d/state" \
		-o Dir::Cache="$d/cache" \
		-o Dir::Etc::SourceList="${PRIVATE_APT_SOURCES:-$(dirname "${BASH_SOURCE[0]}")/apt-sources.list}" \
		-o Dir::Etc::SourceParts="$d/etc/sources.list.d" \
		-o Dir::Etc::Preferences="$d/etc/preferences" \
		-o Dir::Etc::PreferencesParts="$d/etc/preferences.d" \
		-o APT::Sandbox::User=root \
		-o Debug::NoLocking=1 \
		"$@"
}

# Refresh the private package lists (a few seconds; only done when the
# tarball is not already in the cache).
private_apt_update() {
	local d
	d=$(private_apt_dir)
	mkdir -p "$d"
	private_apt apt-get -q update >"$d/update.log" 2>&1 || return 1
	# apt-get update exits 0 when some sources fail; treat that as failure.
	! grep -q '^\(W\|E\): \(Failed to fetch\|Some index files failed\)' "$d/update.log"
}
