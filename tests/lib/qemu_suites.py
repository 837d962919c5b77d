"""Which of QEMU's own tests `make check` runs, and what they need built.

The area the series touches: the whole `unit` suite and these x86_64 qtests
(migration-test in its default, quick set).
"""
import json
import os
import subprocess

QTESTS = [
    'intel-iommu-test', 'migration-test', 'qom-test', 'device-introspect-test',
    'qmp-cmd-test', 'q35-test', 'test-hmp',
]


def introspect(build_dir, what):
    out = subprocess.run(['meson', 'introspect', what], cwd=build_dir,
                         check=True, text=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def selected_tests(build_dir):
    """meson test names: unit tests plus the chosen qtest-x86_64 ones."""
    names = []
    for t in introspect(build_dir, '--tests'):
        if 'qemu:unit' in t['suite'] or 'unit' in t['suite']:
            names.append(t)
        elif t['name'] in ['qtest-x86_64/' + q for q in QTESTS]:
            names.append(t)
    return names


def ninja_targets(build_dir):
    """Files ninja must build for the selected tests to run."""
    by_id = {t['id']: t for t in introspect(build_dir, '--targets')}
    outputs = {f for t in by_id.values() for f in t['filename']}
    targets = set()
    for t in selected_tests(build_dir):
        # Some tests run a script (cmd[0] is an interpreter): nothing to build.
        if t['cmd'][0] in outputs:
            targets.add(os.path.relpath(t['cmd'][0], build_dir))
        for dep in t.get('depends', []):
            if dep in by_id:
                for f in by_id[dep]['filename']:
                    targets.add(os.path.relpath(f, build_dir))
    return sorted(targets)
