"""All end-to-end scenarios.  A scenario module exposes cases() returning a
list of scenario.Case; add new modules to MODULES."""

from scenarios import realize_policy, unmap_during_migration, dirty_sync, unmap_fault

MODULES = [realize_policy, unmap_during_migration, dirty_sync, unmap_fault]

# Whole-space teardown, passthrough to blocked, memory-size limit, RAM above 4 GiB.
from scenarios import (teardown_during_migration, teardown_two_containers,  # noqa: E402
                       passthrough_to_blocked, memory_limit, ram_above_4g)

MODULES += [teardown_during_migration, teardown_two_containers, passthrough_to_blocked,
            memory_limit, ram_above_4g]

# The vIOMMU test matrix, churn, fail-nth sweep.  A module may also define
# report_table(results), which the runner calls after all cases.
from scenarios import viommu_matrix, churn, fail_nth, remap_race  # noqa: E402

MODULES += [viommu_matrix, churn, fail_nth, remap_race]


# Proofs of the prerequisite fix and of the replay-race follow-up, also on
# the queue's commit just before each fix (builds upto-NN, see config.py).
from scenarios import prerequisite_612, replay_race  # noqa: E402

MODULES += [prerequisite_612, replay_race]

# A failed host unmap (a stale host mapping): the migration must fail
# naming it, not complete without the pages written through the stale
# mapping; also on the queue's commit just before the fix.
from scenarios import failed_unmap  # noqa: E402

MODULES += [failed_unmap]

# virtio-iommu and AMD-Vi: their unmap notifications do not carry the
# unmapped page, so the fork keeps the vIOMMU blocker for them.
from scenarios import other_viommus  # noqa: E402

MODULES += [other_viommus]

# Devices whose DMA no dirty source covers (enable-migration=on): every
# written page must reach the destination.
from scenarios import no_dirty_source, mixed_container  # noqa: E402

MODULES += [no_dirty_source, mixed_container]

# Faults of QEMU 10.2.2 itself on the VFIO migration path: no abort, the
# kernel's errno reported, QEMU alive and the next migration intact.
from scenarios import (shared_space_backends, dma_map_failure,  # noqa: E402
                       dirty_rate_start_failure, lost_errno)

MODULES += [shared_space_backends, dma_map_failure, dirty_rate_start_failure, lost_errno]


def all_cases():
    out = []
    for m in MODULES:
        out.extend(m.cases())
    return out
