# Source this file: helpers that read a patch folder's `series` file.
# shellcheck shell=bash

# Print the patch files named by DIR/series, one path per line, in order.
# Blank lines and lines starting with '#' are comments.
queue_files() {
	local dir=$1 name
	[ -f "$dir/series" ] || return 0
	while IFS= read -r name || [ -n "$name" ]; do
		case "$name" in ''|'#'*) continue ;; esac
		echo "$dir/$name"
	done <"$dir/series"
}

# A fingerprint of everything the fork is generated from.
queue_fingerprint() {
	local base_sha=$1; shift
	{
		echo "$base_sha"
		for dir in "$@"; do
			echo "== $dir"
			queue_files "$dir" | while read -r f; do
				[ -f "$f" ] && sha256sum <"$f" || echo "missing $f"
			done
		done
	} | sha256sum | cut -d' ' -f1
}
