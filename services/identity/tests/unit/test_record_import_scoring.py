"""Scoring an import: which model is used, which pairs come back, and that
their evidence is levels and weights, not the values compared."""

from __future__ import annotations

import hashlib
import json

from identity.domain.matching import CustomerRecord
from identity.domain.model import HashedId
from identity.service_layer.handlers import ResolveCommand, answered_without_writing
from identity.service_layer.imports import ImportRecord, RecordImporter
from identity.service_layer.realtime import CandidateIndex
from identity.tests.unit.test_matching_korean_names import typical_model


def record(source: str, rid: str, **fields: str) -> ImportRecord:
    ext = HashedId("external", hashlib.sha256(f"{source}:{rid}".encode()).hexdigest(), source)
    features = CustomerRecord(record_id=f"{source}:{rid}", **fields)
    return ImportRecord(rid, source, ext, (ext,), features)


RECORDS = [
    record("shop", "1", full_name="김민준", date_of_birth="1990-05-17"),
    record("crm", "9", given_name="Minjun", family_name="Kim", date_of_birth="19900517"),
    record("crm", "10", full_name="김서연", date_of_birth="1990-05-17"),
    record("pos", "3", full_name="Marcus Hale", date_of_birth="1962-11-30"),
]


def test_configured_model_scores_pairs_with_their_evidence() -> None:
    scoring = RecordImporter(model=typical_model()).score(RECORDS)
    assert scoring.model == "configured"
    at = {r.ref.key: n for n, r in enumerate(RECORDS)}
    by_pair = {(at[m.partner.key], at[m.record.key]): m for m in scoring.matches}
    sure = by_pair[(0, 1)]
    assert sure.probability >= 0.95
    assert sure.weights["family_name"][0] == "exact"
    # 김민준 and 김서연, born the same day: two different Hangul given names
    # are two people (twins), however much else agrees (the household rule).
    assert (0, 2) not in by_pair
    assert all(3 not in pair for pair in by_pair)  # nothing like Marcus
    evidence = json.loads(sure.weights_json())
    assert set(evidence) >= {"given_name", "family_name", "date_of_birth"}
    assert "minjun" not in sure.weights_json() and "1990" not in sure.weights_json()


def test_without_a_model_a_small_import_links_exactly_only() -> None:
    scoring = RecordImporter().score(RECORDS)
    assert (scoring.model, scoring.matches, scoring.comparisons) == ("none", [], 0)


def test_a_call_is_answered_without_writing_only_when_one_customer_holds_it_all() -> None:
    a, b = HashedId("email", "a" * 64), HashedId("phone", "b" * 64)
    call = ResolveCommand((a, b), "test")
    assert answered_without_writing(call, {a.hash: "c1", b.hash: "c1"}) == "c1"
    assert answered_without_writing(call, {a.hash: "c1", b.hash: "c2"}) is None
    assert answered_without_writing(call, {a.hash: "c1"}) is None


def test_new_records_are_scored_against_earlier_ones_in_the_index() -> None:
    index = CandidateIndex()
    earlier = record("crm", "9", given_name="Minjun", family_name="Kim", date_of_birth="19900517")
    index.put([(earlier.ref, earlier.features)])
    importer = RecordImporter(model=typical_model(), index=index)
    new = record("shop", "1", full_name="김민준", date_of_birth="1990-05-17")
    scoring = importer.score([new])
    assert scoring.comparisons_with_earlier == 1
    (m,) = scoring.matches
    assert (m.partner, m.record) == (earlier.ref, new.ref) and m.probability >= 0.95
    # The same record imported again is not its own match.
    assert importer.score([earlier]).matches == []
    # Erasure takes it out.
    assert index.remove([earlier.external.hash]) == 1
    assert importer.score([new]).matches == [] and len(index) == 0


def test_the_index_replaces_a_record_imported_again_and_skips_crowded_keys() -> None:
    index = CandidateIndex(max_block_size=10)
    crowd = [
        record("pos", str(n), given_name=f"G{n}", family_name=f"F{n}", postcode="06236")
        for n in range(11)
    ]
    index.put([(r.ref, r.features) for r in crowd])
    probe = record("web", "x", given_name="Q", family_name="Z", postcode="06236")
    assert index.score(typical_model(), [(probe.ref, probe.features)], min_probability=0.0)[1] == 0
    again = record("pos", "0", given_name="G0", family_name="F0", postcode="99999")
    index.put([(again.ref, again.features)])
    assert len(index) == 11
    probe = record("web", "y", given_name="Q", family_name="Z", postcode="99999")
    pairs, n = index.score(typical_model(), [(probe.ref, probe.features)], min_probability=0.0)
    assert n == 1 and pairs[0].partner == again.ref
