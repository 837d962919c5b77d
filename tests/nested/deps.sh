#!/bin/sh
# Host packages the nested real-kernel harness needs on a fresh machine.
#
# qemu-system-x86  the outer (L0) emulator that boots Debian's kernel under TCG;
#                  with it come seabios and qemu-system-data, the firmware the
#                  L2 builds load with -L
# gcc-12 make      building mtty.ko and the iommufd-enabled VFIO modules out of
#                  tree against Debian's unpacked kernel headers
# xz-utils zstd    unpacking the kernel image and the linux-source tarball
# python3          the orchestrator (L0) and the scenario runner (inside L1)
# libc6-dev        the C toolchain's base (normally present with gcc)
#
# The kernel packages and busybox-static are NOT installed: prepare.sh downloads
# them into $OUT/nested/pkgs and unpacks them there.
set -e
export DEBIAN_FRONTEND=noninteractive
pkgs="qemu-system-x86 gcc-12 make xz-utils zstd python3 libc6-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
