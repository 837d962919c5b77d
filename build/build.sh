#!/bin/bash
# Configure (once) and build a QEMU tree for x86_64-softmmu with ccache.
#   SRC        source tree            [$OUT/fork]
#   BUILD_DIR  build directory        [$OUT/build]
#   TARGETS    ninja targets          [qemu-system-x86_64]
#   EXTRA_CONFIGURE  additional configure arguments (e.g. sanitizers)
# The build directory sits beside a directory named "fork" holding the
# sources whenever possible, so every tree of the pipeline compiles with the
# same relative paths and shares ccache entries.
#
# build/configure-args disables every optional feature whose library a
# machine may or may not have (GTK, SPICE, seccomp, the docs, ...): with
# Debian's QEMU build dependencies installed (make deb installs them)
# configure would otherwise enable them, so the same command would build a
# different QEMU, miss the compiler cache and select other QEMU tests than
# on a machine with build/deps.sh's packages alone.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${OUT:=$repo/out}"
: "${SRC:=$OUT/fork}"
: "${BUILD_DIR:=$OUT/build}"
: "${TARGETS:=qemu-system-x86_64}"
: "${JOBS:=$(nproc)}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$(dirname "$(realpath "$SRC")")")}"
export CCACHE_NOHASHDIR=1

fail() {
	printf '\nbuild: %s\n\n' "$*" | fold -s -w 78 >&2
	exit 1
}

[ -x "$SRC/configure" ] || fail "no QEMU source at $SRC; run 'make fork' first."
command -v ccache >/dev/null || fail "ccache is missing; run build/deps.sh (as root)."

mapfile -t args <"$repo/build/configure-args"
# shellcheck disable=SC2206
args+=(${EXTRA_CONFIGURE:-})
want="$(printf '%s\n' "${args[@]}")"
stamp="$BUILD_DIR/.configure-args"
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	rm -rf "$BUILD_DIR"
	mkdir -p "$BUILD_DIR"
	src_rel=$(realpath --relative-to="$BUILD_DIR" "$SRC")
	echo "build: configuring $BUILD_DIR"
	if ! (cd "$BUILD_DIR" && "$src_rel/configure" "${args[@]}") \
		>"$BUILD_DIR.configure.log" 2>&1; then
		tail -n 20 "$BUILD_DIR.configure.log" >&2
		rm -rf "$BUILD_DIR"
		fail "configure failed (log: $BUILD_DIR.configure.log). A missing build dependency is the usual cause: run build/deps.sh as root."
	fi
	printf '%s' "$want" >"$stamp"
fi

# shellcheck disable=SC2086
nice -n 5 ninja -C "$BUILD_DIR" -j "$JOBS" $TARGETS

# The +ds tarball carries no firmware; let the build-tree binary find
# Debian's (seabios, ipxe-qemu) in its data directory.
datadir="$BUILD_DIR/qemu-bundle/usr/local/share/qemu"
mkdir -p "$datadir"
for fw in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom; do
	[ -e "$fw" ] && ln -sfn "$fw" "$datadir/$(basename "$fw")"
done
