"""Replicas' index sync hears of records written with traits by a notice on
identity's own subject, not by every profile event (ADR 0197)."""

from __future__ import annotations

from datetime import UTC, datetime

from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev
from identity.adapters.index_sync import SUBJECTS
from identity.domain.model import GraphView, HashedId, new_customer_id
from identity.service_layer.handlers import GraphWrite
from identity.service_layer.realtime import INDEX_RECORDS_SUBJECT

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def staged(observed: tuple[str, ...]) -> list[dict[str, object]]:
    view = GraphView()
    outcome = view.link([HashedId("email", "a" * 64)], NOW, new_customer_id)
    assert outcome is not None
    write = GraphWrite(repo=None, outbox=OutboxWriter(None), now=NOW)
    write.apply(
        outcome, cause="resolve:1", source="web", rule="resolve-request", observed_traits=observed
    )
    return write.outbox.drain()


def test_a_write_with_traits_sends_a_notice_and_a_write_without_none() -> None:
    with_traits = staged(("date_of_birth", "given_name"))
    assert [r["nats_subject"] for r in with_traits] == [
        ev.PROFILE_CREATED.subject,
        INDEX_RECORDS_SUBJECT,
    ]
    notice = ev.PROFILE_UPDATED.decode(with_traits[1]["data"])  # type: ignore[arg-type]
    assert notice.cause_event_id == "resolve:1"
    assert list(notice.observed_traits) == ["date_of_birth", "given_name"]
    assert with_traits[1]["event_id"] != with_traits[0]["event_id"]
    # A new customer from an interaction or a trait-less Resolve: no notice.
    assert [r["nats_subject"] for r in staged(())] == [ev.PROFILE_CREATED.subject]


def test_the_index_sync_listens_to_notices_not_to_every_profile_event() -> None:
    assert INDEX_RECORDS_SUBJECT in SUBJECTS
    assert ev.PROFILE_CREATED.subject not in SUBJECTS
    assert ev.PROFILE_UPDATED.subject not in SUBJECTS
    # In identity's stream, outside what other services take.
    assert INDEX_RECORDS_SUBJECT.startswith("cx.identity.")
    assert not INDEX_RECORDS_SUBJECT.startswith("cx.identity.profile.")
