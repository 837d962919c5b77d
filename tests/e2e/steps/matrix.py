"""The guest mappings of the vIOMMU matrix (scenarios/viommu_matrix.py),
which the fail-nth sweep runs again with a fault at each call."""

from e2e import guestdma as g

A = g.Mapping(0x10000, 0x200000)
B = g.Mapping(0x20000, 0x280000, 4 * g.PAGE)
C = [g.Mapping(0x40000000, 0x2000000), g.Mapping(0x40001000, 0x2345000)]
# pass-through: the device addresses guest-physical pages directly
P = [g.Mapping(0x300000, 0x300000), g.Mapping(0x1234000, 0x1234000),
     g.Mapping(0x3456000, 0x3456000)]
DMA_DID = 1
