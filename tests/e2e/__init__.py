"""The end-to-end suite (tests/e2e/README.md): cases in scenarios/, the
steps several cases share in steps/, the runner in run."""
