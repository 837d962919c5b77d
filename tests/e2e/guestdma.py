"""Guest-side helpers shared by scenarios: mappings the guest makes through
its VT-d driver, the device's DMA through them (hostsim control socket),
and checking the content of guest pages (source or destination).

A page's "old" content is written by the guest (qtest) before migration,
so a destination that never received the device's later write shows old,
not zeroes: a stale page is told apart from a page never sent at all.
"""

import struct

from lib import migration

PAGE = 4096


def old_pattern(gpa):
    return 0x01D0000000000000 | (gpa >> 12)


def new_pattern(gpa):
    return 0xD1A7000000000000 | (gpa >> 12)


class Mapping:
    def __init__(self, iova, gpa, size=PAGE):
        self.iova, self.gpa, self.size = iova, gpa, size

    def pages(self):
        return [(self.iova + o, self.gpa + o) for o in range(0, self.size, PAGE)]

    def __repr__(self):
        return "iova 0x%x -> gpa 0x%x (+0x%x)" % (self.iova, self.gpa, self.size)


def map_all(drv, did, mappings):
    for m in mappings:
        drv.map(did, m.iova, m.gpa, m.size)


def fill_old(vm, mappings):
    for m in mappings:
        for _, gpa in m.pages():
            vm.qt.fill_u64(gpa, PAGE, old_pattern(gpa))


def device_write(vm, mappings, pattern=None):
    """The device writes pattern(gpa) (default new_pattern) into every page
    of the mappings through the host IOMMU.  Returns a list of (mapping,
    hostsim reply)."""
    pattern = pattern or new_pattern
    out = []
    for m in mappings:
        for iova, gpa in m.pages():
            out.append((m, vm.ctl.dma(iova, PAGE, pattern(gpa))))
    return out


def page_state(vm, gpa):
    """'new', 'old' or 'other:<first u64>' for the page at gpa."""
    data = vm.qt.read(gpa, PAGE)
    words = set(struct.unpack("<%dQ" % (PAGE // 8), data))
    if words == {new_pattern(gpa)}:
        return "new"
    if words == {old_pattern(gpa)}:
        return "old"
    return "other:0x%016x" % struct.unpack_from("<Q", data)[0]


def check_pages(vm, mappings):
    """{gpa: state} for every page of the mappings."""
    return {gpa: page_state(vm, gpa) for m in mappings for _, gpa in m.pages()}


# Non-zero ballast placed after every target page in send order, and the
# bandwidth cap under which the first RAM pass spends ~1 s on it.
BALLAST_GPA = 0x6000000
BALLAST_SIZE = 32 << 20
BANDWIDTH = 32 << 20


def migrate_with_window(src, dst, maps, action, ballast_gpa=BALLAST_GPA,
                        ballast_size=BALLAST_SIZE, **kw):
    """Migrate src -> dst; run action() with the VM and the device running,
    as soon as every page of maps is on the destination holding "old" (so
    it was sent), while the first pass is still busy with the ballast.
    The result's ordering_lost is set if a dirty sync ran during action()
    (see migration.migrate).  Targets must lie below ballast_gpa."""
    migration.ballast(src, ballast_gpa, ballast_size)

    def sent():
        return set(check_pages(dst, maps).values()) == {"old"}
    return migration.migrate(src, dst, pause=kw.pop("pause", False),
                             active_hook=lambda r: action(), sent=sent,
                             bandwidth=kw.pop("bandwidth", BANDWIDTH), **kw)
