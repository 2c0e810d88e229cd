"""The participant component without I/O: answers, ids, request decoding."""

from __future__ import annotations

import pytest
from cxloop.consent.v1 import events_pb2 as pb

from cxloop_libs.messaging import MalformedEvent, ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import PrivacyAnswer, RequestKind, answer_event_id, answer_kind
from cxloop_libs.privacy.participant import answer_message, work_of


def received(kind: ev.EventKind, data: bytes) -> ReceivedEvent:
    return ReceivedEvent(
        id="e1",
        type=kind.ce_type,
        source="/t",
        subject="",
        time="",
        data=data,
        nats_subject=kind.subject,
        headers={},
    )


def test_answers_go_on_the_participants_own_stream_with_a_stable_id() -> None:
    assert answer_kind("identity").subject == "cx.identity.privacy_request.answered"
    assert answer_event_id("r1", "identity") == answer_event_id("r1", "identity")
    assert answer_event_id("r1", "identity") != answer_event_id("r1", "gateway")
    with pytest.raises(ValueError):
        answer_kind("crm")


def test_outcome_follows_the_row_counts() -> None:
    done = answer_message(
        "identity",
        "r1",
        "c1",
        RequestKind.ERASURE,
        PrivacyAnswer(["identifiers"], {"identifiers": 2}),
    )
    assert done.outcome == pb.PRIVACY_ANSWER_OUTCOME_DONE and done.row_counts["identifiers"] == 2
    none = answer_message("gateway", "r1", "c1", RequestKind.ERASURE, PrivacyAnswer())
    assert none.outcome == pb.PRIVACY_ANSWER_OUTCOME_NOT_APPLICABLE and list(none.categories) == [
        "none"
    ]


def test_work_of_decodes_every_request_kind_and_ignores_others() -> None:
    msg = pb.ErasureRequested(request_id="r1", customer_id="c1").SerializeToString()
    assert work_of(received(ev.ERASURE_REQUESTED, msg)) == ("r1", "c1", RequestKind.ERASURE)
    access = pb.AccessRequested(request_id="r2", customer_id="c1").SerializeToString()
    assert work_of(received(ev.ACCESS_REQUESTED, access)) == ("r2", "c1", RequestKind.ACCESS)
    assert work_of(received(ev.PRIVACY_REQUEST_OPENED, b"")) is None
    with pytest.raises(MalformedEvent):
        work_of(received(ev.ERASURE_REQUESTED, pb.ErasureRequested().SerializeToString()))


async def test_stateless_participant_survives_a_stalled_nats_while_subscribing() -> None:
    """A NATS stall (request timeout) while subscribing used to end the
    task, and the runtime then stopped the whole service (the gateway)."""
    import asyncio as _asyncio
    from types import SimpleNamespace

    from cxloop_libs.privacy.participant import StatelessParticipant

    class Js:
        calls = 0

        async def pull_subscribe(self, *args: object, **kwargs: object) -> object:
            Js.calls += 1
            raise TimeoutError("nats: timeout")

    class Bus:
        js = Js()

        async def ready(self) -> None:
            return None

    spec = SimpleNamespace(filter_subject="x", durable="d", stream="S")
    runner = StatelessParticipant(SimpleNamespace(bus=Bus()), None, spec)  # type: ignore[arg-type]
    task = _asyncio.create_task(runner.run())
    await _asyncio.sleep(0.5)
    assert not task.done()  # still retrying, not dead
    assert Js.calls >= 2
    await runner.stop()
    await _asyncio.wait_for(task, 5)
