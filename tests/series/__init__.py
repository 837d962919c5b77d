"""The queue's own checks (run) and the DEP-3 check packaging shares (dep3)."""
