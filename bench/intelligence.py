"""Customer intelligence benchmark (issue #15): CLV on CDNOW beside the
`lifetimes` library in the same run, churn on CDNOW beside a recency-only
baseline, and trait + segment evaluation throughput with PostgreSQL.

    .venv/bin/python -m bench.run intelligence
    CXLOOP_BENCH_INTEL_PARTS=clv,churn   only some parts (clv, churn, segments)
    CXLOOP_BENCH_INTEL_CUSTOMERS=1000000 customers for the segments part
    CXLOOP_BENCH_INTEL_WARM=1 (or 0)     segments part warm only (or cold only); default both
    CXLOOP_BENCH_INTEL_PROFILE=1         segments part with the handler's cProfile
    CXLOOP_BENCH_INTEL_CLV_BACKTEST=1    CLV part with the backtest choice of a variant
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "intelligence.json"
DAY = 86_400.0
LIFETIMES_PENALIZERS = (0.0, 0.001)
# CXLOOP_BENCH_INTEL_CLV_BACKTEST=1: also the BG/NBD variant a backtest
# inside the calibration data chooses per cut, and its holdout figures (ADR
# 0200: tried, not adopted; five extra fits per cut, so off by default).
BACKTEST = os.environ.get("CXLOOP_BENCH_INTEL_CLV_BACKTEST") == "1"
# The issue's cut first, then the others "checked too" (ADR 0200).
CUTS = [
    (cut, "1998-06-30")
    for cut in ("1997-09-30", "1997-12-31", "1997-06-30", "1997-08-31", "1997-11-30")
]


def _cdnow() -> Any:
    import lifetimes
    import pandas as pd

    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "value"],
        dtype={"customer_id": str, "date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


def _epoch(day: str) -> float:
    # End of the day, UTC: orders on the cut day belong to calibration.
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() + DAY - 1


def _orders(df: Any) -> tuple[list[str], list[list[tuple[float, float]]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for cid, d, v in zip(df["customer_id"], df["date"], df["value"], strict=True):
        out.setdefault(cid, []).append((d.timestamp() + 43_200, float(v)))
    ids = sorted(out)
    return ids, [sorted(out[c]) for c in ids]


def _metrics(pred_n: Any, act_n: Any, pred_v: Any, act_v: Any) -> dict[str, float]:
    pred_n, act_n, pred_v, act_v = (np.asarray(a, float) for a in (pred_n, act_n, pred_v, act_v))
    return {
        "purchases_rmse": round(float(np.sqrt(np.mean((pred_n - act_n) ** 2))), 4),
        "purchases_mae": round(float(np.mean(np.abs(pred_n - act_n))), 4),
        "spend_rmse": round(float(np.sqrt(np.mean((pred_v - act_v) ** 2))), 3),
        "spend_mae": round(float(np.mean(np.abs(pred_v - act_v))), 3),
        "predicted_total_purchases": round(float(pred_n.sum()), 1),
        "actual_total_purchases": round(float(act_n.sum()), 1),
        "total_purchases_error": round(float(pred_n.sum() / act_n.sum() - 1), 4),
        "total_spend_error": round(float(pred_v.sum() / act_v.sum() - 1), 4),
    }


def clv(df: Any) -> dict[str, Any]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data

    from personalization.domain import predictions as pr

    ids, orders = _orders(df)
    out = {}
    for cal, hold in CUTS:
        c, h = _epoch(cal), _epoch(hold)
        horizon = (h - c) / DAY
        first = np.array([o[0][0] for o in orders])
        keep = first <= c  # customers known at the cut (all of CDNOW's cohort)
        sel = [o for o, k in zip(orders, keep, strict=True) if k]
        # Actual holdout: purchases on distinct days and their spend.
        act_n = np.array([len({int(a // DAY) for a, _ in o if c < a <= h}) for o in sel])
        act_v = np.array([sum(v for a, v in o if c < a <= h) for o in sel])
        t0 = time.perf_counter()
        model = pr.fit_clv(sel, c)
        s = pr.summarise(sel, c)
        ours_n = model.purchases(horizon, s)
        # Spend: expected purchases x Gamma-Gamma expected value per purchase.
        ours_v = ours_n * model.gg.expected_value(s.x, s.m)
        ours_s = time.perf_counter() - t0
        # Ablations on the calendar clock (no purchase rate per month): the
        # model served before ADR 0235 (BG/NBD with a never-dropout share,
        # ADR 0131) and the plain BG/NBD.
        mixed = pr.fit_clv(sel, c, seasonal=False, mixture=True)
        mixed_n = mixed.purchases(horizon, s)
        mixed_v = mixed_n * mixed.gg.expected_value(s.x, s.m)
        plain = pr.fit_clv(sel, c, seasonal=False, mixture=False)
        plain_n = plain.purchases(horizon, s)
        plain_v = plain_n * plain.gg.expected_value(s.x, s.m)
        # The variant a backtest inside the calibration data would choose
        # (ADR 0200: tried, not adopted), and its holdout figures.
        choice = pr.choose_clv(sel, c) if BACKTEST else None
        if choice is not None:
            cand = choice.candidate
            chosen = (
                mixed
                if cand.mixture and not cand.penalizer
                else plain
                if not cand.penalizer
                else pr.fit_clv(sel, c, mixture=cand.mixture, penalizer=cand.penalizer)
            )
            ch_n = chosen.purchases(horizon, s)
            ch_v = ch_n * chosen.gg.expected_value(s.x, s.m)
        # The lifetimes library, same data, same cut, daily periods; its
        # maximum-likelihood fit (penalizer 0) and the small L2 penalizer
        # (0.001) that reproduces the issue's figure (RMSE 1.73, about -8 %).
        summ = calibration_and_holdout_data(
            df,
            "customer_id",
            "date",
            calibration_period_end=cal,
            observation_period_end=hold,
            freq="D",
            monetary_value_col="value",
        )
        lt: dict[float, tuple[Any, Any, Any, float]] = {}
        for pen in LIFETIMES_PENALIZERS:
            t0 = time.perf_counter()
            bgf = BetaGeoFitter(penalizer_coef=pen).fit(
                summ["frequency_cal"], summ["recency_cal"], summ["T_cal"]
            )
            lt_n = bgf.conditional_expected_number_of_purchases_up_to_time(
                summ["duration_holdout"], summ["frequency_cal"], summ["recency_cal"], summ["T_cal"]
            ).to_numpy()
            rep = summ[(summ["frequency_cal"] > 0) & (summ["monetary_value_cal"] > 0)]
            ggf = GammaGammaFitter(penalizer_coef=0.0).fit(
                rep["frequency_cal"], rep["monetary_value_cal"]
            )
            lt_m = ggf.conditional_expected_average_profit(
                summ["frequency_cal"], summ["monetary_value_cal"]
            ).to_numpy()
            lt[pen] = (bgf, lt_n, lt_n * lt_m, time.perf_counter() - t0)
        # lifetimes counts holdout purchases per distinct day too; align by id.
        lt_act_n = summ["frequency_holdout"].to_numpy()
        order = {cid: i for i, cid in enumerate(summ.index)}
        sel_ids = [cid for cid, k in zip(ids, keep, strict=True) if k]
        idx = np.array([order[cid] for cid in sel_ids])
        out[f"{cal}..{hold}"] = {
            "customers": len(sel),
            "ours": {
                **_metrics(ours_n, act_n, ours_v, act_v),
                "fit_s": round(ours_s, 2),
                "model": "bgnbd on a calendar-month clock (ADR 0235)",
                "bgnbd": {
                    k: round(getattr(model.bgnbd, k), 5) for k in ("r", "alpha", "a", "b", "pi")
                },
                # Purchase rate per calendar month, relative to the mean
                # calibration day (fitted on the calibration data only).
                "month_rates": (
                    {
                        str(np.datetime64(m, "M")): round(v, 3)
                        for m, v in zip(model.season.months, model.season.rates, strict=True)
                    }
                    if model.season is not None
                    else None
                ),
                # A customer's first 60 days, times the month's rate (1: BIC dropped it).
                "new_customer_rate": (
                    round(model.season.new_customer_rate, 3) if model.season is not None else None
                ),
            },
            **{
                ("lifetimes" if pen == 0 else f"lifetimes_penalizer_{pen:g}"): {
                    # Same actuals as ours (distinct days; spend summed over
                    # the holdout), checked equal to lifetimes' own counts.
                    **_metrics(lt_n[idx], act_n, lt_v[idx], act_v),
                    "penalizer_coef": pen,
                    "holdout_counts_match": bool((lt_act_n[idx] == act_n).all()),
                    "fit_s": round(lt_s, 2),
                    "bgnbd": {k: round(float(v), 5) for k, v in bgf.params_.items()},
                }
                for pen, (bgf, lt_n, lt_v, lt_s) in lt.items()
            },
            # What the holdout total would be under other counting rules:
            # calibration and holdout both count purchases on distinct days
            # (lifetimes' convention); CDNOW_master has several rows for
            # some customer-days.
            "holdout_counting": {
                "distinct_days": int(act_n.sum()),
                "transaction_rows": sum(sum(1 for a, _ in o if c < a <= h) for o in sel),
            },
            "ours_calendar_clock_never_dropout": {
                **_metrics(mixed_n, act_n, mixed_v, act_v),
                "bgnbd": {
                    k: round(getattr(mixed.bgnbd, k), 5) for k in ("r", "alpha", "a", "b", "pi")
                },
            },
            "ours_plain_bgnbd": {
                **_metrics(plain_n, act_n, plain_v, act_v),
                "bgnbd": {k: round(getattr(plain.bgnbd, k), 5) for k in ("r", "alpha", "a", "b")},
            },
        }
        if choice is not None:
            out[f"{cal}..{hold}"]["ours_backtest_choice"] = {
                "chosen": choice.candidate.name,
                "validation_days": choice.validation_days,
                "rule": "validation RMSE within 1 % of the best, then smallest |total error|",
                "validation": {
                    k: {m: round(x, 4) for m, x in v.items()} for k, v in choice.scores.items()
                },
                "holdout": _metrics(ch_n, act_n, ch_v, act_v),
            }
        print(
            cal,
            json.dumps(out[f"{cal}..{hold}"]["ours"]),
            json.dumps(out[f"{cal}..{hold}"]["lifetimes"]),
        )
    return out


def churn(df: Any) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from personalization.domain import predictions as pr

    _, orders = _orders(df)
    end = _epoch("1998-06-30")
    out: dict[str, Any] = {}
    # The issue's definition (6 months) and a second, shorter one, so the
    # model is not judged on one cut only.
    for horizon in (182.0, 91.0):
        m = pr.train_churn(orders, end, horizon)
        assert m is not None
        # Recency-only baseline: logistic regression on days since last order,
        # same train cut and same holdout.
        tr, te = end - 2 * horizon * DAY, end - horizon * DAY
        a = [o for o in orders if o[0][0] <= tr]
        b = [o for o in orders if o[0][0] <= te]
        xtr, ytr = pr.churn_features(a, tr), pr.churn_labels(a, tr, horizon)
        xte, yte = pr.churn_features(b, te), pr.churn_labels(b, te, horizon)
        base = LogisticRegression().fit(xtr[:, :1], ytr).predict_proba(xte[:, :1])[:, 1]
        ours = pr.churn_pipeline().fit(xtr, ytr).predict_proba(xte)[:, 1]
        # Paired bootstrap of the AUC gain over the baseline (same customers).
        rng = np.random.default_rng(15)
        gains = []
        for _ in range(200):
            i = rng.integers(0, len(yte), len(yte))
            gains.append(roc_auc_score(yte[i], ours[i]) - roc_auc_score(yte[i], base[i]))
        lo, hi = np.percentile(gains, [2.5, 97.5])
        key = f"{int(horizon)}d"
        out[key] = {
            "definition": (
                f"churn = no purchase in the next {int(horizon)} days; trained at "
                f"{datetime.fromtimestamp(tr, UTC).date()}, held out at {datetime.fromtimestamp(te, UTC).date()}"
            ),
            "ours": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.metrics.items()},
            "recency_baseline": {
                "auc": round(float(roc_auc_score(yte, base)), 4),
                "brier": round(float(brier_score_loss(yte, base)), 4),
            },
            "auc_gain_95ci": [round(float(lo), 4), round(float(hi), 4)],
            "holdout_churn_rate": round(float(yte.mean()), 4),
        }
    # The issue's definition stays at the top level (report rows read it).
    return {**out["182d"], "other_horizons": {"91d": out["91d"]}}


def intelligence_rows() -> list[str]:
    if not RESULTS.exists():
        return []
    r = json.loads(RESULTS.read_text())
    rows = []
    for cut, c in r.get("clv", {}).items():
        o, lt = c["ours"], c["lifetimes"]
        rows.append(
            f"| intelligence | CDNOW CLV {cut}: purchases RMSE / total error; spend RMSE | "
            f"{o['purchases_rmse']} / {o['total_purchases_error']:+.1%}; {o['spend_rmse']} | lower RMSE than lifetimes, total ±5 % | "
            f"lifetimes {lt['purchases_rmse']} / {lt['total_purchases_error']:+.1%}; {lt['spend_rmse']}"
            + "".join(
                f"; lifetimes penalizer {v['penalizer_coef']:g}: {v['purchases_rmse']} / {v['total_purchases_error']:+.1%}"
                for k, v in c.items()
                if k.startswith("lifetimes_penalizer_")
            )
            + (
                f"; before ADR 0235 (calendar clock, never-dropout share): "
                f"{c['ours_calendar_clock_never_dropout']['purchases_rmse']} / "
                f"{c['ours_calendar_clock_never_dropout']['total_purchases_error']:+.1%}"
                if "ours_calendar_clock_never_dropout" in c
                else ""
            )
            + (
                f"; backtest choice ({c['ours_backtest_choice']['chosen']}, not adopted): "
                f"{c['ours_backtest_choice']['holdout']['purchases_rmse']} / "
                f"{c['ours_backtest_choice']['holdout']['total_purchases_error']:+.1%}"
                if "ours_backtest_choice" in c
                else ""
            )
            + " |"
        )
    if "churn" in r:
        ch = r["churn"]
        rows.append(
            f"| intelligence | CDNOW churn (6 months) AUC / Brier | {ch['ours'].get('auc')} / {ch['ours'].get('brier')} | beat recency clearly | "
            f"recency only {ch['recency_baseline']['auc']} / {ch['recency_baseline']['brier']} |"
        )
        for h, o in ch.get("other_horizons", {}).items():
            rows.append(
                f"| intelligence | CDNOW churn ({h}) AUC / Brier | {o['ours'].get('auc')} / {o['ours'].get('brier')} | beat recency clearly | "
                f"recency only {o['recency_baseline']['auc']} / {o['recency_baseline']['brier']} |"
            )
    # The steady state (memberships kept by the sweep) is the headline; the
    # cold start (segments just defined, memberships empty) beside it (ADR 0201).
    for key in ("segments_warm", "segments"):
        if key not in r:
            continue
        s = r[key]
        warm = (
            " (steady state: memberships kept by the sweep)"
            if s.get("warm")
            else " (cold: segments just defined, memberships empty)"
        )
        if s.get("pipeline_depth", 1) > 1:
            warm += f", {s['pipeline_depth']} batches in flight"
        # What the machine's load added: time runnable but waiting for a core.
        queued = (
            f"; waiting for a core {s['handler_runqueue_wait_us_per_event']:,.0f} µs handler"
            f" + {s['postgres_runqueue_wait_us_per_event']:,.0f} µs PostgreSQL per event"
            if "handler_runqueue_wait_us_per_event" in s
            else ""
        )
        rows.append(
            f"| intelligence | traits + {s['segments']} segments, {s['customers']:,} customers ({s['database']}){warm} | "
            f"{s['events_per_s']:,.0f} events/s ({s.get('handler_cpu_us_per_event', '?')} µs handler + {s.get('postgres_cpu_us_per_event', '?')} µs PostgreSQL CPU/event, load {s.get('load_average_1m', '?')}{queued}); event → segment entered p99 {s['entered_p99_ms']} ms | ≥ 3,000 events/s; p99 ≤ 1 s | "
            f"{s['baseline']} |"
        )
    # Repeated full runs on a quiet machine: the spread of the wall-clock figures.
    quiet = (r.get("segments_quiet_runs") or {}).get("runs") or []
    for state in ("warm", "cold") if quiet else ():
        got = [q[state] for q in quiet if state in q]
        rate = [g["events_per_s"] for g in got]
        p99 = [g["entered_p99_ms"] for g in got]
        load = [g["load_average_1m"] for g in got]
        rows.append(
            f"| intelligence | traits + 50 segments, 1,000,000 customers, {state}: "
            f"{len(got)} full runs on a quiet machine (load {min(load)} to {max(load)}) | "
            f"{min(rate):,.0f} to {max(rate):,.0f} events/s; event → segment entered p99 "
            f"{min(p99):.0f} to {max(p99):.0f} ms | ≥ 3,000 events/s; p99 ≤ 1 s | — |"
        )
    return rows


def main() -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parts = set((os.environ.get("CXLOOP_BENCH_INTEL_PARTS") or "clv,churn,segments").split(","))
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict[str, Any] = {
        **old,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    if parts & {"clv", "churn"}:
        df = _cdnow()
        if "clv" in parts:
            results["clv"] = clv(df)
        if "churn" in parts:
            results["churn"] = churn(df)
            print(json.dumps(results["churn"]))
    if "segments" in parts:
        from bench.intelligence_scale import segments_bench

        # Both states in one run (ADR 0201): cold (memberships empty, right
        # after the segments are defined) and then, after one sweep, warm
        # (the steady state, the headline). CXLOOP_BENCH_INTEL_WARM=1: warm
        # only; =0: cold only.
        phases = {"1": ("warm",), "0": ("cold",)}.get(
            os.environ.get("CXLOOP_BENCH_INTEL_WARM", ""), ("cold", "warm")
        )
        got = segments_bench(
            int(os.environ.get("CXLOOP_BENCH_INTEL_CUSTOMERS", "1000000")), phases=phases
        )
        if "cold" in got:
            results["segments"] = got["cold"]
        if "warm" in got:
            results["segments_warm"] = got["warm"]
    # Re-read before writing: parts run at the same time in two processes
    # (e.g. clv,churn beside segments) each keep the other's figures.
    latest = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results = {**latest, **{k: v for k, v in results.items() if k not in old or v is not old[k]}}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
