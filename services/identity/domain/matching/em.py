"""Expectation maximisation of m probabilities and the match rate, with u fixed.

As in Splink: u (how often non-matches land in each level) is measured
directly on random pairs, which are almost all non-matches. m (the same for
matches) cannot be measured without labels, so EM infers it from pairs found by
a blocking rule, where matches are common. Fields the rule forces to agree are
left out of that session: every pair agrees on them, so they carry no signal
and would only absorb the match/non-match split.

The comparison vectors of a session repeat heavily (a few thousand distinct
patterns for hundreds of thousands of pairs), so EM runs on the distinct
patterns weighted by their counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from identity.domain.matching.comparisons import NULL_LEVEL, Levels

_Float = npt.NDArray[np.float64]
_M_FLOOR = 1e-6


@dataclass(frozen=True, slots=True)
class SessionResult:
    m: dict[int, _Float]  # field index -> m per level, for the fields estimated
    match_rate: float  # share of matches among the session's pairs
    iterations: int


def initial_m(n_levels: int) -> _Float:
    # Matches mostly land in the most similar levels; start there so EM
    # settles on the match class rather than swapping the two classes.
    m = 4.0 ** np.arange(n_levels, dtype=np.float64)
    return np.asarray(m / m.sum(), dtype=np.float64)


def run_session(
    levels: Levels,
    u: Sequence[_Float],
    active_fields: Sequence[int],
    *,
    m_start: Sequence[_Float] | None = None,
    match_rate_start: float = 0.3,
    max_iterations: int = 50,
    tolerance: float = 1e-5,
) -> SessionResult:
    """EM over the pairs' comparison levels for ``active_fields``."""
    active = list(active_fields)
    if len(levels) == 0 or not active:
        return SessionResult({}, 0.0, 0)
    patterns, counts = np.unique(levels[:, active], axis=0, return_counts=True)
    weights = counts.astype(np.float64)
    m = [(m_start[f] if m_start is not None else initial_m(len(u[f]))).copy() for f in active]
    log_u = np.zeros(len(patterns))
    for k, f in enumerate(active):
        col = patterns[:, k]
        present = col != NULL_LEVEL
        log_u[present] += np.log(u[f][col[present]])
    has_data = [bool(np.any(patterns[:, k] != NULL_LEVEL)) for k in range(len(active))]
    rate = match_rate_start
    iterations = 0
    for iteration in range(1, max_iterations + 1):
        iterations = iteration
        log_m = np.zeros(len(patterns))
        for k in range(len(active)):
            col = patterns[:, k]
            present = col != NULL_LEVEL
            log_m[present] += np.log(m[k][col[present]])
        log_odds = np.log(rate) - np.log1p(-rate) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        expected = weights * posterior
        change = 0.0
        for k in range(len(active)):
            col = patterns[:, k]
            present = col != NULL_LEVEL
            totals = np.bincount(col[present], weights=expected[present], minlength=len(m[k]))
            if totals.sum() <= 0:
                continue
            new = np.maximum(totals / totals.sum(), _M_FLOOR)
            new /= new.sum()
            change = max(change, float(np.max(np.abs(new - m[k]))))
            m[k] = new
        new_rate = float(np.clip(expected.sum() / weights.sum(), 1e-9, 1 - 1e-9))
        change = max(change, abs(new_rate - rate))
        rate = new_rate
        if change < tolerance:
            break
    # A field empty in every pair learnt nothing; its m must come from elsewhere.
    learnt = {f: m[k] for k, f in enumerate(active) if has_data[k]}
    return SessionResult(learnt, rate, iterations)
