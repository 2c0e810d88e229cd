"""Seasonal anomaly detection on synthetic KPI years: precision and recall
at least 0.9, where a fixed threshold confuses weekends with anomalies."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.domain.anomaly import fixed_threshold, judge
from analytics.tests.reference import precision_recall, synthetic_kpi_year


def test_seasonal_detector_finds_injected_anomalies() -> None:
    flagged: set[int] = set()
    injected: set[int] = set()
    base: set[int] = set()
    for seed in range(1, 7):  # six years, days numbered apart per year
        y, inj = synthetic_kpi_year(seed)
        offset = seed * 1000
        flagged |= {offset + j.index for j in judge(y) if j.is_anomaly}
        injected |= {offset + i for i in inj}
        base |= {offset + i for i in fixed_threshold(y)}
    precision, recall = precision_recall(flagged, injected)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, flagged ^ injected)
    assert precision_recall(base, injected)[0] < precision


def test_direction_and_limits_are_evidence() -> None:
    y = np.tile([10.0, 10, 10, 10, 10, 20, 20], 10) + np.tile([0.0, 0.1, -0.1], 24)[:70]
    y[-2] = 14.0  # a Saturday far below its usual 20
    judged = {j.index: j for j in judge(y)}
    j = judged[len(y) - 2]
    assert j.is_anomaly and j.direction == "drop"
    assert j.lower > 14.0 and j.expected == pytest.approx(20.0, abs=0.2)
    assert not judged[len(y) - 1].is_anomaly
