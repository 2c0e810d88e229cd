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
    seconds from the first step to each step (NaN where not reached), and the
    index of the chosen start event (for its breakdown value)."""

    customer: npt.NDArray[np.int64]
    level: Int64s
    seconds: npt.NDArray[np.float64]  # shape (customers, steps)
    start_index: Int64s


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
    occurrences = [_positions(s) for s in steps]
    starts = occurrences[0]
    if not in_range and len(starts):
        t = ts_ms[starts]
        starts = starts[(t >= range_start_ms) & (t < range_end_ms)]
    m = len(starts)
    if m == 0:
        empty = np.zeros(0, dtype=np.int64)
        return CustomerLevels(empty, empty, np.zeros((0, k_steps)), empty)
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
    seconds = np.full((len(chosen), k_steps), np.nan)
    seconds[:, 0] = 0.0
    for k, (who_reached, elapsed_ms) in enumerate(reached, start=1):
        # Customers whose chosen start reached step k: find it among the
        # (sorted) starts that did.
        deep = np.flatnonzero(best > k)
        if len(deep) == 0:
            break
        at = np.searchsorted(who_reached, chosen[deep])
        seconds[deep, k] = elapsed_ms[at] / 1000.0
    return CustomerLevels(
        customer=start_customer[bounds],
        level=best,
        seconds=seconds,
        start_index=starts[chosen],
    )


def _positions(step: Bools | Int64s) -> Int64s:
    if step.dtype == np.bool_:
        return np.flatnonzero(step)
    return np.asarray(step, dtype=np.int64)


def summarise(
    names: list[str], levels: Int64s, seconds: npt.NDArray[np.float64]
) -> list[StepResult]:
    results: list[StepResult] = []
    entered = len(levels)
    previous = entered
    for k, name in enumerate(names):
        reached = levels >= k + 1
        count = int(reached.sum())
        times = seconds[reached, k] if count else np.zeros(0)
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
    steps = summarise(names, levels.level, levels.seconds)
    if breakdown_codes is None or breakdown_labels is None:
        return FunnelResult(steps)
    codes = breakdown_codes[levels.start_index]
    values, counts = np.unique(codes, return_counts=True)
    order = np.lexsort((values, -counts))[:breakdown_limit]
    breakdowns = []
    for v in values[order]:
        mask = codes == v
        breakdowns.append(
            (breakdown_labels[int(v)], summarise(names, levels.level[mask], levels.seconds[mask]))
        )
    return FunnelResult(
        steps,
        breakdowns,
        breakdown_values_total=len(values),
        breakdown_capped=len(values) > breakdown_limit,
    )
