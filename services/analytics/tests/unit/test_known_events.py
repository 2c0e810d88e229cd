"""A funnel validates its steps against the store's known event names: a
reader who already sees a batch's rows (a count, any SQL) must find their
names there too, or a funnel on an event just stored answers "unknown
event" (seen in CI: the names reached the layout only after the commit)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from analytics.adapters.event_store import EventRow, EventStore

T0 = datetime(2026, 1, 5, tzinfo=UTC)


class _SeesAtCommit:
    """The store's write cursor, asking what a reader knows the moment the
    commit returns (before the writing thread does anything else)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.inner = store._w
        self.seen: list[tuple[int, set[str]]] = []

    def commit(self) -> Any:
        out = self.inner.commit()
        self.seen.append((self.store.count(), self.store.known_events()))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def row(i: int, event: str) -> EventRow:
    return EventRow(f"e{i}", f"c{i % 3}", T0, event, "track", "web", "shop", {})


def test_names_are_known_when_the_rows_become_visible() -> None:
    store = EventStore(":memory:")
    try:
        store.ingest([row(0, "view")])
        store.ensure_layout()
        assert store.known_events() == {"view"}
        probe = _SeesAtCommit(store)
        store._w = probe  # type: ignore[assignment]
        store.ingest([row(1, "cart"), row(2, "checkout")])
        store.ingest([row(3, "buy")])
        assert probe.seen == [
            (3, {"view", "cart", "checkout"}),
            (4, {"view", "cart", "checkout", "buy"}),
        ]
    finally:
        store._w = getattr(store._w, "inner", store._w)
        store.close()


def test_names_without_a_layout_come_from_the_rows() -> None:
    store = EventStore(":memory:")
    try:
        store.ingest([row(0, "view"), row(1, "buy")])
        assert store.known_events() == {"view", "buy"}
    finally:
        store.close()
