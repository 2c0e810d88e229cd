"""Journey stages: a mapping of events to ordered stages (awareness,
consideration, purchase, retention, advocacy …). In each period a customer
is at the deepest stage any of their events reached; a stage counts every
customer at it or beyond, so conversion from one stage to the next reads
like a funnel per period."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def stage_counts(customer: I64, period: I64, stage: I64, stages: int) -> dict[int, list[int]]:
    """period index -> customers at or beyond each stage. ``stage`` is the
    event's stage index (-1: no stage)."""
    mapped = stage >= 0
    customer, period, stage = customer[mapped], period[mapped], stage[mapped]
    if len(stage) == 0:
        return {}
    # Deepest stage per (customer, period).
    order = np.lexsort((stage, period, customer))
    c, p, s = customer[order], period[order], stage[order]
    last = np.r_[(c[1:] != c[:-1]) | (p[1:] != p[:-1]), True]
    p, s = p[last], s[last]
    out: dict[int, list[int]] = {}
    for value in np.unique(p):
        deepest = s[p == value]
        at = np.bincount(deepest, minlength=stages)
        beyond = np.cumsum(at[::-1])[::-1]
        out[int(value)] = [int(x) for x in beyond]
    return out
