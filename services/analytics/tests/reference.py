"""Plain pandas / Python computations of funnels, paths and retention, the
obvious way (one customer at a time), that the fast engines are checked
against. Shared by the tests and bench/analytics.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd


def funnel_reference(
    df: pd.DataFrame,
    steps: list[str],
    *,
    start_ms: int,
    end_ms: int,
    window_ms: int,
    strict: bool = False,
    breakdown: str | None = None,
) -> dict[str, Any]:
    """``df``: customer, ts (ms), event, seq (+ breakdown column). Returns
    per-step counts and median/p90 seconds, and per breakdown value counts."""
    df = df.sort_values(["customer", "ts", "seq"])
    levels: list[int] = []
    times: list[list[float]] = []
    values: list[Any] = []
    for _, g in df.groupby("customer", sort=False):
        ev = g["event"].tolist()
        ts = g["ts"].tolist()
        bd = g[breakdown].tolist() if breakdown else [None] * len(ev)
        best: tuple[int, list[float], Any] | None = None
        for i, e in enumerate(ev):
            if e != steps[0] or not (start_ms <= ts[i] < end_ms):
                continue
            level, t, pos = 1, [0.0], i
            for step in steps[1:]:
                nxt = None
                if strict:
                    if pos + 1 < len(ev) and ev[pos + 1] == step:
                        nxt = pos + 1
                else:
                    for j in range(pos + 1, len(ev)):
                        if ev[j] == step:
                            nxt = j
                            break
                if nxt is None or ts[nxt] - ts[i] > window_ms:
                    break
                level += 1
                t.append((ts[nxt] - ts[i]) / 1000.0)
                pos = nxt
            if best is None or level > best[0]:
                best = (level, t, bd[i])
        if best is not None:
            levels.append(best[0])
            times.append(best[1])
            values.append(best[2])

    def summary(idx: list[int]) -> list[dict[str, float]]:
        out = []
        for k in range(len(steps)):
            reached = [times[i][k] for i in idx if levels[i] >= k + 1]
            out.append(
                {
                    "customers": len(reached),
                    "median": float(np.median(reached)) if reached else 0.0,
                    "p90": float(np.percentile(reached, 90)) if reached else 0.0,
                }
            )
        return out

    result: dict[str, Any] = {"steps": summary(list(range(len(levels))))}
    if breakdown:
        result["breakdown"] = {
            v: summary([i for i, x in enumerate(values) if x == v]) for v in set(values)
        }
    return result


def paths_reference(
    df: pd.DataFrame, anchor: str, depth: int, *, before: bool = False, end: str = "(end)"
) -> Counter[tuple[str, ...]]:
    df = df.sort_values(["customer", "ts", "seq"])
    counts: Counter[tuple[str, ...]] = Counter()
    for _, g in df.groupby("customer", sort=False):
        ev = g["event"].tolist()
        for i, e in enumerate(ev):
            if e != anchor:
                continue
            if before:
                prev = ev[max(0, i - depth) : i]
                path = tuple(["(start)"] * (depth - len(prev)) + prev + [e])
            else:
                nxt = ev[i + 1 : i + 1 + depth]
                path = tuple([e, *nxt] + [end] * (depth - len(nxt)))
            counts[path] += 1
    return counts


def synthetic_kpi_year(
    seed: int, *, days: int = 365, anomalies: int = 12, noise: float = 0.015
) -> tuple[np.ndarray, set[int]]:
    """A daily conversion-rate-like KPI: level 0.08 with a slow trend, weekly
    seasonality (weekends +35 %), multiplicative noise, and injected drops
    and spikes of 15-40 % on random days after the first five weeks."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekly = np.array([1.0, 0.97, 0.95, 0.98, 1.05, 1.35, 1.3])[t % 7]
    trend = 1.0 + 0.25 * t / days
    y = 0.08 * trend * weekly * (1 + rng.normal(0, noise, days))
    candidates = rng.permutation(np.arange(42, days))
    injected: set[int] = set()
    for i in candidates:
        if len(injected) == anomalies:
            break
        if any(abs(int(i) - j) < 3 for j in injected):
            continue
        injected.add(int(i))
        size = rng.uniform(0.15, 0.4)
        y[i] *= (1 - size) if rng.random() < 0.5 else (1 + size)
    return y, injected


def precision_recall(flagged: set[int], injected: set[int]) -> tuple[float, float]:
    tp = len(flagged & injected)
    precision = tp / len(flagged) if flagged else 1.0
    recall = tp / len(injected) if injected else 1.0
    return precision, recall
