#!/usr/bin/python3
"""DEP-3 check of the queue: the patch header fields a packager reads.

Every patch named by patches/series must carry a description (its mail
Subject, or a Description field), Origin and Forwarded; a patch whose
Origin is "upstream" or "backport" (derived from an upstream commit) must
also say where it was applied upstream (Applied-Upstream).  Fields are
read as DEP-3 allows in a git format-patch file: the mail headers, and
"Field: value" lines of the commit message, up to the "---" line.

    tests/series/dep3.py [PATCH_DIR]    TAP, one line per patch (default:
                                        the repository's patches/)

tests/series/run uses problems() for the same check in `make check`,
packaging/check-source for Debian's patches too.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if __name__ == '__main__':
    # run as a script: tests/, where the harness is package lib
    sys.path.insert(0, os.path.dirname(HERE))
from lib import layout  # noqa: E402
from lib.tap import Writer  # noqa: E402

ORIGIN_KINDS = ('upstream', 'backport', 'vendor', 'other')
UPSTREAM_KINDS = ('upstream', 'backport')
FIELD = re.compile(r'^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$')


def series(patch_dir):
    """Patch file names of PATCH_DIR/series, in order."""
    return layout.queue_patches(patch_dir)


def fields(path):
    """{lower-case field name: [values]} of the patch's header: mail headers
    (with their continuation lines) and the message's "Field: value" lines
    before the first "---" line."""
    out = {}
    last = None
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if line == '---':
                break
            if line[:1] in (' ', '\t') and last:
                out[last][-1] += ' ' + line.strip()
                continue
            m = FIELD.match(line)
            last = None
            if m:
                last = m.group(1).lower()
                out.setdefault(last, []).append(m.group(2).strip())
    return out


def origin_kind(value):
    """The category keyword of an Origin value ("backport, URL" -> backport),
    or None when it has none."""
    head = value.split(',', 1)[0].strip().lower()
    return head if head in ORIGIN_KINDS else None


def problems(path):
    """What the patch lacks, as a list of short sentences (empty: it passes)."""
    f = fields(path)
    out = []
    desc = [v for v in f.get('subject', []) + f.get('description', []) if v]
    if not desc:
        out.append('no Description or Subject')
    origins = [v for v in f.get('origin', []) if v]
    if not origins:
        out.append('no Origin')
    elif len(origins) > 1:
        out.append('%d Origin fields' % len(origins))
    elif ',' in origins[0] and origin_kind(origins[0]) is None:
        out.append('Origin category %r is none of %s'
                   % (origins[0].split(',', 1)[0], ', '.join(ORIGIN_KINDS)))
    if not [v for v in f.get('forwarded', []) if v]:
        out.append('no Forwarded')
    if origins and origin_kind(origins[0]) in UPSTREAM_KINDS and \
            not [v for v in f.get('applied-upstream', []) if v]:
        out.append('Origin %s but no Applied-Upstream' % origin_kind(origins[0]))
    for v in f.get('last-update', []):
        if not re.match(r'^\d{4}-\d{2}-\d{2}$', v):
            out.append('Last-Update %r is not YYYY-MM-DD' % v)
    return out


def main():
    patch_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, 'patches')
    names = series(patch_dir)
    if not names:
        print('dep3: no patch listed in %s (give the directory holding the '
              'queue\'s series file)' % os.path.join(patch_dir, 'series'), file=sys.stderr)
    tap = Writer()
    for name in names:
        bad = problems(os.path.join(patch_dir, name))
        tap.result(not bad, 'dep3/' + name, '; '.join(bad))
    tap.plan()
    return 1 if tap.failed or not names else 0


if __name__ == '__main__':
    sys.exit(main())
