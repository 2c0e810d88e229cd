"""Funnels over event sequences held as sorted columns.

Input: events sorted by customer then time (then arrival), as arrays — the
layout the store keeps (docs/adr/0060). Each step is a boolean mask over the
events. For every occurrence of the first step inside the range, the journey
takes, step by step, the earliest later event matching the next step (loose
order) or requires the customer's very next event to match it (strict
order), as long as it happens within the conversion window of the first
step. Greedy-earliest reaches the deepest step a start can reach. A
customer's level is the deepest step over all their starts; their times to
convert (and breakdown value) are those of their earliest start that
reaches it. Everything is vectorised: one ``searchsorted`` per step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class StepResult:
    event: str
    customers: int
    conversion_from_previous: float
    conversion_from_start: float
    dropped: int
    median_seconds_to_convert: float
    p90_seconds_to_convert: float


@dataclass(frozen=True, slots=True)
class FunnelResult:
    steps: list[StepResult]
    breakdowns: list[tuple[str, list[StepResult]]] = field(default_factory=list)
    breakdown_values_total: int = 0
    breakdown_capped: bool = False


@dataclass(frozen=True, slots=True)
class CustomerLevels:
    """Per customer who entered the funnel: deepest step reached (1-based),
    the index of the chosen start event (for its breakdown value), and per
    step k ≥ 1 the seconds from the first step to step k of the customers
    who reached it (``level > k``), in customer order: sparse, since most
    customers stop early."""

    customer: npt.NDArray[np.int64]
    level: Int64s
    step_seconds: list[npt.NDArray[np.float64]]  # steps - 1 arrays
    start_index: Int64s

    @property
    def seconds(self) -> npt.NDArray[np.float64]:
        """The dense form: (customers, steps), NaN where not reached."""
        out = np.full((len(self.level), len(self.step_seconds) + 1), np.nan)
        out[:, 0] = 0.0
        for k, times in enumerate(self.step_seconds, start=1):
            out[self.level > k, k] = times
        return out


def customer_levels(
    customer: npt.NDArray[np.int64],
    ts_ms: Int64s,
    steps: list[Bools] | list[Int64s],
    *,
    range_start_ms: int,
    range_end_ms: int,
    window_ms: int,
    strict: bool = False,
    in_range: bool = False,
) -> CustomerLevels:
    """``steps``: per step, a boolean mask over the events or the sorted
    positions of the events that match it (what the layout caches, so a
    query does not scan every event once per step). ``in_range``: the caller
    knows every event lies in the range (no per-start time test)."""
    n = len(ts_ms)
    k_steps = len(steps)
    occurrences = [positions_of(s) for s in steps]
    starts = occurrences[0]
    if not in_range and len(starts):
        t = ts_ms[starts]
        starts = starts[(t >= range_start_ms) & (t < range_end_ms)]
    m = len(starts)
    if m == 0:
        return _no_levels(k_steps)
    start_customer = customer[starts]
    level = np.ones(m, dtype=np.int64)
    # Only the starts still converting are carried to the next step (most
    # stop early), so later steps work on ever smaller arrays; each step
    # keeps (which starts, ms elapsed) and seconds are filled in at the end
    # for the one start chosen per customer.
    live = np.arange(m)
    pos = starts
    t0 = ts_ms[starts]
    who = start_customer
    reached: list[tuple[Int64s, Int64s]] = []
    for k in range(1, k_steps):
        occ = occurrences[k]
        if len(occ) == 0 or len(live) == 0:
            break
        if strict:
            nxt = pos + 1
            j = np.minimum(np.searchsorted(occ, nxt), len(occ) - 1)
            ok = occ[j] == nxt
            nxt = np.minimum(nxt, n - 1)
        else:
            j = np.searchsorted(occ, pos, side="right")
            ok = j < len(occ)
            nxt = occ[np.minimum(j, len(occ) - 1)]
        elapsed = ts_ms[nxt] - t0
        ok &= (customer[nxt] == who) & (elapsed <= window_ms)
        if not ok.any():
            break
        live, pos, t0, who = live[ok], nxt[ok], t0[ok], who[ok]
        level[live] = k + 1
        reached.append((live, elapsed[ok]))
    # Starts are in event order, hence grouped by customer. One reduction
    # picks each customer's deepest level and, among its starts reaching
    # it, the earliest: the key is level above, reversed index below.
    bounds = np.flatnonzero(np.r_[True, start_customer[1:] != start_customer[:-1]])
    key = (level << 32) | (m - 1 - np.arange(m, dtype=np.int64))
    best_key = np.maximum.reduceat(key, bounds)
    best = best_key >> 32
    chosen = m - 1 - (best_key & 0xFFFFFFFF)
    step_seconds = []
    for k in range(1, k_steps):
        # Customers whose chosen start reached step k: find it among the
        # (sorted) starts that did.
        deep = np.flatnonzero(best > k)
        if len(deep) == 0:
            step_seconds.append(np.zeros(0))
            continue
        who_reached, elapsed_ms = reached[k - 1]
        at = np.searchsorted(who_reached, chosen[deep])
        step_seconds.append(elapsed_ms[at] / 1000.0)
    return CustomerLevels(
        customer=start_customer[bounds],
        level=best,
        step_seconds=step_seconds,
        start_index=starts[chosen],
    )


def _no_levels(k_steps: int) -> CustomerLevels:
    empty = np.zeros(0, dtype=np.int64)
    return CustomerLevels(empty, empty, [np.zeros(0) for _ in range(k_steps - 1)], empty)


def customer_bounds(customer: npt.NDArray[np.int64], parts: int) -> list[tuple[int, int]]:
    """Split events sorted by customer into at most ``parts`` contiguous
    ranges of about equal size that never cut a customer in two: every
    per-customer computation (funnel levels, cohorts) can run on each range
    alone and the answers concatenate (or add up) in order."""
    n = len(customer)
    if parts <= 1 or n == 0:
        return [(0, n)]
    cuts = [0]
    for i in range(1, parts):
        # The cut moves to the first event of the next customer.
        x = _next_customer(customer, n * i // parts)
        if cuts[-1] < x < n:
            cuts.append(x)
    cuts.append(n)
    return list(itertools.pairwise(cuts))


def _next_customer(customer: npt.NDArray[np.int64], x: int) -> int:
    """The first index at or after ``x`` where a customer begins."""
    n = len(customer)
    if x <= 0 or x >= n:
        return max(0, min(x, n))
    if customer[x] != customer[x - 1]:
        return x
    # Customers' events are contiguous: scan forward in doubling windows.
    width = 64
    while True:
        end = min(n, x + width)
        change = np.flatnonzero(customer[x:end] != customer[x - 1])
        if len(change):
            return x + int(change[0])
        if end == n:
            return n
        x, width = end, width * 2


def within(positions: Int64s, lo: int, hi: int) -> Int64s:
    """The sorted positions that fall in [lo, hi)."""
    return positions[np.searchsorted(positions, lo) : np.searchsorted(positions, hi)]


def concat_levels(parts: list[CustomerLevels], steps: int) -> CustomerLevels:
    """Levels of disjoint customer ranges, in range order (as one call over
    all events would give them)."""
    parts = [p for p in parts if len(p.customer)]
    if not parts:
        return _no_levels(steps)
    if len(parts) == 1:
        return parts[0]
    return CustomerLevels(
        customer=np.concatenate([p.customer for p in parts]),
        level=np.concatenate([p.level for p in parts]),
        step_seconds=[np.concatenate([p.step_seconds[k] for p in parts]) for k in range(steps - 1)],
        start_index=np.concatenate([p.start_index for p in parts]),
    )


def positions_of(step: Bools | Int64s) -> Int64s:
    """A step's sorted event positions (from a mask, or as given)."""
    if step.dtype == np.bool_:
        return np.flatnonzero(step)
    return np.asarray(step, dtype=np.int64)


def summarise(
    names: list[str],
    levels: Int64s,
    step_seconds: list[npt.NDArray[np.float64]] | npt.NDArray[np.float64],
    mask: Bools | None = None,
) -> list[StepResult]:
    """Per-step results. ``step_seconds``: CustomerLevels.step_seconds (or
    the dense (customers, steps) matrix); ``mask``: only these customers."""
    dense = isinstance(step_seconds, np.ndarray)
    results: list[StepResult] = []
    chosen = levels if mask is None else levels[mask]
    entered = len(chosen)
    previous = entered
    for k, name in enumerate(names):
        count = int((chosen >= k + 1).sum())
        if not count or k == 0:
            times = np.zeros(count)
        elif dense:
            rows = levels >= k + 1 if mask is None else mask & (levels >= k + 1)
            times = np.asarray(step_seconds)[rows, k]
        else:
            times = step_seconds[k - 1]
            if mask is not None:
                times = times[mask[levels > k]]
        results.append(
            StepResult(
                event=name,
                customers=count,
                conversion_from_previous=(count / previous) if previous else 0.0,
                conversion_from_start=(count / entered) if entered else 0.0,
                dropped=previous - count if k else 0,
                median_seconds_to_convert=float(np.median(times)) if count else 0.0,
                p90_seconds_to_convert=float(np.percentile(times, 90)) if count else 0.0,
            )
        )
        previous = count
    return results


def funnel(
    names: list[str],
    levels: CustomerLevels,
    *,
    breakdown_codes: Int64s | None = None,
    breakdown_labels: list[str] | None = None,
    breakdown_limit: int = 10,
) -> FunnelResult:
    """Per-step results, and per breakdown value (the value at each
    customer's chosen start) for the ``breakdown_limit`` largest values."""
    steps = summarise(names, levels.level, levels.step_seconds)
    if breakdown_codes is None or breakdown_labels is None:
        return FunnelResult(steps)
    codes = breakdown_codes[levels.start_index]
    values, counts = np.unique(codes, return_counts=True)
    order = np.lexsort((values, -counts))[:breakdown_limit]
    breakdowns = []
    for v in values[order]:
        mask = codes == v
        breakdowns.append(
            (breakdown_labels[int(v)], summarise(names, levels.level, levels.step_seconds, mask))
        )
    return FunnelResult(
        steps,
        breakdowns,
        breakdown_values_total=len(values),
        breakdown_capped=len(values) > breakdown_limit,
    )


def funnel_by_groups(
    names: list[str],
    levels: CustomerLevels,
    groups: list[tuple[str, Int64s]],
    *,
    rest_label: str,
    breakdown_limit: int = 10,
) -> FunnelResult:
    """Per-step results, and per group of customers (e.g. a segment's
    members, by customer key): a customer in several groups counts in each;
    customers of the funnel in none are the ``rest_label`` group. The
    ``breakdown_limit`` groups with most customers entering are kept."""
    steps = summarise(names, levels.level, levels.step_seconds)
    anywhere = np.zeros(len(levels.customer), dtype=np.bool_)
    masks: list[tuple[str, Bools]] = []
    for label, members in groups:
        mask = np.isin(levels.customer, members)
        if mask.any():
            masks.append((label, mask))
            anywhere |= mask
    rest = ~anywhere
    if rest.any():
        masks.append((rest_label, rest))
    # Largest first; ties by label, so the answer does not depend on order.
    masks.sort(key=lambda lm: (-int(lm[1].sum()), lm[0]))
    kept = masks[:breakdown_limit]
    return FunnelResult(
        steps,
        [
            (label, summarise(names, levels.level, levels.step_seconds, mask))
            for label, mask in kept
        ],
        breakdown_values_total=len(masks),
        breakdown_capped=len(masks) > breakdown_limit,
    )
