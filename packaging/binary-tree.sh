#!/bin/bash
# Unpack our source package ($OUT/deb/*.dsc, packaging/make-source.sh) into
# $OUT/deb-bin/ and apply our restriction to x86 ($DEB_RESTRICT_PATCH,
# packaging/binary.env) to its debian/, then regenerate debian/control from
# debian/control-in as Debian's packaging does. Prints the tree's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/version.env"
. "$here/binary.env"
: "${OUT:=$repo/out}"

# shellcheck source=packaging/fail.sh
. "$here/fail.sh"

dsc=$OUT/deb/qemu_${DEB_VERSION#*:}.dsc
[ -f "$dsc" ] || fail "no source package $dsc: run packaging/make-source.sh (make deb-source) first"
upstream=${DEB_VERSION#*:}
upstream=${upstream%-*}
tree=$OUT/deb-bin/qemu-$upstream
rm -rf "$OUT/deb-bin" && mkdir -p "$OUT/deb-bin"
dpkg-source --no-check -x "$dsc" "$tree" >"$OUT/deb-bin/extract.log" 2>&1 ||
	fail "dpkg-source -x $dsc failed (log: $OUT/deb-bin/extract.log)"
patch -d "$tree" -p1 -F 0 -N --no-backup-if-mismatch <"$here/$DEB_RESTRICT_PATCH" \
	>"$OUT/deb-bin/restrict.log" 2>&1 ||
	fail "packaging/$DEB_RESTRICT_PATCH does not apply on Debian's debian/ of $dsc (log: $OUT/deb-bin/restrict.log). Debian's packaging changed: redo the restriction on it."
# debian/control is generated: debian/control.mk's rule does it from
# control-in (debian/rules clean would do the same).
(cd "$tree" && make -s -f debian/control.mk debian/control) >"$OUT/deb-bin/control.log" 2>&1 ||
	fail "regenerating debian/control failed (log: $OUT/deb-bin/control.log)"
echo "$tree"
