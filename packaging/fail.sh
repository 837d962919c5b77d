# shellcheck shell=bash
# Sourced by the packaging scripts: how they stop on bad input or a failed
# step, with one message format (what failed and what to do) on stderr.
fail() {
	printf '\npackaging: %s\n\n' "$*" | fold -s -w 78 >&2
	exit 1
}
