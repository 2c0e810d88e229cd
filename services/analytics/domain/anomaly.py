"""Anomalies in a KPI series with weekly (or any) seasonality.

Expected value of a point: the median of the same season position over the
previous ``seasons`` cycles (same weekday of the last five weeks; an odd count, so one past anomaly among them cannot move the median) — a
seasonal baseline that one past anomaly cannot drag. Control limits:
expected ± ``threshold`` x a robust scale of recent residuals (1.4826 x MAD
of the residuals of the previous ``history`` points, each against its own
seasonal baseline), with a floor relative to the level so a perfectly flat
history does not make every wobble an alert. docs/adr/0062.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AnomalyParams:
    period: int = 7
    seasons: int = 5
    history: int = 56
    threshold: float = 4.0
    # Scale never below this share of the expected level (1 %).
    min_relative_scale: float = 0.01


@dataclass(frozen=True, slots=True)
class Judgement:
    index: int
    observed: float
    expected: float
    lower: float
    upper: float
    score: float

    @property
    def is_anomaly(self) -> bool:
        return self.observed < self.lower or self.observed > self.upper

    @property
    def direction(self) -> str:
        return "drop" if self.observed < self.lower else "spike"


def seasonal_baseline(values: Floats, params: AnomalyParams) -> Floats:
    """Expected value per point (NaN until ``seasons`` cycles of history)."""
    n = len(values)
    p, s = params.period, params.seasons
    expected = np.full(n, np.nan)
    if n <= p * s:
        return expected
    lagged = np.stack([values[p * s - p * j : n - p * j] for j in range(1, s + 1)], axis=1)
    expected[p * s :] = np.nanmedian(lagged, axis=1)
    return expected


def judge(values: Floats, params: AnomalyParams | None = None) -> list[Judgement]:
    """A judgement for every point with enough history (oldest first)."""
    params = params or AnomalyParams()
    values = np.asarray(values, dtype=np.float64)
    expected = seasonal_baseline(values, params)
    residual = values - expected
    out: list[Judgement] = []
    first = params.period * params.seasons + params.period
    for i in range(first, len(values)):
        past = residual[max(0, i - params.history) : i]
        past = past[~np.isnan(past)]
        if len(past) < params.period:
            continue
        center = float(np.median(past))
        mad = float(np.median(np.abs(past - center)))
        scale = max(1.4826 * mad, params.min_relative_scale * abs(float(expected[i])), 1e-12)
        exp = float(expected[i]) + center
        out.append(
            Judgement(
                index=i,
                observed=float(values[i]),
                expected=exp,
                lower=exp - params.threshold * scale,
                upper=exp + params.threshold * scale,
                score=(float(values[i]) - exp) / scale,
            )
        )
    return out


def fixed_threshold(values: Floats, training: int = 28, band: float = 0.2) -> list[int]:
    """The baseline the benchmark compares with: alert when a point leaves
    ±``band`` of the mean of the first ``training`` points."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.mean(values[:training]))
    idx = np.flatnonzero((values < mean * (1 - band)) | (values > mean * (1 + band)))
    return [int(i) for i in idx if i >= training]
