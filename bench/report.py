"""Renders bench/README.md's results table from bench/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
START = "<!-- results:start -->"
END = "<!-- results:end -->"


def _rows() -> list[str]:
    rows = []
    ingest = HERE / "results" / "ingest.json"
    if ingest.exists():
        r = json.loads(ingest.read_text())
        raw = r["raw_jetstream_msgs_per_s"]
        rows += [
            f"| ingest | gateway `/v1/batch` accepted | {r['gateway_events_per_s']:,.0f} events/s | — | raw JetStream {raw:,.0f} msgs/s |",
            f"| ingest | resolved by identity ({r['identity_database']}) | {r['resolved_events_per_s']:,.0f} events/s | ≥ 2,000 | {r['resolved_vs_raw']:.0%} of raw (goal ≥ 30%) |",
            f"| ingest | accept → resolved p50 / p99 at {r['paced_run']['rate_events_per_s']:,} events/s | {r['p50_ms']} / {r['p99_ms']} ms | — | — |",
        ]
    if (HERE / "results" / "identity_accuracy.json").exists():
        from bench.identity_accuracy import accuracy_rows

        rows += accuracy_rows()
    if (HERE / "results" / "identity_scale.json").exists():
        from bench.identity_scale import scale_rows

        rows += scale_rows()
    if (HERE / "results" / "identity_realtime.json").exists():
        from bench.identity_realtime import realtime_rows

        rows += realtime_rows()
    if (HERE / "results" / "identity_households.json").exists():
        from bench.identity_households import households_rows

        rows += households_rows()
    if (HERE / "results" / "consent.json").exists():
        try:
            from bench.consent import consent_rows
        except ImportError:  # the consent benchmark lands with issue #4
            pass
        else:
            rows += consent_rows()
    if (HERE / "results" / "loyalty.json").exists():
        from bench.loyalty import loyalty_rows

        rows += loyalty_rows()
    if (HERE / "results" / "analytics.json").exists():
        from bench.analytics import analytics_rows

        rows += analytics_rows()
    if (HERE / "results" / "analytics_clickhouse.json").exists():
        from bench.analytics_clickhouse import clickhouse_rows

        rows += clickhouse_rows()
    if (HERE / "results" / "feedback.json").exists():
        from bench.feedback import feedback_rows

        rows += feedback_rows()
    if (HERE / "results" / "gateway.json").exists():
        from bench.gateway import gateway_rows

        rows += gateway_rows()
    if (HERE / "results" / "intelligence.json").exists():
        from bench.intelligence import intelligence_rows

        rows += intelligence_rows()
    if (HERE / "results" / "personalization.json").exists():
        from bench.personalization import personalization_rows

        rows += personalization_rows()
    return rows


def write_readme() -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    table = "\n".join(
        [
            "| bench | what | measured | target | baseline (same run) |",
            "|---|---|---|---|---|",
            *_rows(),
        ]
    )
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    readme.write_text(f"{before}{START}\n{table}\n{END}{after}")
