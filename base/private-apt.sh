# Source this file: defines private_apt, which runs apt-get/apt-cache with a
# configuration of our own (sources list and state under $OUT/apt), so that
# fetching the base never touches the system's apt sources or lists.
# shellcheck shell=bash

private_apt_dir() {
	echo "${OUT:?}/apt"
}

# The Debian mirror the system's apt uses for its main archive: the first
# URI of a source for bookworm (deb822 .sources or one-line format).
system_debian_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		/(^|\n)Suites:[^\n]*bookworm( |$|\n)/ {
			for (i = 1; i <= NF; i++)
				if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); print a[2]; exit }
		}' "$f"
	done | head -n 1 | grep . && return 0
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" && $0 ~ / bookworm / {
			for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit }
		}' | head -n 1 | grep .
}

# The sources list the private apt reads: base/apt-sources.list with the
# system's Debian mirror filled in, or $PRIVATE_APT_SOURCES as it is.
private_apt_sources() {
	local d mirror
	if [ -n "${PRIVATE_APT_SOURCES:-}" ]; then
		echo "$PRIVATE_APT_SOURCES"
		return 0
	fi
	d=$(private_apt_dir)
	mirror=${DEBIAN_MIRROR:-$(system_debian_mirror)} || {
		echo "private apt: no Debian mirror for bookworm in the system's apt sources; set DEBIAN_MIRROR=<URI of a Debian archive>" >&2
		return 1
	}
	mkdir -p "$d"
	sed "s|@MIRROR@|$mirror|" "$(dirname "${BASH_SOURCE[0]}")/apt-sources.list" >"$d/sources.list"
	echo "$d/sources.list"
}

private_apt() {
	local tool=$1; shift
	local d sources
	d=$(private_apt_dir)
	sources=$(private_apt_sources) || return 1
	mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" \
		"$d/etc/sources.list.d" "$d/etc/preferences.d"
	"$tool" \
		-o Dir::State="$d/state" \
		-o Dir::Cache="$d/cache" \
		-o Dir::Etc::SourceList="$sources" \
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

# sha256 of file $1.
sha_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# Download the files of the pinned source package (base/pin.env:
# BASE_SOURCE_PACKAGE=BASE_SOURCE_VERSION) into directory $1, apt's output
# in $1/source.log. BASE_APT_SOURCES, if set, replaces the sources list
# (the pipeline tests point it at an archive that is not there).
# Returns 1 when the package lists cannot be read, 2 when the download
# fails.
private_apt_fetch_source() {
	if [ -n "${BASE_APT_SOURCES:-}" ]; then
		export PRIVATE_APT_SOURCES="$BASE_APT_SOURCES"
	fi
	private_apt_update || return 1
	(cd "$1" && private_apt apt-get -q source --download-only \
		"$BASE_SOURCE_PACKAGE=$BASE_SOURCE_VERSION") >"$1/source.log" 2>&1 || return 2
}
