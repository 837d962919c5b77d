"""Parse TAP from a suite's output and keep the counts.

Every suite of `make check` is an executable that prints TAP: "ok N - name",
"not ok N - name", optionally with "# SKIP reason" or "# TODO reason".
A passing result may carry "# FLAKE what": it failed, then passed when run
again (only QEMU's own suites do that); it counts as passed and is named in
`flakes` so that the summary shows it.
"""
import re

_LINE = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$')


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []
        self.flakes = []

    def feed(self, suite, line):
        """Count one output line; return True if it was a test result."""
        m = _LINE.match(line.strip())
        if not m:
            return False
        status, _, rest = m.groups()
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
