from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from identity.domain.model import GraphView, HashedId

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ids(*hashes: str) -> list[HashedId]:
    return [HashedId("email", h) for h in hashes]


def seq_ids():  # type: ignore[no-untyped-def]
    n = count(1)
    return lambda: f"c{next(n)}"


def test_new_identifiers_create_one_customer() -> None:
    view = GraphView()
    out = view.link(ids("a", "b"), T0, seq_ids())
    assert out is not None and out.created
    assert out.customer_id == "c1"
    assert {i.hash for i in out.added} == {"a", "b"}
    assert view.owner_of == {"a": "c1", "b": "c1"}


def test_known_identifier_adds_new_ones_to_its_customer() -> None:
    view = GraphView()
    view.know("a", "old", T0)
    out = view.link(ids("a", "z"), T0 + timedelta(days=1), seq_ids())
    assert out is not None and not out.created
    assert out.customer_id == "old"
    assert [i.hash for i in out.added] == ["z"]


def test_nothing_to_link_returns_none() -> None:
    assert GraphView().link([], T0) is None


def test_two_customers_merge_into_the_oldest() -> None:
    view = GraphView()
    view.know("a", "young", T0 + timedelta(days=2))
    view.know("b", "old", T0)
    view.know("c", "young", T0 + timedelta(days=2))
    out = view.link(ids("a", "b"), T0 + timedelta(days=3), seq_ids())
    assert out is not None
    assert out.customer_id == "old"
    assert out.merged_customer_ids == ["young"]
    assert out.added == []
    # Identifiers of the merged customer that the event did not mention move too.
    assert view.owner_of["c"] == "old"


def test_customers_created_in_one_batch_keep_order_of_appearance() -> None:
    view = GraphView()
    gen = iter(["zzz", "aaa"])  # the later customer has the smaller id
    first = view.link(ids("x"), T0, lambda: next(gen))
    second = view.link(ids("y"), T0, lambda: next(gen))
    assert first is not None and second is not None
    merged = view.link(ids("x", "y"), T0)
    assert merged is not None
    assert merged.customer_id == "zzz"
    assert merged.merged_customer_ids == ["aaa"]


def test_duplicate_identifiers_in_one_event_count_once() -> None:
    out = GraphView().link(ids("a", "a"), T0, seq_ids())
    assert out is not None and len(out.added) == 1
