"""Anomaly detection on daily KPI series, robust to weekly seasonality.

A day is compared with the same weekday of the previous ``weeks`` weeks
(the seasonal baseline: their median) and the spread of the recent
seasonally-adjusted residuals (median absolute deviation, robust to the
very drops it looks for). A value more than ``k`` robust standard
deviations below the baseline — and below it by at least ``min_drop`` —
is an anomaly. Days with too few responses are skipped (a KPI over 3
answers says nothing)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DailyValue:
    day: int  # days since epoch
    value: float
    responses: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    day: int
    observed: float
    expected: float
    # How many robust standard deviations below the baseline.
    z: float


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    weeks: int = 4
    k: float = 3.5
    min_drop: float = 5.0
    min_responses: int = 20
    residual_window: int = 56


def detect_drops(
    series: Sequence[DailyValue], s: DetectorSettings = DetectorSettings()
) -> list[Anomaly]:
    """Every anomalous drop in ``series`` (one value per day, any order;
    missing days allowed)."""
    by_day = {d.day: d for d in series if d.responses >= s.min_responses}
    residuals: list[tuple[int, float]] = []
    out: list[Anomaly] = []
    for day in sorted(by_day):
        same_weekday = [
            by_day[day - 7 * w].value for w in range(1, s.weeks + 1) if day - 7 * w in by_day
        ]
        if len(same_weekday) < max(2, s.weeks // 2):
            continue
        expected = statistics.median(same_weekday)
        recent = [r for d, r in residuals if day - d <= s.residual_window]
        value = by_day[day].value
        resid = value - expected
        if len(recent) >= 14:
            med = statistics.median(recent)
            mad = statistics.median(abs(r - med) for r in recent) * 1.4826
            scale = max(mad, 1e-6)
            z = (med - resid) / scale
            if z >= s.k and expected - value >= s.min_drop:
                out.append(Anomaly(day, value, expected, round(z, 2)))
                continue  # an anomaly does not teach the baseline what normal is
        residuals.append((day, resid))
    return out


def detect_spikes(
    series: Sequence[DailyValue], s: DetectorSettings = DetectorSettings()
) -> list[Anomaly]:
    """Every anomalous rise in ``series`` (e.g. the share of detractors):
    the same test as ``detect_drops`` on the mirrored series."""
    mirrored = [DailyValue(d.day, -d.value, d.responses) for d in series]
    return [Anomaly(a.day, -a.observed, -a.expected, a.z) for a in detect_drops(mirrored, s)]
