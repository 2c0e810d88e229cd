"""Predictions (issue #15): customer lifetime value with BG/NBD (Fader,
Hardie & Lee 2005) on a calendar-month clock (a purchase rate per month,
docs/adr/0235) + Gamma-Gamma (Fader, Hardie & Lee 2005b), and churn risk
with a calibrated scikit-learn classifier trained on a time-based split.

Pure numerics over each customer's order list (time, value); the service
layer loads the lists and stores the outputs with the model version.
Times are in days here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

DAY = 86_400.0
Orders = Sequence[tuple[float, float]]  # (epoch seconds, value), oldest first


@dataclass(frozen=True, slots=True)
class Summary:
    """Per-customer RFM summary at a cutoff, in days (lifetimes' convention:
    repeat purchases on distinct days; t_x, T from the first purchase)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray  # mean value of repeat purchases (0 when x == 0)


def summarise(
    orders_by_customer: Sequence[Orders], cutoff: float, unit_days: float = 1.0
) -> Summary:
    xs: list[float] = []
    txs: list[float] = []
    Ts: list[float] = []
    ms: list[float] = []
    for orders in orders_by_customer:
        days: dict[int, float] = {}
        for at, v in orders:
            if at <= cutoff:
                d = int(at // DAY)
                days[d] = days.get(d, 0.0) + v
        if not days:
            for col in (xs, txs, Ts, ms):
                col.append(0.0)
            continue
        ds = sorted(days)
        first = ds[0]
        x = len(ds) - 1
        xs.append(float(x))
        txs.append((ds[-1] - first) / unit_days)
        Ts.append((cutoff / DAY - first) / unit_days)
        ms.append(float(np.mean([days[d] for d in ds[1:]])) if x else 0.0)
    return Summary(np.array(xs), np.array(txs), np.array(Ts), np.array(ms))


# -- BG/NBD with a share that never drops out -------------------------------------
def _bgnbd_parts(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihoods under BG/NBD and under the plain NBD
    (the same purchase process, never dropping out)."""
    r, alpha, a, b = np.exp(params[:4])
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4), a1 + a3


def _bgnbd_ll(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float = 0.0
) -> float:
    """Negative log-likelihood; ``penalizer`` adds lifetimes' L2 term on
    (r, alpha, a, b) in rescaled time (its ``penalizer_coef``, which it adds
    to the mean: here times the number of customers)."""
    bg, nbd = _bgnbd_parts(params, x, t_x, T)
    pen = penalizer * len(x) * float(np.sum(np.exp(params[:4]) ** 2)) if penalizer else 0.0
    if len(params) == 4:
        return float(-bg.sum()) + pen
    pi = special.expit(params[4])
    return float(-np.logaddexp(np.log(pi) + nbd, np.log1p(-pi) + bg).sum()) + pen


@dataclass(frozen=True, slots=True)
class BGNBD:
    """BG/NBD (Fader, Hardie & Lee 2005), optionally mixed with a share
    ``pi`` of customers who never drop out (``pi`` = 0: the plain model).

    The plain model makes every customer's dropout chance after a purchase a
    Beta draw; on CDNOW it drops too many customers when calibrated on a few
    months, and under-forecasts the year after. A never-dropout share, fitted
    by the same maximum likelihood on the calibration data only, gives the
    long-lived customers their own tail (docs/adr/0131-churn-and-clv-models.md)."""

    r: float
    alpha: float
    a: float
    b: float
    pi: float = 0.0

    @classmethod
    def fit(cls, s: Summary, *, mixture: bool = True, penalizer: float = 0.0) -> BGNBD:
        """Maximum likelihood (``penalizer`` > 0: lifetimes' L2-penalized fit,
        a prior towards small a, b, i.e. a U-shaped dropout distribution)."""
        keep = s.T > 0
        x, t_x, T = s.x[keep], s.t_x[keep], s.T[keep]
        scale = 10.0 / max(float(T.max()), 1e-9)  # lifetimes rescales time too
        args = (x, t_x * scale, T * scale, penalizer)
        # Several bounded starts: the plain likelihood has a ridge towards
        # a, b -> infinity (no dropout) that traps a single start.
        starts = [np.log([0.25, 0.3, 0.7, 2.0]), np.log([1.0, 5.0, 1.0, 1.0]), np.zeros(4)]
        best = None
        for start in starts:
            res = optimize.minimize(
                _bgnbd_ll, start, args=args, method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 4
            )
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        if mixture:
            plain = best
            for logit in (-4.0, -2.0, 0.0):
                res = optimize.minimize(
                    _bgnbd_ll,
                    np.r_[plain.x, logit],
                    args=args,
                    method="L-BFGS-B",
                    bounds=[(-8.0, 8.0)] * 4 + [(-12.0, 12.0)],
                )
                if res.fun < best.fun:
                    best = res
        r, alpha, a, b = np.exp(best.x[:4])
        pi = float(special.expit(best.x[4])) if len(best.x) == 5 else 0.0
        return cls(float(r), float(alpha / scale), float(a), float(b), pi)

    def _weights(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Posterior share of each customer in the never-dropout group."""
        if self.pi <= 0:
            return np.zeros_like(x)
        params = np.log([self.r, self.alpha, self.a, self.b])
        bg, nbd = _bgnbd_parts(params, x, t_x, T)
        return np.asarray(special.expit(np.log(self.pi) - np.log1p(-self.pi) + nbd - bg))

    def expected(self, t: float, x: Any, t_x: Any, T: Any) -> np.ndarray:
        """Expected purchases in the next ``t`` for customers (x, t_x, T)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T = np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        first = (a + b + x - 1) / (a - 1)
        second = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        third = 1 + (x > 0) * (a / (b + x - 1 + (x == 0))) * ((alpha + T) / (alpha + t_x)) ** (
            r + x
        )
        bg = first * second / third
        w = self._weights(x, t_x, T)
        # Never dropping out: the Gamma-Poisson posterior rate times t.
        return np.asarray(w * (r + x) / (alpha + T) * t + (1 - w) * bg)

    def p_alive(self, x: Any, t_x: Any, T: Any) -> np.ndarray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T = np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)
        d = (x > 0) * (a / (b + x - 1 + (x == 0))) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        w = self._weights(x, t_x, T)
        return np.asarray(w + (1 - w) / (1.0 + d))


# -- BG/NBD on a calendar-month clock ------------------------------------------------
#: Calendar months (the most recent ones) that get their own purchase rate;
#: earlier days share one, so a long history does not add a parameter a month.
SEASON_MONTHS = 24


def _months(days: np.ndarray) -> np.ndarray:
    """Calendar month (months since 1970-01, UTC) of each epoch day."""
    return np.asarray(
        np.floor(days).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    )


#: A customer's first days, in which he may buy at his own pace (the new
#: customer's rate, fitted, kept when BIC prefers it; docs/adr/0235).
NEW_CUSTOMER_DAYS = 60


@dataclass(frozen=True, slots=True)
class PurchaseSeason:
    """How fast customers buy in each calendar month of the calibration span,
    relative to the span's mean day (rates average 1 over its days), and how
    much faster (or slower) in their first ``NEW_CUSTOMER_DAYS`` days.

    The BG/NBD then runs on an operational clock that ticks at that rate: a
    customer silent through a slow month has used less of his time than the
    calendar says, so a summer lull right before the cut is not read as
    dropout (docs/adr/0235-clv-bgnbd-on-a-calendar-month-clock.md). The
    new-customer rate keeps a cohort's first weeks from passing for a busy
    season. After the cut the clock ticks at 1: the calibration data know no
    month ahead, so each is an average month."""

    first_day: int  # epoch day where the clock starts (first purchase day in the data)
    end_day: float  # the cutoff, in days
    #: Rate of each day from first_day to the cutoff's day (inclusive).
    day_rates: np.ndarray
    months: tuple[int, ...]  # calendar months with their own rate, oldest first
    rates: tuple[float, ...]  # their rates (the first also covers any earlier day)
    new_customer_rate: float = 1.0  # times the month's rate, first NEW_CUSTOMER_DAYS days

    def clock(self, days: Any) -> np.ndarray:
        """Calendar operational time from first_day to each epoch day (in days)."""
        d = np.asarray(days, float)
        grid = self.first_day + np.arange(len(self.day_rates) + 1)
        cum = np.r_[0.0, np.cumsum(self.day_rates)]
        inside = np.interp(np.minimum(d, self.end_day), grid, cum)
        return np.asarray(inside + np.maximum(d - self.end_day, 0.0))

    def elapsed(self, first: Any, days: Any) -> np.ndarray:
        """A customer's operational time from his first purchase day to ``days``."""
        first, days = np.asarray(first, float), np.asarray(days, float)
        c0, young = self.clock(first), self.clock(np.minimum(days, first + NEW_CUSTOMER_DAYS))
        return np.asarray(self.clock(days) - c0 + (self.new_customer_rate - 1) * (young - c0))

    def warp(self, s: Summary) -> Summary:
        """The summary (at this season's cutoff) on the operational clock."""
        first = self.end_day - s.T
        return Summary(
            s.x, self.elapsed(first, first + s.t_x), self.elapsed(first, self.end_day), s.m
        )


def _seasonal_ll(
    params: np.ndarray,
    n_bg: int,
    young: bool,
    ref: int,
    x: np.ndarray,
    f_idx: np.ndarray,
    l_idx: np.ndarray,
    day_seg: np.ndarray,
    last_frac: float,
    repeats: np.ndarray,
    young_repeats: float,
    scale: float,
) -> float:
    """Negative log-likelihood of BG/NBD in operational time plus the
    clock's density at each repeat purchase (sum of log rates). ``params``:
    the BG/NBD's (``n_bg``), the log month rates but ``ref``'s, and the log
    new-customer rate if ``young``."""
    theta = np.insert(params[n_bg : len(params) - young], ref, 0.0)
    gamma = float(params[-1]) if young else 0.0
    rate = np.exp(theta)[day_seg]
    rate[-1] *= last_frac
    cum = np.r_[0.0, np.cumsum(rate)]
    c0 = cum[f_idx]

    def elapsed(idx: np.ndarray) -> np.ndarray:
        if not young:
            return np.asarray(cum[idx] - c0)
        mid = cum[np.minimum(idx, f_idx + NEW_CUSTOMER_DAYS)]
        return np.asarray(math.exp(gamma) * (mid - c0) + cum[idx] - mid)

    t_x = elapsed(l_idx) * scale
    T = elapsed(np.full_like(f_idx, len(cum) - 1)) * scale
    return _bgnbd_ll(params[:n_bg], x, t_x, T) - float(repeats @ theta) - gamma * young_repeats


def fit_seasonal_bgnbd(
    orders_by_customer: Sequence[Orders], cutoff: float, *, mixture: bool | None = None
) -> tuple[BGNBD, PurchaseSeason]:
    """BG/NBD with a purchase rate per calendar month and a new customer's
    rate, fitted jointly by maximum likelihood on the orders before
    ``cutoff`` (days as in :func:`summarise`). The new-customer rate and
    (``mixture`` None) the never-dropout share are kept only when BIC
    prefers them (one parameter each against ln(customers) / 2)."""
    s = summarise(orders_by_customer, cutoff)
    end = cutoff / DAY
    keep = s.T > 0
    x, t_x, T = s.x[keep], s.t_x[keep], s.T[keep]
    first = np.rint(end - T).astype(np.int64)
    d0, d_end = int(first.min()), math.floor(end)
    grid = np.arange(d0, d_end + 1)
    month = _months(grid.astype(float))
    own = np.unique(month)[-SEASON_MONTHS:]
    day_seg = np.searchsorted(own, np.maximum(month, own[0]))
    repeat_days: list[int] = []
    young_repeats = 0.0
    for o in orders_by_customer:
        ds = sorted({int(at // DAY) for at, _ in o if at <= cutoff})
        repeat_days.extend(ds[1:])
        young_repeats += sum(1 for d in ds[1:] if d - ds[0] < NEW_CUSTOMER_DAYS)
    seg_of = day_seg[np.asarray(repeat_days, np.int64) - d0] if repeat_days else np.zeros(0, int)
    repeats = np.bincount(seg_of, minlength=len(own)).astype(float)
    ref = int(np.argmax(repeats))
    f_idx = first - d0
    l_idx = np.rint(end - T + t_x).astype(np.int64) - d0
    last_frac = end - d_end
    scale = 10.0 / max(float(T.max()), 1e-9)
    bic = 0.5 * math.log(len(x))
    plain = BGNBD.fit(s, mixture=False)
    data = (ref, x, f_idx, l_idx, day_seg, last_frac, repeats, young_repeats, scale)
    months_b = [(-5.0, 5.0)] * (len(own) - 1)

    def fit(start: np.ndarray, n_bg: int, young: bool) -> Any:
        bounds = [(-8.0, 8.0)] * 4 + [(-12.0, 12.0)] * (n_bg - 4) + months_b
        return optimize.minimize(
            _seasonal_ll,
            start,
            args=(n_bg, young, *data),
            method="L-BFGS-B",
            bounds=bounds + [(-3.0, 3.0)] * young,
        )

    start = np.log([plain.r, plain.alpha * scale, plain.a, plain.b])
    best, n_bg, young = fit(np.r_[start, np.zeros(len(own) - 1)], 4, False), 4, False
    res = fit(np.r_[best.x, 0.0], 4, True)
    if best.fun - res.fun > bic:
        best, young = res, True
    if mixture is not False:
        mixed = fit(np.r_[best.x[:4], -2.0, best.x[4:]], 5, young)
        if mixture or best.fun - mixed.fun > bic:
            best, n_bg = mixed, 5
    theta = np.insert(best.x[n_bg : len(best.x) - young], ref, 0.0)
    day_rates = np.exp(theta)[day_seg]
    # Normalise to the mean calibration day (the last one counts its covered part).
    weights = np.ones(len(grid))
    weights[-1] = last_frac
    mean = float(day_rates @ weights / weights.sum())
    r, alpha, a, b = np.exp(best.x[:4])
    pi = float(special.expit(best.x[4])) if n_bg == 5 else 0.0
    season = PurchaseSeason(
        d0,
        end,
        day_rates / mean,
        tuple(int(m) for m in own),
        tuple(float(v) for v in np.exp(theta) / mean),
        float(np.exp(best.x[-1])) if young else 1.0,
    )
    return BGNBD(float(r), float(alpha / scale / mean), float(a), float(b), pi), season


# -- Gamma-Gamma -------------------------------------------------------------------
def _gg_ll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
    p, q, v = np.exp(params)
    ll = (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )
    return float(-ll.sum())


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    v: float
    population_mean: float

    @classmethod
    def fit(cls, s: Summary) -> GammaGamma:
        keep = (s.x > 0) & (s.m > 0)
        x, m = s.x[keep], s.m[keep]
        if len(x) < 3:
            mean = float(m.mean()) if len(m) else 0.0
            return cls(1.0, 2.0, mean, mean)
        res = optimize.minimize(
            _gg_ll,
            np.log([1.0, 1.0, 1.0]),
            args=(x, m),
            method="Nelder-Mead",
            options={"maxiter": 4000},
        )
        p, q, v = np.exp(res.x)
        pm = float(p * v / (q - 1)) if q > 1 else float(m.mean())
        return cls(float(p), float(q), float(v), pm)

    def expected_value(self, x: Any, m: Any) -> np.ndarray:
        x, m = np.asarray(x, float), np.asarray(m, float)
        if self.q <= 1:
            return np.where(x > 0, m, self.population_mean)
        return np.asarray((self.p * (self.v + x * m)) / (self.p * x + self.q - 1))


@dataclass(frozen=True, slots=True)
class CLVModel:
    """BG/NBD + Gamma-Gamma. ``season``: the BG/NBD runs on a calendar-month
    clock (:func:`fit_seasonal_bgnbd`, the served model, docs/adr/0235).
    ``correction`` is an optional backtest ratio (fit_clv's backtest_days):
    the model refitted on an earlier cut of the calibration data is compared
    with what happened in the rest of it. The CDNOW bench shows it does not
    help reliably, so the service leaves it off
    (docs/adr/0095-customer-intelligence.md)."""

    bgnbd: BGNBD
    gg: GammaGamma
    correction: float = 1.0
    #: The backtest's choice of BG/NBD variant (fit_clv(choose=True)).
    choice: ClvChoice | None = None
    season: PurchaseSeason | None = None

    def _clocked(self, s: Summary) -> Summary:
        return self.season.warp(s) if self.season is not None else s

    def purchases(self, t_days: float, s: Summary) -> np.ndarray:
        """Expected purchases in the ``t_days`` after the cutoff ``s`` was taken at."""
        w = self._clocked(s)
        return self.bgnbd.expected(t_days, w.x, w.t_x, w.T) * self.correction

    def p_alive(self, s: Summary) -> np.ndarray:
        w = self._clocked(s)
        return self.bgnbd.p_alive(w.x, w.t_x, w.T)

    def value(self, t_days: float, s: Summary) -> np.ndarray:
        return np.asarray(self.purchases(t_days, s) * self.gg.expected_value(s.x, s.m))


def fit_clv(
    orders: Sequence[Orders],
    cutoff: float,
    *,
    backtest_days: float = 0.0,
    mixture: bool | None = None,
    penalizer: float = 0.0,
    choose: bool = False,
    seasonal: bool = True,
) -> CLVModel:
    """The served model: BG/NBD on a calendar-month clock
    (:func:`fit_seasonal_bgnbd`; ``mixture`` None lets BIC keep or drop the
    never-dropout share) + Gamma-Gamma. ``seasonal`` False: the calendar
    clock of earlier versions (``mixture`` None then means True, ADR 0131).
    ``penalizer`` and ``choose`` are the experiments of ADR 0180/0200 and
    imply ``seasonal`` False. ``choose``: the BG/NBD variant is the one
    :func:`choose_clv` picks on a backtest inside the data before ``cutoff``
    (``mixture`` and ``penalizer`` are then ignored)."""
    choice = None
    if choose:
        choice = choose_clv(orders, cutoff)
        mixture, penalizer = choice.candidate.mixture, choice.candidate.penalizer
    s = summarise(orders, cutoff)
    gg = GammaGamma.fit(s)
    season = None
    if seasonal and not choose and not penalizer and _enough_for_season(s, cutoff):
        bg, season = fit_seasonal_bgnbd(orders, cutoff, mixture=mixture)
    else:
        bg = BGNBD.fit(s, mixture=mixture is not False, penalizer=penalizer)
    corr = 1.0
    if backtest_days > 0:
        early = cutoff - backtest_days * DAY
        se = summarise(orders, early)
        known = se.T > 0
        if known.sum() >= 20:
            bge = BGNBD.fit(se, mixture=mixture is not False, penalizer=penalizer)
            pred = float(bge.expected(backtest_days, se.x[known], se.t_x[known], se.T[known]).sum())
            actual = 0.0
            for o, k in zip(orders, known, strict=True):
                if k:
                    actual += len({int(at // DAY) for at, _ in o if early < at <= cutoff})
            if pred > 0 and actual > 0:
                corr = float(np.clip(actual / pred, 0.5, 2.0))
    return CLVModel(bg, gg, corr, choice, season)


def _enough_for_season(s: Summary, cutoff: float) -> bool:
    """A month's rate needs a span of two months or more (with one there is
    nothing to compare) and some repeat purchases to learn from."""
    known = s.T > 0
    if known.sum() < 20 or s.x[known].sum() < 20:
        return False
    start = cutoff / DAY - float(s.T[known].max())
    return len(np.unique(_months(np.array([start, cutoff / DAY])))) > 1


@dataclass(frozen=True, slots=True)
class ClvCandidate:
    """One BG/NBD variant the backtest can choose (docs/adr/0200)."""

    name: str
    mixture: bool = False
    penalizer: float = 0.0


#: The variants :func:`choose_clv` compares: the plain maximum-likelihood
#: BG/NBD, the never-dropout mixture (ADR 0131), and lifetimes' L2 penalty
#: at three strengths (a prior towards a U-shaped dropout distribution; with
#: it the mixture's share fits to ~0, so the two are not combined).
CLV_CANDIDATES = (
    ClvCandidate("bgnbd"),
    ClvCandidate("bgnbd+never-dropout", mixture=True),
    ClvCandidate("bgnbd-l2-0.0003", penalizer=3e-4),
    ClvCandidate("bgnbd-l2-0.001", penalizer=1e-3),
    ClvCandidate("bgnbd-l2-0.003", penalizer=3e-3),
)


@dataclass(frozen=True, slots=True)
class ClvChoice:
    candidate: ClvCandidate
    validation_days: float
    #: Per candidate: validation purchases RMSE and total error.
    scores: dict[str, dict[str, float]]


def choose_clv(
    orders: Sequence[Orders],
    cutoff: float,
    candidates: Sequence[ClvCandidate] = CLV_CANDIDATES,
    *,
    validation_fraction: float = 1 / 3,
    rmse_slack: float = 0.01,
) -> ClvChoice:
    """Chooses a BG/NBD variant on the data before ``cutoff`` only: each
    candidate is fitted on all but the last ``validation_fraction`` of the
    observed span and forecasts that last part (purchases on distinct days,
    customers known at the split). Eligible: validation RMSE within
    ``rmse_slack`` of the best; chosen among them: the smallest absolute
    error of the validation total (RMSE first because it is per customer;
    the total breaks near-ties, where the variants differ most)."""
    known = [o for o in orders if o and o[0][0] <= cutoff]
    if not known or len(candidates) == 1:
        return ClvChoice(candidates[0], 0.0, {})
    start = min(o[0][0] for o in known)
    v_days = max(7.0, round((cutoff - start) / DAY * validation_fraction))
    split = cutoff - v_days * DAY
    fit_on = [o for o in known if o[0][0] <= split]
    if len(fit_on) < 20:
        return ClvChoice(candidates[0], 0.0, {})
    s = summarise(fit_on, split)
    actual = np.array(
        [len({int(at // DAY) for at, _ in o if split < at <= cutoff}) for o in fit_on], float
    )
    scores: dict[str, dict[str, float]] = {}
    for c in candidates:
        bg = BGNBD.fit(s, mixture=c.mixture, penalizer=c.penalizer)
        pred = bg.expected(v_days, s.x, s.t_x, s.T)
        scores[c.name] = {
            "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
            "total_error": float(pred.sum() / max(actual.sum(), 1e-9) - 1),
        }
    best_rmse = min(v["rmse"] for v in scores.values())
    eligible = [c for c in candidates if scores[c.name]["rmse"] <= best_rmse * (1 + rmse_slack)]
    chosen = min(eligible, key=lambda c: abs(scores[c.name]["total_error"]))
    return ClvChoice(chosen, v_days, scores)


# -- churn ---------------------------------------------------------------------------
#: Behavioural features per customer at a cutoff, from purchases on distinct
#: days (lifetimes' convention). Recency stays first and raw: the bench's
#: recency-only baseline reads column 0.
FEATURES = (
    "recency_days",
    "purchase_days",
    "mean_day_value",
    "mean_gap_days",
    "max_gap_days",
    "recency_over_mean_gap",
    "recency_over_tenure",
    "orders_90d",
)
#: Columns on a log scale (counts and durations with long right tails).
_LOG_COLS = (0, 1, 2, 3, 4, 5, 7)


def churn_features(orders: Sequence[Orders], cutoff: float) -> np.ndarray:
    """One row of :data:`FEATURES` per customer. Customer age on its own is
    left out: every customer of a cohort is older at the serving cut than
    any seen in training. Ratios (how overdue the next purchase is for this
    customer's own rhythm) carry it instead and mean the same at any age."""
    rows = []
    cut_day = cutoff / DAY
    for o in orders:
        days: dict[int, float] = {}
        for at, v in o:
            if at <= cutoff:
                d = int(at // DAY)
                days[d] = days.get(d, 0.0) + v
        if not days:
            rows.append([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
            continue
        ds = sorted(days)
        recency = cut_day - ds[-1]
        tenure = cut_day - ds[0]
        gaps = np.diff(ds) if len(ds) > 1 else np.array([tenure])
        rows.append(
            [
                recency,
                float(len(ds)),
                sum(days.values()) / len(ds),
                float(gaps.mean()),
                float(gaps.max()),
                recency / (float(gaps.mean()) + 1.0),
                recency / (tenure + 1.0),
                float(sum(1 for d in ds if d > cut_day - 90)),
            ]
        )
    return np.array(rows, dtype=float).reshape(-1, len(FEATURES))


def churn_labels(orders: Sequence[Orders], cutoff: float, horizon_days: float) -> np.ndarray:
    end = cutoff + horizon_days * DAY
    return np.array([0 if any(cutoff < at <= end for at, _ in o) else 1 for o in orders])


def _log_some(X: np.ndarray) -> np.ndarray:
    X = np.array(X, dtype=float, copy=True)
    X[:, _LOG_COLS] = np.log1p(np.maximum(X[:, _LOG_COLS], 0.0))
    return X


def churn_pipeline() -> Any:
    """Logistic regression on log-scaled, standardised features. Trees were
    tried (docs/adr/0131-churn-and-clv-models.md): they cannot
    extrapolate past the recencies seen at the training cut, and on CDNOW's
    time-based holdout a booster lost to recency alone."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(
        FunctionTransformer(_log_some),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000),
    )


@dataclass
class ChurnModel:
    model: Any
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X)[:, 1])


def train_churn(
    orders: Sequence[Orders], now: float, horizon_days: float, *, min_class: int = 10
) -> ChurnModel | None:
    from threadpoolctl import threadpool_limits

    # One thread for native pools: seconds of work must not spin every core
    # of a shared machine.
    with threadpool_limits(1):
        return _train_churn(orders, now, horizon_days, min_class)


def _train_churn(
    orders: Sequence[Orders], now: float, horizon_days: float, min_class: int
) -> ChurnModel | None:
    """Train at now - 2h (labels up to now - h), evaluate on the time-based
    holdout at now - h (labels up to now) beside recency alone, refit at
    now - h for serving."""
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    h = horizon_days * DAY

    def dataset(cut: float) -> tuple[np.ndarray, np.ndarray]:
        active = [o for o in orders if o and o[0][0] <= cut]
        if not active:
            return np.zeros((0, len(FEATURES))), np.zeros(0)
        return churn_features(active, cut), churn_labels(active, cut, horizon_days)

    def enough(y: np.ndarray) -> bool:
        return min(int(y.sum()), int(len(y) - y.sum())) >= min_class

    Xtr, ytr = dataset(now - 2 * h)
    Xte, yte = dataset(now - h)
    if not enough(ytr):
        return None
    clf = churn_pipeline().fit(Xtr, ytr)
    metrics: dict[str, Any] = {
        "model": "logistic regression on log-scaled RFM and inter-purchase features",
        "features": list(FEATURES),
        "train_customers": len(ytr),
        "holdout_customers": len(yte),
    }
    if len(set(yte.tolist())) == 2:
        p = clf.predict_proba(Xte)[:, 1]
        # The baseline: the same training cut, recency only.
        base = LogisticRegression().fit(Xtr[:, :1], ytr).predict_proba(Xte[:, :1])[:, 1]
        frac, mean = calibration_curve(yte, p, n_bins=10, strategy="quantile")
        metrics.update(
            auc=float(roc_auc_score(yte, p)),
            brier=float(brier_score_loss(yte, p)),
            recency_auc=float(roc_auc_score(yte, base)),
            recency_brier=float(brier_score_loss(yte, base)),
            reliability=[[float(a), float(b)] for a, b in zip(mean, frac, strict=True)],
        )
    final = churn_pipeline().fit(Xte, yte) if enough(yte) else clf
    return ChurnModel(final, metrics)


def finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def by_customer(rows: Mapping[str, Orders]) -> tuple[list[str], list[Orders]]:
    ids = sorted(rows)
    return ids, [rows[c] for c in ids]
