"""The chaining guard: a sure pair must not merge two customers whose other
records contradict each other."""

from __future__ import annotations

from datetime import UTC, datetime

from identity.domain.matching import CustomerRecord, clusters_contradict, normalise_record
from identity.domain.model import GraphView
from identity.service_layer.realtime import ChainGuard
from identity.tests.unit.test_matching_korean_names import typical_model

HOME = dict(street="마포구 월드컵북로 12길 34", city="서울", postcode="03971")


def rec(rid: str, name: str, dob: str = "", phone: str = "") -> CustomerRecord:
    return CustomerRecord(rid, full_name=name, date_of_birth=dob, phone=phone, **HOME)


def n(r: CustomerRecord):  # type: ignore[no-untyped-def]
    return normalise_record(r)


def test_customers_whose_records_agree_may_merge() -> None:
    model = typical_model()
    a = [n(rec("a1", "조윤서", "1992-04-03", "010-5999-1234")), n(rec("a2", "Yoonseo Cho"))]
    b = [n(rec("b1", "JO YOON-SEO", "920403")), n(rec("b2", "조 윤서", phone="+821059991234"))]
    assert not clusters_contradict(model, a, b)


def test_a_contradicting_mobile_birth_date_or_given_name_refuses() -> None:
    model = typical_model()
    base = [n(rec("a1", "조윤서", "1992-04-03", "010-5999-1234")), n(rec("a2", "Yoonseo Cho"))]
    # b1 alone agrees with a2 (no birth date, no phone); b2 shows who b is.
    for other in (
        rec("b2", "조윤서", phone="010-2222-3333"),  # another mobile
        rec("b2", "조윤서", dob="2001-12-24"),  # another birth date
        rec("b2", "조민서"),  # another given name
    ):
        b = [n(rec("b1", "Yun Seo Jo")), n(other)]
        assert clusters_contradict(model, base, b), other


def test_the_guard_follows_the_view_and_counts_refusals() -> None:
    model = typical_model()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    view = GraphView()
    for h, cid in (("h1", "A"), ("h2", "A"), ("h3", "B"), ("h4", "C")):
        view.know(h, cid, now)
    guard = ChainGuard(model, view)
    guard.know("h1", n(rec("a1", "조윤서", "1992-04-03", "010-5999-1234")))
    guard.know("h2", n(rec("a2", "Yoonseo Cho")))
    guard.know("h3", n(rec("b1", "조윤서", phone="010-2222-3333")))
    guard.know("h4", n(rec("c1", "Jo Yoonseo", "1992-04-03")))
    assert [r.record_id for r in guard.members("A")] == sorted(["a1", "a2"]) or len(
        guard.members("A")
    ) == 2
    assert not guard.allows("A", "B") and guard.refused == 1
    assert guard.allows("A", "C") and guard.refused == 1
    # A record not in the graph yet, joining A.
    assert not guard.allows("A", "", [n(rec("x", "조윤서", dob="1980-01-01"))])
    assert guard.refused == 2


def test_the_index_forgets_a_customer_and_those_merged_into_it() -> None:
    import hashlib

    from identity.domain.model import HashedId
    from identity.service_layer.realtime import CandidateIndex, RecordRef

    def ref(name: str) -> RecordRef:
        return RecordRef("web", name, HashedId("email", hashlib.sha256(name.encode()).hexdigest()))

    index = CandidateIndex()
    records = [(ref(k), rec(k, "조윤서")) for k in ("a", "b", "c")]
    index.put(
        records, {"web|" + r.identifier.hash: c for (r, _), c in zip(records, "XYZ", strict=True)}
    )
    index.merged("X", ["Y"])  # another replica merged Y into X
    assert index.customer_of("web|" + records[1][0].identifier.hash) == "X"
    assert index.remove_customers(["X"]) == 2
    assert len(index) == 1
    assert index.remove_customers(["Y"]) == 0  # gone with X
    assert index.remove_customers(["Z"]) == 1 and len(index) == 0
