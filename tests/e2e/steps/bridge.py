"""Assigned devices behind one PCIe-to-PCI bridge: its address, the bus
number firmware would give it, and the guest driver that puts the
bridge's alias (every device behind it) in one domain."""

from e2e import guestdma as g
from lib.viommu import driver as guest_driver

DID = 1
BRIDGE_DEVFN = 6 << 3          # pcie-pci-bridge at 00:06.0 on pcie.0
SECONDARY_BUS = 1              # numbered by the test, as firmware would
ALIAS_DEVFN = 0                # PCIe-to-PCI bridge: (secondary bus, 00.0)
PCI_CONFIG_ADDRESS = 0xCF8
PCI_CONFIG_DATA = 0xCFC


def number_bridge(v):
    """Give the bridge secondary/subordinate bus 1 through the legacy PCI
    configuration ports, as firmware does (no firmware runs under qtest)."""
    addr = 0x80000000 | (BRIDGE_DEVFN << 8) | 0x18       # bus 0, PRIMARY_BUS dword
    v.qt.cmd("outl 0x%x 0x%x" % (PCI_CONFIG_ADDRESS, addr))
    v.qt.cmd("outl 0x%x 0x%x" % (PCI_CONFIG_DATA,
                                 (SECONDARY_BUS << 16) | (SECONDARY_BUS << 8)))


def bring_up(v, named, did=DID):
    """Guest VT-d driver: the bridge's alias in domain did, translation on,
    every mapping of named mapped."""
    number_bridge(v)
    drv = guest_driver(v.qt, "legacy")
    drv.init()
    drv.attach(SECONDARY_BUS, ALIAS_DEVFN, did)
    drv.enable_translation()
    g.map_all(drv, did, [m for _, _, m in named])
    return drv
