#!/bin/bash
# Install the binary packages of $1 (packaging/build-binary.sh's output
# directory) into a scratch root, $OUT/deb-bin/root, never over the machine's own
# packages: qemu-system-x86 and the packages of ours it depends on, unpacked
# with dpkg-deb -x. Their dependencies from other sources (shared libraries,
# seabios, ipxe-qemu) are the machine's: checked resolvable by apt (a
# simulation, nothing is installed) and every shared library of the
# emulator found. Prints the root's path.
#
# The root also gets accel-qtest-x86_64.so from the same build tree: Debian
# does not ship the qtest accelerator (debian/rules removes it), and the e2e
# scenarios drive the guest through it. It is a module of this very build
# (QEMU refuses modules of another build), added beside the packaged ones.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/version.env"
. "$here/binary.env"
: "${OUT:=$repo/out}"
bindir=${1:?usage: scratch-root.sh <directory of the built packages>}

# shellcheck source=packaging/fail.sh
. "$here/fail.sh"

ver=${DEB_VERSION#*:}
deb_of() {
	echo "$bindir/${1}_${ver}_$2.deb"
}

# qemu-system-x86 and, transitively, the packages of ours it depends on.
todo=(qemu-system-x86)
ours=()
while [ ${#todo[@]} -gt 0 ]; do
	p=${todo[0]}
	todo=("${todo[@]:1}")
	[[ " ${ours[*]} " == *" $p "* ]] && continue
	f=$(deb_of "$p" "$DEB_ARCH")
	[ -f "$f" ] || f=$(deb_of "$p" all)
	[ -f "$f" ] || fail "package $p of this build is missing in $bindir"
	ours+=("$p")
	for dep in $(dpkg-deb -f "$f" Depends | tr ',|' '\n\n' | sed 's/^ *//;s/[ (:].*//'); do
		if [ -f "$(deb_of "$dep" "$DEB_ARCH")" ] || [ -f "$(deb_of "$dep" all)" ]; then
			todo+=("$dep")
		fi
	done
done
debs=()
for p in "${ours[@]}"; do
	f=$(deb_of "$p" "$DEB_ARCH")
	[ -f "$f" ] || f=$(deb_of "$p" all)
	debs+=("$f")
done

mkdir -p "$OUT/deb-bin"
# Their other dependencies resolve on this machine's Debian (a simulation).
apt-get -s -q install --no-install-recommends "${debs[@]}" >"$OUT/deb-bin/install-sim.log" 2>&1 ||
	fail "apt cannot satisfy the dependencies of ${ours[*]} on this machine (log: $OUT/deb-bin/install-sim.log)"

root=$OUT/deb-bin/root
rm -rf "$root" && mkdir -p "$root"
for f in "${debs[@]}"; do
	dpkg-deb -x "$f" "$root"
	echo "packaging: unpacked $(basename "$f") into $root" >&2
done
emu=$root/usr/bin/qemu-system-x86_64
[ -x "$emu" ] || fail "$emu is not in the packages"
missing=$(ldd "$emu" | awk '/not found/ { print $1 }')
[ -z "$missing" ] ||
	fail "shared libraries of $emu not found on this machine: $missing. Install the packages qemu-system-x86's Depends name (dpkg-deb -f $(deb_of qemu-system-x86 "$DEB_ARCH") Depends)."

multiarch=$(dpkg-architecture -a"$DEB_ARCH" -qDEB_HOST_MULTIARCH 2>/dev/null)
qtest=$(ls "$bindir"/qemu-*/b/qemu/accel-qtest-x86_64.so 2>/dev/null | head -n 1)
[ -n "$qtest" ] || fail "accel-qtest-x86_64.so is not in the build tree under $bindir (the e2e scenarios need it)"
cp "$qtest" "$root/usr/lib/$multiarch/qemu/"
echo "$root"
