#!/bin/bash
# Build the binary packages from the restricted tree $1
# (packaging/binary-tree.sh) with dpkg-buildpackage, the way a packager
# would: arch and indep packages (-b), the build profiles of binary.env,
# unsigned. Runs at the lowest priority (nice 19): the build takes long and
# shares the machine. With DEB_RESUME set, the tree is not cleaned first
# (dpkg-buildpackage -nc): a build that stopped late continues. The log is $OUT/deb/binary/build.log; the packages
# land beside the tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/binary.env"
tree=${1:?usage: build-binary.sh <unpacked source tree>}
log=$(dirname "$tree")/build.log
jobs=${DEB_JOBS:-$(nproc)}
# Debian's tools only, as in a build chroot: a python3 or meson earlier in
# PATH (a version manager's, say) would not see Debian's python3-venv and
# meson, and QEMU's configure stops.
path=/usr/sbin:/usr/bin:/sbin:/bin

echo "packaging: dpkg-buildpackage -b (profiles: $DEB_PROFILES; $jobs jobs; log $log)"
(cd "$tree" && PATH=$path DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
	nice -n 19 dpkg-buildpackage -b -uc -us ${DEB_RESUME:+-nc} -P"${DEB_PROFILES// /,}") \
	>"$log" 2>&1 || {
	tail -n 30 "$log" >&2
	echo "packaging: dpkg-buildpackage failed (last lines above; log: $log)" >&2
	exit 1
}
