"""The test harness every suite imports (tests/README.md lists its modules).

Standard library only; entry points put tests/ on the import path."""
