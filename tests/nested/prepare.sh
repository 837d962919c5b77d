#!/bin/bash
# Prepare everything the nested harness boots, under $OUT/nested:
#   pkgs/      cached Debian packages (downloaded once, reused across runs)
#   root/      the packages unpacked with dpkg-deb -x (never installed)
#   src/       the parts of linux-source-6.12 the module builds need
#   vmlinux    uncompressed L1 kernel (QEMU boots it directly, no firmware)
#   modules/debian/   Debian's own vfio/mdev modules (decompressed) + mtty.ko
#   modules/iommufd/  iommufd, vfio, type1, mdev, mtty rebuilt with IOMMUFD,
#                     VFIO_DEVICE_CDEV and IOMMUFD_DRIVER enabled
#   initramfs.cpio.gz busybox + 9p modules + l1-init
# Every step is skipped when its output exists; a failing step says which.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$here/../.." && pwd)/out}
N=$OUT/nested
. "$here/pins.env"
NICE="nice -n 5"
JOBS=2

fail() {
    echo "nested: prepare step '$step' failed: $*" >&2
    case "$*" in *"(log: "*)   # show the compiler's complaint, not just the log's name
        log="${*##*(log: }"; tail -n 15 "${log%)}" | sed 's/^/    /' >&2;;
    esac
    exit 1
}
log() { echo "# nested prepare: $*" >&2; }

mkdir -p "$N/pkgs" || { step=mkdir; fail "cannot create $N"; }
# Every output is stamped with the hash of this script and of the pins, so a
# change to how it is made, or of the kernel version, rebuilds it instead of
# reusing a stale cache.
STAMP=$(cat "$0" "$here/pins.env" | sha1sum | cut -c1-40)
fresh() { [ "$(cat "$1" 2>/dev/null)" = "$STAMP" ]; }

# --- 1. download ----------------------------------------------------------
# Each kernel package at its pinned version (pins.env), never the newest.
step=download
"$here/download.sh" "$N/pkgs" 2>"$N/pkgs/.download.log"
rc=$?
grep -v '^nested: ' "$N/pkgs/.download.log" >&2
[ $rc = 0 ] || fail "$(sed -n 's/^nested: //p' "$N/pkgs/.download.log" | tail -n 1)"
pkgfile() {  # the cached .deb of package $1 (download.sh leaves one per package)
    ls "$N/pkgs/$1"_*.deb 2>/dev/null | head -1
}

# --- 2. unpack ------------------------------------------------------------
step=unpack
R=$N/root
if ! fresh "$R/.done"; then
    rm -rf "$R" && mkdir -p "$R"
    for p in linux-image-$KVER-unsigned linux-headers-$KVER linux-headers-$KABI-common \
             linux-kbuild-$KABI busybox-static; do
        dpkg-deb -x "$(pkgfile "$p")" "$R" || fail "dpkg-deb -x of $p"
    done
    # The headers' Makefile includes the common part by absolute /usr/src path;
    # point it into our unpacked tree instead so nothing is installed on the host.
    echo "include $R/usr/src/linux-headers-$KABI-common/Makefile" \
        >"$R/usr/src/linux-headers-$KVER/Makefile" || fail "rewriting headers Makefile"
    echo "$STAMP" >"$R/.done"
fi
KDIR=$R/usr/src/linux-headers-$KVER
BUSYBOX=$R/bin/busybox
[ -x "$BUSYBOX" ] || fail "busybox-static did not unpack to $BUSYBOX"

# --- 3. kernel sources we build from --------------------------------------
step=linux-source
S=$N/src/linux-source-6.12
if ! fresh "$N/src/.done"; then
    rm -rf "$N/src" && mkdir -p "$N/src"
    log "extracting vfio/iommu/mtty sources from linux-source-6.12"
    dpkg-deb --fsys-tarfile "$(pkgfile linux-source-6.12)" |
        tar -xO ./usr/src/linux-source-6.12.tar.xz |
        tar -xJ -C "$N/src" linux-source-6.12/drivers/vfio linux-source-6.12/drivers/iommu \
            linux-source-6.12/samples/vfio-mdev linux-source-6.12/scripts/extract-vmlinux \
            linux-source-6.12/lib/interval_tree.c ||
        fail "extracting linux-source-6.12.tar.xz"
    echo "$STAMP" >"$N/src/.done"
fi

# --- 4. uncompressed kernel -----------------------------------------------
step=extract-vmlinux
if ! fresh "$N/vmlinux.done"; then
    sh "$S/scripts/extract-vmlinux" "$R/boot/vmlinuz-$KVER" >"$N/vmlinux.tmp" ||
        fail "scripts/extract-vmlinux on vmlinuz-$KVER"
    mv "$N/vmlinux.tmp" "$N/vmlinux"
    echo "$STAMP" >"$N/vmlinux.done"
fi

# --- 5. Debian's modules + mtty.ko ----------------------------------------
# BTF for modules would need pahole; the modules load fine without it.
KMAKE="make -C $KDIR CC=gcc-12 HOSTCC=gcc-12 CONFIG_DEBUG_INFO_BTF_MODULES= -j$JOBS"
step=modules-debian
M=$N/modules/debian
if ! fresh "$M/.done"; then
    rm -rf "$M" && mkdir -p "$M/mtty-build"
    for ko in drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/mdev/mdev \
              net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/9p/9p; do
        xz -dc "$R/lib/modules/$KVER/kernel/$ko.ko.xz" >"$M/$(basename "$ko").ko" ||
            fail "decompressing $ko.ko.xz"
    done
    step=mtty-build-debian
    cp "$S/samples/vfio-mdev/mtty.c" "$M/mtty-build/" || fail "mtty.c missing from linux-source"
    echo 'obj-m := mtty.o' >"$M/mtty-build/Kbuild"
    $NICE $KMAKE M="$M/mtty-build" modules >"$M/build.log" 2>&1 ||
        fail "building mtty.ko against Debian's headers (log: $M/build.log)"
    cp "$M/mtty-build/mtty.ko" "$M/" || fail "mtty.ko not produced"
    echo "$STAMP" >"$M/.done"
fi

# --- 6. iommufd-enabled VFIO module set ------------------------------------
# Debian builds without IOMMUFD. Rebuild iommufd + vfio (+type1, mdev) and mtty
# with IOMMUFD, VFIO_DEVICE_CDEV and IOMMUFD_DRIVER on. Kbuild reads the
# CONFIG_* make variables, C code reads the -D flags (autoconf.h leaves them
# undefined). Every module embedding struct vfio_device is rebuilt, since
# CONFIG_IOMMUFD changes its layout. The kernel lacks INTERVAL_TREE_SPAN_ITER
# and iova_bitmap (both selected by IOMMUFD), so they are linked into iommufd.ko.
step=modules-iommufd
M=$N/modules/iommufd
if ! fresh "$M/.done"; then
    rm -rf "$M" && mkdir -p "$M/tree/drivers/iommu" "$M/tree/samples" || fail mkdir
    cp -r "$S/drivers/vfio" "$M/tree/drivers/" &&
        cp -r "$S/drivers/iommu/iommufd" "$S/drivers/iommu/iommu-priv.h" "$M/tree/drivers/iommu/" &&
        mkdir -p "$M/tree/samples/vfio-mdev" &&
        cp "$S/samples/vfio-mdev/mtty.c" "$M/tree/samples/vfio-mdev/" || fail "copying sources"
    {
        echo '#include <linux/interval_tree.h>'
        echo '#include <linux/export.h>'
        sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER/,/^#endif/p' "$S/lib/interval_tree.c"
    } >"$M/tree/drivers/iommu/iommufd/span_iter.c"
    grep -q interval_tree_span_iter_first "$M/tree/drivers/iommu/iommufd/span_iter.c" ||
        fail "span iterator not found in lib/interval_tree.c"
    echo 'iommufd-y += iova_bitmap.o span_iter.o' >>"$M/tree/drivers/iommu/iommufd/Makefile"
    echo 'obj-m := mtty.o' >"$M/tree/samples/vfio-mdev/Kbuild"
    echo 'obj-m += drivers/iommu/iommufd/ drivers/vfio/ samples/vfio-mdev/' >"$M/tree/Kbuild"
    CFG="CONFIG_IOMMUFD=m CONFIG_VFIO_DEVICE_CDEV=y CONFIG_IOMMUFD_DRIVER=
         CONFIG_VFIO_PCI_CORE= CONFIG_VFIO_PCI= CONFIG_VFIO_DEBUGFS="
    DEFS="-DCONFIG_IOMMUFD_MODULE=1 -DCONFIG_VFIO_DEVICE_CDEV=1 -DCONFIG_IOMMUFD_DRIVER=1
          -DCONFIG_INTERVAL_TREE_SPAN_ITER=1"
    $NICE $KMAKE M="$M/tree" $CFG KCFLAGS="$DEFS" modules >"$M/build.log" 2>&1 ||
        fail "building iommufd/vfio/mdev/mtty with IOMMUFD (log: $M/build.log)"
    for ko in drivers/iommu/iommufd/iommufd drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 \
              drivers/vfio/mdev/mdev samples/vfio-mdev/mtty; do
        cp "$M/tree/$ko.ko" "$M/" || fail "$ko.ko not produced"
    done
    echo "$STAMP" >"$M/.done"
fi

# --- 7. initramfs -----------------------------------------------------------
step=initramfs
I=$N/initramfs.cpio.gz
if [ ! -s "$I" ] || [ "$here/l1-init" -nt "$I" ] || [ "$N/modules/debian/.done" -nt "$I" ]; then
    T=$N/initramfs.d
    rm -rf "$T" && mkdir -p "$T/bin" "$T/lib/modules" "$T/proc" "$T/sys" "$T/dev" \
        "$T/newroot" || fail mkdir
    cp "$BUSYBOX" "$T/bin/busybox" && cp "$here/l1-init" "$T/init" && chmod +x "$T/init" ||
        fail "copying busybox/init"
    for m in netfs 9pnet 9pnet_virtio 9p; do
        cp "$N/modules/debian/$m.ko" "$T/lib/modules/" || fail "$m.ko"
    done
    (cd "$T" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$I.tmp") || fail "cpio"
    mv "$I.tmp" "$I"
fi
echo "$N"
