# Source this file: the one identity and date the pipeline commits with, so
# that generating the fork twice from the same inputs gives the same hashes.
# shellcheck shell=bash
export GIT_AUTHOR_NAME=qemu-viommu-migration
export GIT_AUTHOR_EMAIL=devel@qemu-viommu-migration.invalid
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME
export GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_DATE="2026-11-25T12:00:00+00:00"
export GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
