"""A/B/n experiments over strategies: sticky assignment by hashing
(experiment, customer), exposures, conversions attributed within a window,
and the statistics: Wilson intervals per variant, a delta-method interval of
the relative uplift, the Beta-Binomial probability to beat control, and a
chi-square sample-ratio-mismatch check. Optional Thompson sampling."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
from scipy import stats

from cxloop_libs.stats import wilson_interval
from personalization.domain.interactions import Interaction, Kind
from personalization.domain.recommender import CONTEXT_KEYS, STRATEGIES

BUCKETS = 10_000
SRM_ALPHA = 0.001
Z95 = 1.959963984540054


class Metric(StrEnum):
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    REVENUE = "revenue"


CONVERTS: Mapping[Metric, frozenset[Kind]] = {
    Metric.CLICK: frozenset({Kind.CLICK, Kind.VIEW}),
    Metric.ADD_TO_CART: frozenset({Kind.ADD_TO_CART}),
    Metric.PURCHASE: frozenset({Kind.PURCHASE}),
    Metric.REVENUE: frozenset({Kind.PURCHASE}),
}


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Variant:
    variant_id: str
    strategy: str
    weight_percent: float
    control: bool = False
    blend: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    variants: tuple[Variant, ...]
    placement: str = ""
    metric: Metric = Metric.PURCHASE
    window_s: float = 7 * 86_400.0
    bandit: bool = False
    status: Status = Status.DRAFT
    created_at: float = 0.0
    started_at: float = 0.0
    stopped_at: float = 0.0

    def control(self) -> Variant:
        return next(v for v in self.variants if v.control)

    def with_status(self, status: Status, at: float) -> Experiment:
        if status is Status.RUNNING:
            return replace(self, status=status, started_at=at)
        return replace(self, status=status, stopped_at=at)


def validate(exp: Experiment) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with a new experiment."""
    errs: list[tuple[str, str]] = []
    if not exp.name.strip():
        errs.append(("experiment.name", "required"))
    if len(exp.variants) < 2:
        errs.append(("experiment.variants", "at least two variants (one control)"))
    ids = [v.variant_id for v in exp.variants]
    for n, v in enumerate(exp.variants):
        if not v.variant_id.strip():
            errs.append((f"experiment.variants[{n}].variant_id", "required"))
        if v.strategy not in STRATEGIES:
            errs.append(
                (
                    f"experiment.variants[{n}].strategy",
                    f"unknown strategy {v.strategy!r}; known: {', '.join(STRATEGIES)}",
                )
            )
        if not (0 <= v.weight_percent <= 100) or not math.isfinite(v.weight_percent):
            errs.append((f"experiment.variants[{n}].weight_percent", "must be within 0..100"))
        for k, w in v.blend.items():
            if not math.isfinite(w) or w < 0:
                errs.append((f"experiment.variants[{n}].blend[{k}]", "must be >= 0"))
    if len(set(ids)) != len(ids):
        errs.append(("experiment.variants.variant_id", "variant ids must be unique"))
    if sum(1 for v in exp.variants if v.control) != 1:
        errs.append(("experiment.variants.control", "exactly one variant must be the control"))
    total = sum(v.weight_percent for v in exp.variants)
    if exp.variants and not exp.bandit and abs(total - 100.0) > 1e-6:
        errs.append(
            ("experiment.variants.weight_percent", f"shares must sum to 100 (got {total:g})")
        )
    if exp.window_s <= 0:
        errs.append(("experiment.attribution_window_hours", "must be > 0"))
    return errs


def bucket(experiment_id: str, customer_id: str) -> int:
    digest = hashlib.sha256(f"{experiment_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(exp: Experiment, customer_id: str) -> Variant:
    """Deterministic and sticky: the same customer always gets the same variant."""
    b = bucket(exp.experiment_id, customer_id) / BUCKETS * 100.0
    acc = 0.0
    for v in exp.variants:
        acc += v.weight_percent
        if b < acc:
            return v
    return exp.variants[-1]


@dataclass
class Arm:
    exposed: dict[str, float] = field(default_factory=dict)  # customer -> first exposure
    converted: set[str] = field(default_factory=set)
    revenue: float = 0.0


class Tracker:
    """Exposures and attributed conversions of every experiment."""

    def __init__(self) -> None:
        self.arms: dict[str, dict[str, Arm]] = {}
        self.of_customer: dict[str, dict[str, str]] = {}  # customer -> exp -> variant

    def exposed(self, experiment_id: str, variant_id: str, customer_id: str, at: float) -> bool:
        known = self.of_customer.setdefault(customer_id, {})
        if experiment_id in known:
            return False
        known[experiment_id] = variant_id
        arm = self.arms.setdefault(experiment_id, {}).setdefault(variant_id, Arm())
        arm.exposed[customer_id] = at
        return True

    def converted(self, inter: Interaction, experiments: Mapping[str, Experiment]) -> int:
        """Attributes one interaction to the experiments the customer is in."""
        n = 0
        for exp_id, variant_id in self.of_customer.get(inter.customer_id, {}).items():
            exp = experiments.get(exp_id)
            if exp is None or inter.kind not in CONVERTS[exp.metric]:
                continue
            arm = self.arms[exp_id][variant_id]
            first = arm.exposed.get(inter.customer_id)
            if first is None or not (first <= inter.at <= first + exp.window_s):
                continue
            if exp.metric in (Metric.REVENUE, Metric.PURCHASE):
                arm.revenue += inter.revenue
            if inter.customer_id not in arm.converted:
                arm.converted.add(inter.customer_id)
                n += 1
        return n

    def forget(self, customer_id: str) -> None:
        for exp_id, variant_id in self.of_customer.pop(customer_id, {}).items():
            arm = self.arms.get(exp_id, {}).get(variant_id)
            if arm is not None:
                arm.exposed.pop(customer_id, None)
                arm.converted.discard(customer_id)

    def counts(self, experiment_id: str) -> dict[str, tuple[int, int, float]]:
        return {
            v: (len(a.exposed), len(a.converted), a.revenue)
            for v, a in self.arms.get(experiment_id, {}).items()
        }


@dataclass(frozen=True)
class VariantStats:
    variant_id: str
    control: bool
    exposures: int
    conversions: int
    rate: float
    rate_ci: tuple[float, float]
    uplift: float
    uplift_ci: tuple[float, float]
    p_beat_control: float
    revenue: float
    revenue_per_exposure: float
    expected_share: float


@dataclass(frozen=True)
class Results:
    experiment: Experiment
    variants: tuple[VariantStats, ...]
    srm_p_value: float
    srm: bool
    winner: str


def wilson(c: int, n: int) -> tuple[float, float]:
    return wilson_interval(c, n, Z95)


def uplift_interval(c1: int, n1: int, c0: int, n0: int) -> tuple[float, float, float]:
    """Relative uplift p1/p0 - 1 and its 95% interval (delta method on the log
    of the ratio; a 0.5 correction when a count is 0)."""
    if n0 == 0 or n1 == 0:
        return (0.0, -math.inf, math.inf)
    a, b = c1 + (0.5 if c1 == 0 or c0 == 0 else 0.0), c0 + (0.5 if c1 == 0 or c0 == 0 else 0.0)
    m1, m0 = n1 + (1.0 if a != c1 else 0.0), n0 + (1.0 if b != c0 else 0.0)
    p1, p0 = a / m1, b / m0
    se = math.sqrt((1 - p1) / (m1 * p1) + (1 - p0) / (m0 * p0))
    log_r = math.log(p1 / p0)
    return (
        (c1 / n1) / (c0 / n0) - 1 if c0 else 0.0,
        math.exp(log_r - Z95 * se) - 1,
        math.exp(log_r + Z95 * se) - 1,
    )


def probability_to_beat(
    c1: int, n1: int, c0: int, n0: int, *, draws: int = 20_000, seed: int = 11
) -> float:
    rng = np.random.default_rng(seed)
    x1 = rng.beta(1 + c1, 1 + n1 - c1, draws)
    x0 = rng.beta(1 + c0, 1 + n0 - c0, draws)
    return float((x1 > x0).mean())


def srm_test(observed: Sequence[int], shares: Sequence[float]) -> float:
    """p-value of a chi-square goodness-of-fit test of exposures vs plan."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return 1.0
    s = np.asarray(shares, dtype=float)
    if s.sum() <= 0:
        return 1.0
    expected = s / s.sum() * total
    if (expected <= 0).any():
        return 0.0 if any(o > 0 for o, e in zip(observed, expected, strict=True) if e <= 0) else 1.0
    return float(stats.chisquare(np.asarray(observed, dtype=float), expected).pvalue)


def results(exp: Experiment, tracker: Tracker) -> Results:
    counts = tracker.counts(exp.experiment_id)
    ctrl = exp.control()
    n0, c0, _ = counts.get(ctrl.variant_id, (0, 0, 0.0))
    out = []
    for v in exp.variants:
        n, c, rev = counts.get(v.variant_id, (0, 0, 0.0))
        if v.control:
            up, lo, hi, p = 0.0, 0.0, 0.0, 0.0
        else:
            up, lo, hi = uplift_interval(c, n, c0, n0)
            p = probability_to_beat(c, n, c0, n0)
        out.append(
            VariantStats(
                v.variant_id,
                v.control,
                n,
                c,
                c / n if n else 0.0,
                wilson(c, n),
                up,
                (lo, hi),
                p,
                rev,
                rev / n if n else 0.0,
                v.weight_percent,
            )
        )
    observed = [s.exposures for s in out]
    p_srm = 1.0 if exp.bandit else srm_test(observed, [v.weight_percent for v in exp.variants])
    srm = p_srm < SRM_ALPHA
    winner = ""
    if not srm:
        best = [s for s in out if not s.control and s.p_beat_control >= 0.95 and s.uplift_ci[0] > 0]
        if best:
            winner = max(best, key=lambda s: s.p_beat_control).variant_id
    return Results(exp, tuple(out), p_srm, srm, winner)


def thompson(exp: Experiment, tracker: Tracker, rng: np.random.Generator) -> Variant:
    """Bandit: draw each arm's rate from its Beta posterior, take the best."""
    counts = tracker.counts(exp.experiment_id)
    best, best_draw = exp.variants[0], -1.0
    for v in exp.variants:
        n, c, _ = counts.get(v.variant_id, (0, 0, 0.0))
        draw = float(rng.beta(1 + c, 1 + n - c))
        if draw > best_draw:
            best, best_draw = v, draw
    return best


def check_context(context: Mapping[str, str]) -> list[tuple[str, str]]:
    """(field, message) for unknown or malformed request context keys."""
    errs = []
    for k, v in context.items():
        if k not in CONTEXT_KEYS:
            errs.append((f"context.{k}", f"unknown key; known: {', '.join(sorted(CONTEXT_KEYS))}"))
            continue
        if k in ("hour", "weekday"):
            hi = 23 if k == "hour" else 6
            if not v.isdigit() or not 0 <= int(v) <= hi:
                errs.append((f"context.{k}", f"must be an integer 0..{hi}"))
        if k in ("price_min", "price_max"):
            try:
                f = float(v)
            except ValueError:
                f = math.nan
            if not math.isfinite(f) or f < 0:
                errs.append((f"context.{k}", "must be a number >= 0"))
    return errs
