"""The real-time scoring path's shortcuts give the answers of the plain path
(ADR 0085): candidates' columns kept in the index, per-field evidence taken
from the batch's weights, and the candidate budget (smallest blocks first)."""

from __future__ import annotations

import numpy as np

from identity.domain.matching import CustomerRecord, normalise_record
from identity.domain.matching.blocking import BY_DOB, BY_FAMILY_CITY, BlockingIndex
from identity.domain.matching.comparisons import ColumnStore, RecordColumns, compare
from identity.domain.model import HashedId
from identity.service_layer.realtime import CandidateIndex, RecordRef
from identity.tests.unit.test_matching_korean_names import typical_model

RECORDS = [
    CustomerRecord("a", full_name="김민준", date_of_birth="1990-03-07", phone="+821012345678"),
    CustomerRecord("b", given_name="Minjun", family_name="Kim", date_of_birth="900307"),
    CustomerRecord("c", full_name="김 민지", date_of_birth="1990.03.07", street="중앙로 1"),
    CustomerRecord("d", given_name="Seoyeon", family_name="Lee", city="Seoul", postcode="04524"),
    CustomerRecord("e", full_name="이서연", phone="+8221234567", date_of_birth="1992/11/30"),
]


def _ref(key: str) -> RecordRef:
    return RecordRef("crm", key, HashedId("external_id", f"h-{key}", "crm"))


def test_column_store_gives_the_columns_records_convert_to() -> None:
    records = [normalise_record(r) for r in RECORDS]
    store = ColumnStore(capacity=2)  # grows while appending
    assert [store.append(r) for r in records] == list(range(len(records)))
    positions = np.asarray([4, 0, 2], dtype=np.int64)
    taken = store.take(positions)
    plain = RecordColumns.of([records[4], records[0], records[2]])
    for name in RecordColumns.__slots__:
        got, want = getattr(taken, name), getattr(plain, name)
        assert np.array_equal(np.asarray(got), np.asarray(want)), name


def test_a_cleared_position_keeps_no_raw_value() -> None:
    store = ColumnStore()
    for r in RECORDS:
        store.append(normalise_record(r))
    store.clear(0)
    gone = store.take(np.asarray([0], dtype=np.int64))
    assert gone.record_ids == [""]
    for name in ("given", "family", "dob", "street", "phone", "email_hash", "given_written"):
        assert getattr(gone, name).tolist() == [""], name
    assert gone.dob_ymd.tolist() == [[-1, -1, -1]]
    assert store.take(np.asarray([1], dtype=np.int64)).record_ids == ["b"]


def test_per_field_evidence_from_a_batch_is_that_of_scoring_the_pair_alone() -> None:
    model = typical_model()
    records = [normalise_record(r) for r in RECORDS]
    columns = RecordColumns.of(records)
    li, ri = np.triu_indices(len(records), k=1)
    pairs = compare(columns, li.astype(np.int64), columns, ri.astype(np.int64))
    weights = model.weigh(pairs)
    for k, (i, j) in enumerate(zip(li, ri, strict=True)):
        alone = model.score(records[i], records[j])
        assert model.details(pairs, weights, k) == alone.per_field
        assert np.isclose(weights.weight[k], alone.weight)
        assert np.isclose(weights.probability[k], alone.probability)
    # The household pattern is named where it applies (민준 / 민지).
    k = next(k for k, (i, j) in enumerate(zip(li, ri, strict=True)) if (i, j) == (0, 2))
    assert model.details(pairs, weights, k)["household"][0] == "contradiction"


def test_the_index_scores_as_the_model_scores_each_pair() -> None:
    model = typical_model()
    index = CandidateIndex()
    index.put([(_ref(r.record_id), r) for r in RECORDS[:4]])
    new = CustomerRecord("n", full_name="김민준", date_of_birth="19900307", street="중앙로 1")
    scored, comparisons = index.score(model, [(_ref("n"), new)], min_probability=0.0)
    assert comparisons == 3  # a, b, c share the birth date; d shares nothing
    assert {s.partner.record_id for s in scored} == {"a", "b", "c"}
    by_key = {r.record_id: r for r in RECORDS}
    for s in scored:
        alone = model.score(by_key[s.partner.record_id], new)
        assert s.weights == alone.per_field
        assert np.isclose(s.probability, alone.probability)


def test_an_erased_record_is_no_candidate_and_its_values_are_cleared() -> None:
    model = typical_model()
    index = CandidateIndex()
    index.put([(_ref(r.record_id), r) for r in RECORDS])
    assert index.remove(["h-a"]) == 1
    new = CustomerRecord("n", full_name="김민준", date_of_birth="19900307")
    scored, _ = index.score(model, [(_ref("n"), new)], min_probability=0.0)
    assert "a" not in {s.partner.record_id for s in scored}
    assert index._columns.take(np.asarray([0], dtype=np.int64)).given.tolist() == [""]


def test_the_candidate_budget_takes_the_smallest_blocks_first() -> None:
    # 5 records share the birth date, 30 the family name and city.
    same_day = [
        normalise_record(CustomerRecord(f"d{i}", date_of_birth="1990-03-07")) for i in range(5)
    ]
    same_city = [
        normalise_record(CustomerRecord(f"c{i}", family_name="Kim", city="Seoul"))
        for i in range(30)
    ]
    index = BlockingIndex([*same_day, *same_city], (BY_FAMILY_CITY, BY_DOB))
    new = normalise_record(
        CustomerRecord("n", family_name="Kim", city="Seoul", date_of_birth="1990-03-07")
    )
    assert len(index.candidate_positions(new)) == 35
    assert index.candidate_positions(new, budget=20) == list(range(5))
    assert len(index.candidate_positions(new, budget=35)) == 35
    assert index.candidate_positions(new, budget=4) == []


def test_the_writer_knows_its_own_profile_events_by_their_cause() -> None:
    index = CandidateIndex()
    index.note_own_writes(["resolve:1f2e", "import:abc123"])
    # The call's own event, and the links made for it.
    assert index.indexed_here("resolve:1f2e")
    assert index.indexed_here("resolve:1f2e:p0")
    # Every record of the import, and their links.
    assert index.indexed_here("import:abc123:7")
    assert index.indexed_here("import:abc123:7:p1")
    # Other replicas' writes (and other causes) are read again.
    assert not index.indexed_here("resolve:9999")
    assert not index.indexed_here("import:other:7")
    assert not index.indexed_here("event-123")
    assert not index.indexed_here("")
