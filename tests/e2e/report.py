"""TAP output and failure diagnostics for the end-to-end runner.

On failure a reader must be able to tell what went wrong without rerunning:
print the facts the scenario noted (hostsim event-log lines, QMP errors,
destination page states), each VM's stderr tail and last QMP exchanges,
and where the full logs are.
"""

from lib import tap

TAP = tap.Writer()
out = TAP.out
diag = TAP.diag


def tap_result(ok, name, detail="", skip=None):
    TAP.result(ok, name, detail, skip=skip)


def failure_details(ctx, exc=None, stderr_lines=15, qmp_lines=8):
    if exc:
        diag("exception:")
        for l in exc.rstrip().splitlines():
            diag("  " + l)
    for n in ctx.notes:
        diag(n)
    for v in ctx.vms:
        err = v.stderr().strip().splitlines()
        if err:
            diag("[%s] stderr (last %d lines):" % (v.name, stderr_lines))
            for l in err[-stderr_lines:]:
                diag("  " + l)
        if v.qmp is not None:
            diag("[%s] QMP (last exchanges):" % v.name)
            for l in v.qmp.tail(qmp_lines):
                diag("  " + l[:300])
    diag("logs: %s" % ctx.workdir)
