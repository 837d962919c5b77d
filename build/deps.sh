#!/bin/bash
# Install what the pipeline needs from Debian, and nothing that is present.
# meson (>= 1.5) and python3-pycotap come from bookworm-backports through the
# private apt configuration of base/, so the system's sources stay unchanged.
# As non-root: prints the exact command to run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/base/private-apt.sh"
: "${OUT:=$repo/out}"
export OUT

# Build of the fork (see README: "Building").
packages=(
	build-essential pkg-config git ccache ninja-build bzip2 flex bison
	libglib2.0-dev libfdt-dev libpixman-1-dev zlib1g-dev liburing-dev
	python3 python3-venv device-tree-compiler
	# Firmware for q35 guests and the x86 qtests: the +ds tarball has none.
	seabios ipxe-qemu
	# test-io-channel-command of QEMU's unit suite skips without it.
	socat
	# bench/: the plots.
	gnuplot-nox
)
backports=(meson python3-pycotap)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
meson_ok=false
if command -v meson >/dev/null &&
	dpkg --compare-versions "$(meson --version 2>/dev/null)" ge 1.5; then
	meson_ok=true
fi
need_bpo=()
$meson_ok || need_bpo+=(meson)
dpkg-query -W -f='${Status}\n' python3-pycotap 2>/dev/null |
	grep -q '^install ok installed$' || need_bpo+=(python3-pycotap)

# Parts of the project with needs of their own declare them in a deps.sh
# of their folder (same rules: idempotent, Debian packages only).
part_deps() {
	for d in "$repo"/tests/*/deps.sh; do
		[ -x "$d" ] || continue
		"$d" >&2 || { echo "deps: $d failed" >&2; exit 1; }
	done
}

if [ ${#missing[@]} -eq 0 ] && [ ${#need_bpo[@]} -eq 0 ]; then
	[ "$(id -u)" != 0 ] || part_deps
	echo "deps: all present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	{
		echo "deps: missing: ${missing[*]} ${need_bpo[*]}"
		echo "deps: run as root:  sudo $0"
	} >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
debs=()
if [ ${#need_bpo[@]} -gt 0 ]; then
	private_apt_update || {
		echo "deps: cannot read bookworm-backports (see $(private_apt_dir)/update.log); needed for ${need_bpo[*]}" >&2
		exit 1
	}
	mkdir -p "$OUT/apt/debs"
	# One retry after a fresh update: apt's cache can lag the new lists.
	(cd "$OUT/apt/debs" && private_apt apt-get -q download "${need_bpo[@]}") >&2 ||
		{ private_apt_update &&
		  (cd "$OUT/apt/debs" && private_apt apt-get -q download "${need_bpo[@]}") >&2; } || {
		echo "deps: downloading ${need_bpo[*]} from bookworm-backports failed (see above)" >&2
		exit 1
	}
	for p in "${need_bpo[@]}"; do
		debs+=("$(ls -t "$OUT/apt/debs/${p}_"*.deb | head -n 1)")
	done
fi
echo "deps: installing ${missing[*]} ${need_bpo[*]}"
apt-get -q update >&2
apt-get -q install -y --no-install-recommends "${missing[@]}" "${debs[@]}" >&2
part_deps
echo "deps: done"
