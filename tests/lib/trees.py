"""Checkouts of the fork at a given commit, kept beside their build dirs.

Each checkout lives in <dir>/fork with its build in <dir>/build, the same
relative layout as the main fork and build, so all of them share ccache
entries. Checkouts are updated with git checkout, which only touches files
that change, so the next build is incremental.
"""
import os
import subprocess


def git(tree, *args, capture=True):
    r = subprocess.run(['git', '-C', tree, *args], check=True, text=True,
                       stdout=subprocess.PIPE if capture else None)
    return r.stdout.strip() if capture else ''


def sync_checkout(fork_dir, dest_dir, rev):
    """Make dest_dir/fork a checkout of rev from fork_dir; return its path."""
    tree = os.path.join(dest_dir, 'fork')
    commit = git(fork_dir, 'rev-parse', rev + '^{commit}')
    if not os.path.isdir(os.path.join(tree, '.git')):
        os.makedirs(dest_dir, exist_ok=True)
        subprocess.run(['git', 'clone', '-q', '--no-checkout', fork_dir, tree],
                       check=True)
    git(tree, 'fetch', '-q', '--tags', fork_dir, '+refs/heads/*:refs/remotes/fork/*')
    git(tree, 'checkout', '-q', '-f', '--detach', commit)
    return tree


def queue(fork_dir):
    """The queue commits on top of the base: [(hash, subject)], oldest first."""
    out = git(fork_dir, 'log', '--reverse', '--format=%H %s', 'base..HEAD')
    return [tuple(line.split(' ', 1)) for line in out.splitlines() if line]
