"""Reading hostsim's event log: select calls, and print them for reports.

Each hostsim event is a dict with at least seq, call, ret, errno, and the
decoded ioctl arguments (iova, length or size, flags, dirty_pages, ...).
"""

# uAPI flag values (linux/iommufd.h, linux/vfio.h)
IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1
VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1

GET_DIRTY = "IOMMU_HWPT_GET_DIRTY_BITMAP"
IOAS_UNMAP = "IOMMU_IOAS_UNMAP"
IOAS_MAP = "IOMMU_IOAS_MAP"
TYPE1_MAP = "VFIO_IOMMU_MAP_DMA"
TYPE1_UNMAP = "VFIO_IOMMU_UNMAP_DMA"
TYPE1_DIRTY = "VFIO_IOMMU_DIRTY_PAGES"


def length(ev):
    for k in ("length", "size"):
        if k in ev:
            return ev[k]
    return None


def after(events, seq):
    return [e for e in events if e.get("seq", 0) > seq]


def calls(events, *names):
    return [e for e in events if e.get("call") in names]


def fmt(ev):
    """One readable line per event: call, range, flags, result."""
    parts = ["#%s" % ev.get("seq"), str(ev.get("call"))]
    if "iova" in ev:
        n = length(ev)
        if n is not None:
            parts.append("[0x%x+0x%x)" % (ev["iova"], n))
        else:
            parts.append("iova=0x%x" % ev["iova"])
    for k in ("flags", "page_size", "pgsize", "dirty_pages", "state", "hwpt_id", "ioas_id"):
        if k in ev:
            v = ev[k]
            parts.append("%s=%s" % (k, hex(v) if isinstance(v, int) and k in ("flags",) else v))
    parts.append("ret=%s" % ev.get("ret"))
    if ev.get("errno"):
        parts.append("errno=%s" % ev["errno"])
    if ev.get("injected"):
        parts.append("INJECTED")
    return " ".join(parts)


def fmt_all(events, names=None, limit=60):
    sel = events if names is None else [e for e in events if e.get("call") in names]
    lines = [fmt(e) for e in sel]
    if len(lines) > limit:
        lines = lines[:10] + ["... %d more ..." % (len(lines) - limit)] + lines[-(limit - 10):]
    return lines


def maps_of(events):
    return calls(events, IOAS_MAP, TYPE1_MAP)


def unmaps_of(events):
    return calls(events, IOAS_UNMAP, TYPE1_UNMAP)
