"""TAP, the one format every suite of `make check` prints: Writer prints
results, parse() and Tally read them back.

Every suite of `make check` is an executable that prints TAP: "ok N - name",
"not ok N - name", optionally with "# SKIP reason" or "# TODO reason".
A passing result may carry "# FLAKE what": it failed, then passed when run
again (only QEMU's own suites do that); it counts as passed and is named in
`flakes` so that the summary shows it.
"""
import re
import sys

_LINE = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$')


def parse(line):
    """(passed, number or None, rest of the line) of a result line, else
    None."""
    m = _LINE.match(line.strip())
    if not m:
        return None
    status, number, rest = m.groups()
    return status == 'ok', number, rest


class Writer:
    """Result lines on stdout, counted; numbered unless numbered=False
    (make check's own lines about its stages, between the suites')."""

    def __init__(self, numbered=True):
        self.numbered = numbered
        self.n = 0
        self.failed = 0
        self.skipped = 0

    def result(self, ok, name, detail='', skip=None, todo=None, flake=None,
               diag=None, diag_lines=25):
        """One result: "ok N - name: detail", with a directive when given:
        "# SKIP skip" (not run), "# TODO todo" (an expected failure, not
        counted as failed), "# FLAKE flake" (failed, then passed when run
        again).  diag (text) is printed under a failed result, its last
        diag_lines lines.  Returns ok."""
        self.n += 1
        if skip or todo:
            self.skipped += 1
        elif not ok:
            self.failed += 1
        line = '%s%s - %s' % ('ok' if ok else 'not ok',
                              ' %d' % self.n if self.numbered else '', name)
        if detail:
            # "#" would start a TAP directive
            line += ': ' + str(detail).replace('#', 'No.')
        for word, text in (('SKIP', skip), ('TODO', todo), ('FLAKE', flake)):
            if text:
                line += ' # %s %s' % (word, text)
        self.out(line)
        if diag and not ok:
            for l in str(diag).rstrip().splitlines()[-diag_lines:]:
                self.out('# ' + l)
        return ok

    def diag(self, text):
        for l in str(text).splitlines() or ['']:
            self.out('# ' + l)

    def plan(self, count=None):
        """The plan line: before the results (count given) or after them."""
        self.out('1..%d' % (self.n if count is None else count))

    @staticmethod
    def out(line=''):
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []
        self.flakes = []

    def feed(self, suite, line):
        """Count one output line; return True if it was a test result."""
        r = parse(line)
        if r is None:
            return False
        passed, _, rest = r
        status = 'ok' if passed else 'not ok'
        directive = ''
        if ' # ' in rest or rest.startswith('# '):
            rest, _, directive = rest.partition('# ')
            directive = directive.strip().upper()
        name = rest.strip() or '(unnamed)'
        if directive.startswith('SKIP'):
            self.skipped += 1
        elif status == 'ok' and directive.startswith('FLAKE'):
            self.passed += 1
            self.flakes.append(f'{suite}: {name.strip()} ({directive[5:].strip().lower()})')
        elif status == 'ok':
            self.passed += 1
        elif directive.startswith('TODO'):
            # An expected failure is not a pass: report it as skipped so
            # the summary never hides it.
            self.skipped += 1
        else:
            self.failed += 1
            self.failures.append(f'{suite}: {name}')
        return True

    def fail(self, suite, name):
        self.failed += 1
        self.failures.append(f'{suite}: {name}')

    def summary(self):
        s = f'{self.passed} passed, {self.failed} failed'
        if self.skipped:
            s += f', {self.skipped} skipped'
        return s
