"""Spread of repeated measurements: min/median/max, and ratios taken
repetition by repetition (the two sides of a ratio ran side by side, one
right after the other, in the same repetition)."""

import statistics


def spread(values):
    """{"min", "median", "max", "n"} of the numbers in values (None left
    out); None when there is none."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}


def ratios(num, den):
    """Per-repetition ratios num[i] / den[i] (pairs with a missing or zero
    denominator left out)."""
    return [a / b for a, b in zip(num, den) if a is not None and b]


def fmt_spread(s, scale=1.0, digits=2):
    """"median [min-max]" or "-"."""
    if s is None:
        return "-"
    f = "%%.%df" % digits
    if s["n"] == 1:
        return f % (s["median"] * scale)
    return (f + " [" + f + "-" + f + "]") % (s["median"] * scale, s["min"] * scale,
                                           s["max"] * scale)
