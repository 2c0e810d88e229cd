"""Feedback benchmarks → bench/results/feedback.json.

1. Sentiment on the project's own held-out splits (15 % of each carried
   file, by text hash): accuracy and macro-F1, 3-class and polar (negative vs
   positive, the NSMC / VADER convention), per language; English also per
   corpus (product reviews, tweets, editorials: not movies). Beside two
   baselines measured in the same run: VADER (English lexicon) and a word +
   char n-gram TF-IDF logistic regression trained on the same rows.
2. Text analytics throughput (sentiment + aspects + keywords), one core.
3. Response ingestion with text analytics (the SubmitResponse batch path:
   validation, analysis, sealing, response rows, events, KPI tallies).
4. GetKpis over 1,000,000 responses (a year of daily tallies), p99.
5. Anomaly detection precision/recall on a synthetic year with weekly
   seasonality and injected drops.

    python bench/feedback.py [--limit N]   # N training rows per language (0: all)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from bench.common import machine

RESULTS = Path(__file__).parent / "results" / "feedback.json"


def _scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(1)
    polar = y != 1
    binary = np.where(proba[:, 2] >= proba[:, 0], 2, 0)
    return {
        "accuracy_3class": round(float(accuracy_score(y, pred)), 4),
        "macro_f1_3class": round(float(f1_score(y, pred, average="macro")), 4),
        "accuracy_polar": round(float(accuracy_score(y[polar], binary[polar])), 4),
        "macro_f1_polar": round(float(f1_score(y[polar], binary[polar], average="macro")), 4),
        "n_test": len(y),
        "n_test_polar": int(polar.sum()),
    }


def _tfidf_baseline(train_x: list[str], train_y: np.ndarray, test_x: list[str]) -> np.ndarray:
    from feedback.adapters.sentiment_model import TOKEN_PATTERN

    w = TfidfVectorizer(
        token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    c = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    x = sp.hstack([w.fit_transform(train_x), c.fit_transform(train_x)]).tocsr()
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, train_y)
    return lr.predict_proba(sp.hstack([w.transform(test_x), c.transform(test_x)]).tocsr())  # type: ignore[no-any-return]


def _vader(texts: list[str]) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    v = SentimentIntensityAnalyzer()
    out = []
    for t in texts:
        c = v.polarity_scores(t)["compound"]
        out.append(
            [1.0, 0.0, 0.0] if c < -0.05 else [0.0, 0.0, 1.0] if c > 0.05 else [0.0, 1.0, 0.0]
        )
    return np.asarray(out)


def sentiment(limit: int) -> tuple[dict[str, Any], Any]:
    from feedback.adapters import sentiment_model as sm
    from feedback.domain.text import Language

    out: dict[str, Any] = {}
    models = {}
    for lang, rows in (("ko", sm.load_korean()), ("en", sm.load_english())):
        train, test = sm.split(rows)
        train = sm._subsample(train, limit)
        tx, ty = [r.text for r in train], np.array([r.label for r in train])
        sx, sy = [r.text for r in test], np.array([r.label for r in test])
        t0 = time.perf_counter()
        model = sm.language_model(Language(lang)).fit(tx, ty)
        fit_s = time.perf_counter() - t0
        models[Language(lang)] = model
        ours = model.proba(sx)
        base = _tfidf_baseline(tx, ty, sx)
        res: dict[str, Any] = {
            "train_rows": len(train),
            "train_seconds": round(fit_s, 1),
            "ours": _scores(sy, ours),
            "tfidf_lr_baseline": _scores(sy, base),
        }
        if lang == "en":
            vad = _vader(sx)
            res["vader_baseline"] = _scores(sy, vad)
            by_corpus: dict[str, Any] = {}
            for corpus in sorted({r.corpus for r in test}):
                m = np.array([r.corpus == corpus for r in test])
                by_corpus[corpus] = {
                    "ours": _scores(sy[m], ours[m]),
                    "tfidf_lr_baseline": _scores(sy[m], base[m]),
                    "vader_baseline": _scores(sy[m], vad[m]),
                }
            res["by_corpus"] = by_corpus
            nm = np.array([r.corpus != "movieReview" for r in test])
            res["not_movies"] = {
                "ours": _scores(sy[nm], ours[nm]),
                "tfidf_lr_baseline": _scores(sy[nm], base[nm]),
                "vader_baseline": _scores(sy[nm], vad[nm]),
            }
        out[lang] = res
    return out, sm.SentimentModel(models)


SHOP_TEXTS = [
    "배송이 너무 늦고 포장도 엉망이에요",
    "가격 대비 품질이 좋아요. 재구매 의사 있습니다",
    "상담원이 친절하게 환불 처리해 주셨어요",
    "앱이 자꾸 튕겨서 결제를 못 했어요",
    "The delivery was late and the box was damaged.",
    "Great quality for the price, fast shipping!",
    "Support agent was rude and the refund took weeks.",
    "The app crashes at checkout every time.",
]


def throughput(model: Any) -> float:
    from feedback.service_layer.analysis import TextAnalyzer

    analyzer = TextAnalyzer(model)
    analyzer.analyze(SHOP_TEXTS)  # load kiwi
    texts = SHOP_TEXTS * 250
    t0 = time.perf_counter()
    for i in range(0, len(texts), 100):
        analyzer.analyze(texts[i : i + 100])
    return len(texts) / (time.perf_counter() - t0)


class _Consent:
    is_ready = True

    def may_use(self, customer_id: str, purpose: str) -> bool:
        return True


def _handlers(model: Any, db_url: str) -> tuple[Any, Any]:
    from cxloop_libs.db import Database, run_migrations
    from cxloop_libs.pii.envelope import SubjectKeyring
    from feedback.bootstrap import MIGRATIONS
    from feedback.domain.invitations import ResponseTokens
    from feedback.service_layer.analysis import TextAnalyzer
    from feedback.service_layer.handlers import FeedbackHandlers

    db = Database(db_url)
    run_migrations(db.engine, MIGRATIONS)
    analyzer = TextAnalyzer(model)
    analyzer.analyze(SHOP_TEXTS)
    h = FeedbackHandlers(
        keyring=SubjectKeyring(b"k" * 32),
        tokens=ResponseTokens(b"t" * 32),
        consent=_Consent(),
        analyzer=lambda: analyzer,
    )
    with db.session() as s:
        h.put_survey(
            s,
            json.dumps(
                {
                    "id": "nps",
                    "questions": [
                        {"id": "nps", "type": "nps", "text": "Recommend?"},
                        {"id": "why", "type": "free_text", "text": "Why?"},
                    ],
                }
            ),
        )
        s.commit()
    return db, h


INGESTION_CPU_US: dict[bool, float] = {}


def ingestion(
    model: Any, db_url: str, n: int = 4000, batch: int = 200, *, text: bool = True
) -> float:
    """Responses/s through submit_responses in batches (the gRPC batcher's
    size); ``text=False`` leaves the free-text answer out (no analytics): the
    same-run reference for what text analytics costs."""
    from feedback.domain.surveys import RawAnswer
    from feedback.service_layer.handlers import ResponseInput

    db, h = _handlers(model, db_url)
    rnd = random.Random(1)
    items = [
        ResponseInput(
            answers=(
                RawAnswer("nps", score=rnd.randint(0, 10)),
                *([RawAnswer("why", text=rnd.choice(SHOP_TEXTS))] if text else []),
            ),
            survey_id="nps",
            customer_id=f"c{rnd.randint(0, 50_000)}",
            channel=rnd.choice(["email", "app"]),
            segment=rnd.choice(["vip", "new", "regular"]),
        )
        for _ in range(n)
    ]
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(0, n, batch):
        with db.session() as s:
            results = h.submit_responses(s, items[i : i + batch])
            s.commit()
        assert not any(isinstance(r, BaseException) for r in results), results[:3]
    rate = n / (time.perf_counter() - t0)
    # CPU time of this process per response: the figure a busy machine
    # distorts least (wall-clock rate above depends on the load).
    INGESTION_CPU_US[text] = round((time.process_time() - c0) / n * 1e6, 1)
    db.dispose()
    return rate


def get_kpis(db_url: str, responses: int = 1_000_000) -> dict[str, Any]:
    from cxloop_libs.db import Database, run_migrations
    from feedback.adapters import kpi_store
    from feedback.bootstrap import MIGRATIONS
    from feedback.domain.surveys import QuestionType
    from feedback.service_layer.handlers import FeedbackHandlers

    db = Database(db_url)
    run_migrations(db.engine, MIGRATIONS)
    rnd = random.Random(2)
    tz = kpi_store.ZoneInfo("Asia/Seoul")
    first = kpi_store.local_day(datetime(2025, 1, 1, tzinfo=UTC), tz)
    dims = {
        "survey_id": ["nps-web", "nps-app", "nps-store"],
        "segment": ["vip", "regular", "new", "at_risk"],
        "channel": ["email", "sms", "app_push", "in_product"],
        "touchpoint": ["checkout", "delivery", "support", "store", "signup"],
        "journey_stage": ["awareness", "consideration", "purchase", "post_purchase"],
    }
    t0 = time.perf_counter()
    chunk: list[Any] = []
    for i in range(responses):
        chunk.append(
            kpi_store.ScoredResponse(
                QuestionType.NPS,
                min(10, max(0, int(rnd.gauss(7.5, 2.2)))),
                first + rnd.randrange(365),
                {k: rnd.choice(v) for k, v in dims.items()},
            )
        )
        if len(chunk) == 100_000 or i == responses - 1:
            with db.session() as s:
                kpi_store.add_responses(s, chunk)
                s.commit()
            chunk = []
    load_s = time.perf_counter() - t0
    h = FeedbackHandlers.__new__(FeedbackHandlers)
    h.tz = tz
    start = kpi_store.day_start(first, tz)
    end = start + timedelta(days=365)
    queries = [
        ({}, "day"),
        ({}, "week"),
        ({"segment": "vip"}, "day"),
        ({"channel": "email"}, "month"),
        ({"journey_stage": "purchase"}, "day"),
        ({"segment": "vip", "channel": "email"}, "week"),
    ]
    lat: list[float] = []
    total = 0
    with db.session() as s:
        for _ in range(40):
            for filters, gran in queries:
                q0 = time.perf_counter()
                _series, tally = FeedbackHandlers.kpi_series(
                    h, s, QuestionType.NPS, start, end, filters, gran
                )
                lat.append((time.perf_counter() - q0) * 1000)
                if not filters:
                    total = tally.n
    lat.sort()
    db.dispose()
    return {
        "responses": total,
        "load_seconds": round(load_s, 1),
        "queries": len(lat),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
        "query_mix": [f"{f or 'all'} by {g}" for f, g in queries],
    }


def anomalies(seeds: int = 20) -> dict[str, Any]:
    from feedback.domain.anomaly import DailyValue, detect_drops

    tp = fp = fn = 0
    for seed in range(seeds):
        rnd = random.Random(seed)
        drops = {d: rnd.uniform(15, 30) for d in rnd.sample(range(60, 365), 6)}
        series = []
        for d in range(365):
            # Weekly cycle (weekends +6, a sine over the week), a slow trend,
            # and the sampling noise of an NPS over n answers (promoters 45 %,
            # detractors 15 %: standard error 100 * sqrt(0.51 / n)).
            weekly = 10 * math.sin(2 * math.pi * d / 7) + (6 if d % 7 in (5, 6) else 0)
            trend = 5 * d / 365
            n = rnd.randint(150, 400)
            noise = rnd.gauss(0, 100 * math.sqrt(0.51 / n))
            series.append(DailyValue(19000 + d, 30 + trend + weekly + noise - drops.get(d, 0.0), n))
        found = {a.day - 19000 for a in detect_drops(series)}
        tp += len(found & set(drops))
        fp += len(found - set(drops))
        fn += len(set(drops) - found)
    return {
        "years": seeds,
        "injected_drops": tp + fn,
        "drop_size_points": "15-30 NPS points (3-8 standard errors of a day's NPS)",
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3),
        "true_positives": tp,
        "false_positives": fp,
    }


def feedback_rows() -> list[str]:
    """Rows for bench/README.md's results table (bench/report.py)."""
    if not RESULTS.exists():
        return []
    r = json.loads(RESULTS.read_text())
    rows = []
    for lang in ("ko", "en"):
        s = r["sentiment"][lang]
        o, b = s["ours"], s["tfidf_lr_baseline"]
        extra = f"; VADER {s['vader_baseline']['accuracy_polar']}" if "vader_baseline" in s else ""
        rows.append(
            f"| feedback | sentiment {lang} held out, polar acc / 3-class acc / macro-F1 | "
            f"{o['accuracy_polar']} / {o['accuracy_3class']} / {o['macro_f1_3class']} | ≥ 0.88, ahead of TF-IDF | "
            f"TF-IDF LR {b['accuracy_polar']} / {b['accuracy_3class']} / {b['macro_f1_3class']}{extra} |"
        )
    k = r["get_kpis_sqlite"]
    a = r["anomaly_detection"]

    def cpu(us: float | None) -> str:
        return f" ({us:,.0f} µs CPU each)" if us else ""

    rows += [
        f"| feedback | text analytics, one core | {r['text_analytics_texts_per_s_one_core']} texts/s | — | — |",
        f"| feedback | response ingestion with text analytics (SQLite) | {r['ingestion_responses_per_s_sqlite']} responses/s"
        f"{cpu(r.get('ingestion_cpu_us_per_response_sqlite'))} | ≥ 1,000 | "
        f"{r.get('ingestion_without_text_responses_per_s_sqlite', '—')} responses/s without text"
        f"{cpu(r.get('ingestion_without_text_cpu_us_per_response_sqlite'))} |",
        f"| feedback | GetKpis over {k['responses']:,} responses p50 / p99 (SQLite) | {k['p50_ms']} / {k['p99_ms']} ms | p99 ≤ 50 ms | — |",
        f"| feedback | anomaly alerts, {a['years']} synthetic years | precision {a['precision']} / recall {a['recall']} | — | — |",
    ]
    return rows


def main(limit: int | None = None) -> dict[str, Any]:
    if limit is None:
        limit = int(os.environ.get("CXLOOP_BENCH_FEEDBACK_LIMIT", "0"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # CXLOOP_BENCH_FEEDBACK_PARTS: comma-separated subset of sentiment,
    # ingestion, kpis, anomalies (default: all). A partial run keeps the
    # other parts' figures from the previous results file and says which
    # parts were re-measured when (GetKpis' 1M-row load alone takes ~20 min
    # on a busy machine). ingestion needs sentiment (it uses its model).
    parts = {
        p.strip()
        for p in os.environ.get(
            "CXLOOP_BENCH_FEEDBACK_PARTS", "sentiment,ingestion,kpis,anomalies"
        ).split(",")
        if p.strip()
    }
    if "ingestion" in parts:
        parts.add("sentiment")
    full = parts >= {"sentiment", "ingestion", "kpis", "anomalies"}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {}
    if not full and RESULTS.exists():
        results = json.loads(RESULTS.read_text())
        kept = results.get("partial_run", {}).get("parts_measured_at", {})
        if not kept:
            kept = {
                p: results.get("measured_at")
                for p in ("sentiment", "ingestion", "kpis", "anomalies")
            }
        results["partial_run"] = {"parts_measured_at": {**kept, **{p: now for p in parts}}}
    results.update(
        {
            "measured_at": now,
            "machine": machine(),
        }
    )
    model = None
    if "sentiment" in parts:
        results["training_rows_per_language"] = limit or "all"
        results["sentiment"], model = sentiment(limit)
        results["text_analytics_texts_per_s_one_core"] = round(throughput(model), 1)
    with tempfile.TemporaryDirectory() as d:
        if "ingestion" in parts:
            results["ingestion_responses_per_s_sqlite"] = round(
                ingestion(model, f"sqlite:///{d}/ingest.db"), 1
            )
            results["ingestion_without_text_responses_per_s_sqlite"] = round(
                ingestion(model, f"sqlite:///{d}/ingest-no-text.db", text=False), 1
            )
            results["ingestion_cpu_us_per_response_sqlite"] = INGESTION_CPU_US[True]
            results["ingestion_without_text_cpu_us_per_response_sqlite"] = INGESTION_CPU_US[False]
        if "kpis" in parts:
            results["get_kpis_sqlite"] = get_kpis(f"sqlite:///{d}/kpis.db")
    pg = os.environ.get("CXLOOP_BENCH_POSTGRES_URL")
    if pg and full:
        import sqlalchemy as sa

        name = f"fbbench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
        url = pg.rsplit("/", 1)[0] + "/" + name
        results["ingestion_responses_per_s_postgresql"] = round(ingestion(model, url), 1)
        results["get_kpis_postgresql"] = get_kpis(url)
    if "anomalies" in parts:
        results["anomaly_detection"] = anomalies()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


if __name__ == "__main__":
    import sys

    # Run as a script, bench/ is first on sys.path and this file would shadow
    # the feedback service's package.
    here = Path(__file__).resolve().parent
    sys.path = [x for x in sys.path if Path(x or ".").resolve() != here]
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, default=None)
    a = p.parse_args()
    print(json.dumps(main(a.limit), indent=2, ensure_ascii=False))
