"""The end-to-end cases: every module here is one group of cases and
exposes cases(), a list of e2e.scenario.Case.  A module may also define
report_table(results), which the runner calls after all cases (e.g. the
vIOMMU matrix).  Steps several groups share live in e2e/steps/, not here.

A new module is found by its file alone: no list to extend.
"""

import importlib
import pkgutil


def modules():
    """The case modules, in file name order."""
    return [importlib.import_module("%s.%s" % (__name__, m.name))
            for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]


def all_cases():
    out = []
    for m in modules():
        out.extend(m.cases())
    return out
