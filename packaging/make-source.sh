#!/bin/bash
# Build our Debian source package: Debian's qemu source package of the base
# with our queue (patches/series) added under debian/patches/$DEB_PATCH_DIR/,
# after Debian's own patches, and a changelog entry for $DEB_VERSION.
#
#   $OUT/deb/qemu_<version>.dsc, .debian.tar.xz, and the orig tarball
#   $OUT/deb/source/   the unpacked tree dpkg-source -b built it from
#
# Our base fix-up (base/fixups: skip the edk2 blob unpack) is not added:
# Debian's skip-unpack-edk2-blobs.patch already does the same. A patch of
# ours that does not apply on Debian's stack stops the build with its name
# and the Debian patches that touch the same files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$repo/base/pin.env"
. "$here/version.env"
. "$repo/fork/queue.sh"
. "$repo/fork/identity.sh"
. "$here/on-debian.sh"
: "${OUT:=$repo/out}"
export OUT

# shellcheck source=packaging/fail.sh
. "$here/fail.sh"

src_dir=$("$here/fetch-debian.sh" | tail -n 1)
work=$OUT/deb
rm -rf "$work" && mkdir -p "$work"
tree=$work/source
dpkg-source --no-check -x "$src_dir/$BASE_DSC" "$tree" >"$work/extract-debian.log" 2>&1 ||
	fail "dpkg-source -x of Debian's $BASE_DSC failed (log: $work/extract-debian.log)"

# Apply our queue on Debian's patched tree one patch at a time, so that the
# one that does not apply is named with the Debian patches it collides with.
pdir=$tree/debian/patches/$DEB_PATCH_DIR
mkdir -p "$pdir"
mapfile -t ours < <(queue_files "$repo/patches")
for p in "${ours[@]}"; do
	name=$(basename "$p")
	msg=$(apply_ours "$tree" "$p" "$DEB_PATCH_DIR") || fail "$msg"
	cp "$p" "$pdir/$name"
	echo "$DEB_PATCH_DIR/$name" >>"$tree/debian/patches/series"
done
# dpkg-source -b applies the whole series itself: start from Debian's
# patched tree without ours, as Debian's own build does.
for ((i = ${#ours[@]} - 1; i >= 0; i--)); do
	patch -d "$tree" -p1 -R -s --no-backup-if-mismatch <"${ours[$i]}" ||
		fail "could not take $(basename "${ours[$i]}") back out of $tree"
done

# The changelog entry: what the package is, in Debian's format.
entry=$(mktemp)
{
	echo "qemu ($DEB_VERSION) UNRELEASED; urgency=medium"
	echo
	echo "  * Live migration of VMs with a vIOMMU and an assigned VFIO device:"
	echo "    the series \"vfio: relax the vIOMMU check\" (upstream for QEMU 11.0)"
	echo "    with its prerequisite and follow-up fixes, in"
	echo "    debian/patches/$DEB_PATCH_DIR/ (${#ours[@]} patches, after Debian's own)."
	echo
	echo " -- $GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>  $(date -R -u -d "$GIT_AUTHOR_DATE")"
	echo
	cat "$tree/debian/changelog"
} >"$entry"
mv "$entry" "$tree/debian/changelog"

(cd "$work" && dpkg-source -b source) >"$work/build-source.log" 2>&1 ||
	fail "dpkg-source -b failed (log: $work/build-source.log)"
dsc=$(ls "$work"/*.dsc)
echo "packaging: source package $dsc"
