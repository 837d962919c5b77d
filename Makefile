# qemu-viommu-migration: the pipeline from our patch queue to a built,
# tested QEMU fork. See README.md.
#
#   make            install deps, fetch the base, generate the fork, build it,
#                   run the main job (a live migration with a vIOMMU and an
#                   emulated VFIO device)
#   make check      all tests; ends with "N passed, N failed"
#   make stress     long randomized runs (churn, fail-nth, sanitizers)
#   make bench      benchmarks: table, $(OUT)/bench/results.json and plots
#                   (bench/README.md; BENCH_ARGS passes options to bench/run)
#   make export     write the fork's commits back to patches/
#   make deb-source our Debian source package: Debian's qemu with the queue
#                   in debian/patches/viommu/ (packaging/, out/deb/)
#   make deb        that source package, the binary packages of an x86 user
#                   built from it (dpkg-buildpackage; long), and the e2e
#                   scenarios on the installed qemu-system-x86_64 (README:
#                   "For packagers"); result in packaging/latest-result.txt
#
# Variables: OUT (build area, default ./out), FORK_DIR (default $(OUT)/fork),
# BASE_TARBALL_PATH (use a local copy of the pinned tarball; still verified).

OUT ?= $(CURDIR)/out
FORK_DIR ?= $(OUT)/fork
export OUT FORK_DIR BASE_TARBALL_PATH CACHE_DIR

.PHONY: all deps base fork build demo check stress bench export deb-source deb clean

all: build demo

deps:
	@build/deps.sh

base: deps
	@base/fetch.sh >/dev/null

fork: base
	@fork/make-fork.sh

build: fork
	@SRC=$(FORK_DIR) BUILD_DIR=$(OUT)/build build/build.sh
	@echo "build: $(OUT)/build/qemu-system-x86_64"

demo: build
	@tests/main-job

check: deps
	@tests/run

stress: deps
	@tests/run --stress

# The fork, the base, hostsim, the ninth commit's binary and the queue's
# before VFIO's record kept runs (the per-commit ones of make check's
# series stage when present, else tests/e2e/build-before.sh's) and item
# 5's comparison build (tests/e2e/build-before.sh runs when one is missing).
bench: build
	@[ -x "$(OUT)/base/build/qemu-system-x86_64" ] || tests/build-tree base
	@$(MAKE) -s -C hostsim O=$(OUT)/hostsim >/dev/null
	@QEMU_BIN_DIR=$${QEMU_BIN_DIR:-$(OUT)/bin} bench/run --check-builds --items 2 \
		2>/dev/null || tests/e2e/build-before.sh
	@QEMU_BIN_DIR=$${QEMU_BIN_DIR:-$(OUT)/bin} nice -n 10 bench/run $(BENCH_ARGS)

export:
	@fork/export-patches.sh

deb-source: deps
	@packaging/make-source.sh

deb: deps
	@packaging/make-deb.sh

clean:
	rm -rf $(OUT)
