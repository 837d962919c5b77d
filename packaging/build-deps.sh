#!/bin/bash
# Install the build dependencies of the restricted tree $1
# (packaging/binary-tree.sh) with the build profiles of binary.env, from the
# system's apt (Debian 12). meson >= 1.5, which Debian 12 ships too old, is
# installed from bookworm-backports by build/deps.sh (make deps) before.
# As non-root: prints the command to run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/binary.env"
tree=${1:?usage: build-deps.sh <unpacked source tree>}
profiles=${DEB_PROFILES// /,}

# Nothing to do when dpkg-checkbuilddeps is there and content.
if command -v dpkg-checkbuilddeps >/dev/null &&
	(cd "$tree" && dpkg-checkbuilddeps -P "$profiles") 2>/dev/null; then
	echo "packaging: build dependencies present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "packaging: build dependencies missing; run as root:  $0 $tree" >&2
	exit 1
fi
echo "packaging: installing the build dependencies of $tree (profiles $profiles)"
export DEBIAN_FRONTEND=noninteractive
apt-get -q update >&2
(cd "$tree" && apt-get -q build-dep -y --no-install-recommends -P "$profiles" ./) >&2 || {
	echo "packaging: installing the build dependencies failed (see above). The Debian 12 archive must be in the system's apt sources." >&2
	exit 1
}
(cd "$tree" && dpkg-checkbuilddeps -P "$profiles") || {
	echo "packaging: build dependencies still unmet after apt-get build-dep (see above)" >&2
	exit 1
}
