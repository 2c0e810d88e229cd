"""Privacy requests as a saga on real NATS and a real database: consent opens
the request, every registered participant (consent itself, the gateway, ...)
answers through the libs participant component, and the request completes
with per-service proof; a participant that never answers makes it escalate;
access assembles one JSON bundle; deadlines, extension and overdue flags."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb

from consent.adapters.tables import RecordRow, StateRow
from consent.tests.conftest import start_consent
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import KeyShredded
from cxloop_libs.privacy import answer_event_id
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from gateway.bootstrap import bootstrap as gateway_bootstrap
from gateway.config import GatewaySettings

pytestmark = pytest.mark.integration

ERASURE = epb.PRIVACY_REQUEST_KIND_ERASURE
ACCESS = epb.PRIVACY_REQUEST_KIND_ACCESS
VERIFIED = pb.VERIFICATION_STATUS_VERIFIED
COMPLETED = pb.PRIVACY_REQUEST_STATUS_COMPLETED
ESCALATED = pb.PRIVACY_REQUEST_STATUS_ESCALATED

Starter = Callable[..., Awaitable[ServiceRuntime]]


@pytest.fixture
async def suite(clean_consent_nats: str, database_url: str) -> AsyncIterator[Starter]:
    """Starts consent (with settings overrides) and the gateway; stops both."""
    started: list[ServiceRuntime] = []

    async def start(**overrides: object) -> ServiceRuntime:
        # These tests invent customer ids no identity service announced;
        # refusing unknown subjects is tested in test_consent_audit.py.
        overrides.setdefault("privacy_require_known_subject", False)
        consent = await start_consent(clean_consent_nats, database_url, **overrides)
        started.append(consent)
        gateway = await gateway_bootstrap(
            GatewaySettings(env="test", nats_url=clean_consent_nats, http_port=0, metrics_port=0)
        )
        await gateway.start()
        started.append(gateway)
        return consent

    yield start
    for runtime in reversed(started):
        await runtime.stop()


async def stub_of(runtime: ServiceRuntime) -> pb_grpc.ConsentServiceStub:
    assert runtime.grpc_server is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}")
    return pb_grpc.ConsentServiceStub(channel)


async def granted(stub: pb_grpc.ConsentServiceStub, cid: str, purpose: str) -> None:
    await stub.RecordConsent(
        pb.RecordConsentRequest(
            customer_id=cid,
            purpose=purpose,
            decision=epb.CONSENT_DECISION_GRANTED,
            notice_version="1",
            channel=epb.CONSENT_CHANNEL_WEB_FORM,
        ),
        timeout=5,
    )


async def open_request(
    stub: pb_grpc.ConsentServiceStub, cid: str, kind: int, **extra: object
) -> pb.OpenPrivacyRequestResponse:
    fields: dict[str, object] = {
        "customer_id": cid,
        "kind": kind,
        "jurisdiction": epb.JURISDICTION_GDPR,
        "verification_status": VERIFIED,
        "verification_method": "logged_in_session",
    }
    fields.update(extra)
    return await stub.OpenPrivacyRequest(pb.OpenPrivacyRequestRequest(**fields), timeout=5)  # type: ignore[arg-type]


async def status_when(
    stub: pb_grpc.ConsentServiceStub, request_id: str, wanted: int, timeout: float = 10
) -> pb.GetPrivacyRequestStatusResponse:
    async def check() -> pb.GetPrivacyRequestStatusResponse:
        r = await stub.GetPrivacyRequestStatus(
            pb.GetPrivacyRequestStatusRequest(request_id=request_id), timeout=5
        )
        assert r.status == wanted, str(r)  # the last one shows in the failure
        return r

    result: pb.GetPrivacyRequestStatusResponse = await eventually(check, timeout=timeout)
    return result


def count(runtime: ServiceRuntime, table: type, cid: str) -> int:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count()).select_from(table).where(table.customer_id == cid)  # type: ignore[attr-defined]
            ).scalar_one()
        )


async def test_erasure_completes_when_every_participant_answered_with_proof(
    suite: Starter,
) -> None:
    consent = await suite(privacy_participants="consent,gateway")
    stub = await stub_of(consent)
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    for c in (cid, other):
        await granted(stub, c, "marketing_email")
        await granted(stub, c, "profiling")
    assert count(consent, RecordRow, cid) == 2

    opened = await open_request(stub, cid, ERASURE)
    assert opened.status == pb.PRIVACY_REQUEST_STATUS_IN_PROGRESS
    assert opened.due_at.ToDatetime() > opened.opened_at.ToDatetime() + timedelta(days=27)
    done = await status_when(stub, opened.request_id, COMPLETED)

    answers = {p.participant: p for p in done.participants}
    assert set(answers) == {"consent", "gateway"}
    assert answers["consent"].state == pb.PARTICIPANT_STATE_DONE
    assert answers["consent"].row_counts["consent_records"] == 2
    assert answers["consent"].row_counts["consent_state"] == 2
    assert answers["gateway"].state == pb.PARTICIPANT_STATE_NOT_APPLICABLE
    assert (
        list(answers["gateway"].categories) == ["none"] and answers["gateway"].records_affected == 0
    )
    assert done.HasField("closed_at")
    # Per-service proof: the subject's rows are gone, the other customer's stay.
    assert count(consent, RecordRow, cid) == 0 and count(consent, StateRow, cid) == 0
    assert count(consent, RecordRow, other) == 2
    check = await stub.Check(pb.CheckRequest(customer_id=cid, purpose="profiling"), timeout=5)
    assert not check.allowed
    # Once closed, a new request for the subject may be opened.
    again = await open_request(stub, cid, ERASURE)
    assert again.request_id != opened.request_id


async def test_a_participant_that_never_answers_escalates_and_a_late_answer_completes(
    suite: Starter, clean_consent_nats: str
) -> None:
    # "loyalty" is registered but not running: its stream exists, nobody answers.
    bus = NatsBus(clean_consent_nats, name="test-loyalty", streams=[stream_for("loyalty")])
    await bus.connect(timeout=10)
    try:
        consent = await suite(
            privacy_participants="consent,gateway,loyalty",
            privacy_answer_timeout_s=0.5,
            privacy_check_interval_s=0.1,
        )
        stub = await stub_of(consent)
        cid = str(uuid.uuid4())
        opened = await open_request(stub, cid, ERASURE)
        # Consent and gateway answer; on a busy machine possibly only after
        # the (short) answer timeout escalated the request: an answer after
        # the escalation is still taken, the request stays escalated while
        # loyalty is silent.
        wanted = {
            "consent": pb.PARTICIPANT_STATE_NOT_APPLICABLE,
            "gateway": pb.PARTICIPANT_STATE_NOT_APPLICABLE,
            "loyalty": pb.PARTICIPANT_STATE_PENDING,
        }

        async def escalated_with_two_answers() -> pb.GetPrivacyRequestStatusResponse:
            r = await status_when(stub, opened.request_id, ESCALATED)
            assert {p.participant: p.state for p in r.participants} == wanted, str(r)
            return r

        escalated = await eventually(escalated_with_two_answers, timeout=20)
        assert escalated.escalation_reason == epb.PRIVACY_ESCALATION_REASON_PARTICIPANTS_SILENT
        # The alert is an event the privacy officer's tooling follows.
        nc = await nats.connect(clean_consent_nats)
        try:
            sub = await nc.jetstream().subscribe(
                ev.PRIVACY_REQUEST_ESCALATED.subject, ordered_consumer=True
            )
            alert = epb.PrivacyRequestEscalated()
            alert.ParseFromString((await sub.next_msg(timeout=5)).data)
            assert alert.request_id == opened.request_id
            # The participants silent when the timeout struck: loyalty, and
            # on a busy machine those whose answer was still on its way.
            missing = list(alert.missing_participants)
            assert "loyalty" in missing and set(missing) <= set(wanted), missing
        finally:
            await nc.close()
        # Loyalty comes back and answers late: the request completes.
        answer = epb.PrivacyRequestAnswered(
            request_id=opened.request_id,
            customer_id=cid,
            participant="loyalty",
            kind=ERASURE,
            outcome=epb.PRIVACY_ANSWER_OUTCOME_DONE,
            categories=["points_ledger"],
            row_counts={"points_ledger": 3},
        )
        await EventPublisher(bus, source="/cxloop/loyalty").publish(
            PendingEvent.of(
                ev.PRIVACY_REQUEST_ANSWERED["loyalty"],
                answer,
                subject=cid,
                event_id=answer_event_id(opened.request_id, "loyalty"),
            )
        )
        done = await status_when(stub, opened.request_id, COMPLETED)
        assert {p.participant: p.records_affected for p in done.participants}["loyalty"] == 3
    finally:
        await bus.close()


async def test_access_assembles_one_json_bundle(suite: Starter) -> None:
    consent = await suite(privacy_participants="consent,gateway")
    stub = await stub_of(consent)
    cid = str(uuid.uuid4())
    await granted(stub, cid, "marketing_sms")
    opened = await open_request(
        stub, cid, ACCESS, verification_status=pb.VERIFICATION_STATUS_PENDING
    )
    assert opened.status == pb.PRIVACY_REQUEST_STATUS_AWAITING_VERIFICATION
    # Asking again while one is open answers with the same request.
    twice = await open_request(
        stub, cid, ACCESS, verification_status=pb.VERIFICATION_STATUS_PENDING
    )
    assert twice.request_id == opened.request_id
    verified = await stub.VerifyPrivacyRequest(
        pb.VerifyPrivacyRequestRequest(request_id=opened.request_id, verification_status=VERIFIED),
        timeout=5,
    )
    assert verified.status == pb.PRIVACY_REQUEST_STATUS_IN_PROGRESS
    done = await status_when(stub, opened.request_id, COMPLETED)
    bundle = json.loads(done.access_bundle_json)
    assert bundle["format"] == "cxloop.access-bundle.v1" and bundle["customer_id"] == cid
    services = {s["service"]: s for s in bundle["services"]}
    assert set(services) == {"consent", "gateway"}
    (record,) = services["consent"]["data"]["consent_records"]
    assert record["purpose"] == "marketing_sms" and record["decision"] == "granted"
    assert services["gateway"]["categories"] == ["none"]
    # Access exports and deletes nothing.
    assert count(consent, RecordRow, cid) == 1


async def test_deadlines_extension_and_overdue_flag(
    suite: Starter, clean_consent_nats: str
) -> None:
    consent = await suite(
        privacy_participants="consent,gateway,loyalty", privacy_check_interval_s=0.1
    )
    stub = await stub_of(consent)
    pipa = await open_request(stub, str(uuid.uuid4()), ERASURE, jurisdiction=epb.JURISDICTION_PIPA)
    ccpa = await open_request(stub, str(uuid.uuid4()), ERASURE, jurisdiction=epb.JURISDICTION_CCPA)
    for r, days in ((pipa, 10), (ccpa, 45)):
        assert r.due_at.ToDatetime() - r.opened_at.ToDatetime() == timedelta(days=days)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ExtendPrivacyRequest(
            pb.ExtendPrivacyRequestRequest(request_id=pipa.request_id, reason="volume"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    extended = await stub.ExtendPrivacyRequest(
        pb.ExtendPrivacyRequestRequest(request_id=ccpa.request_id, reason="many systems"),
        timeout=5,
    )
    assert extended.due_at.ToDatetime() - ccpa.due_at.ToDatetime() == timedelta(days=45)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ExtendPrivacyRequest(
            pb.ExtendPrivacyRequestRequest(request_id=ccpa.request_id, reason="again"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Eleven days later the PIPA request (loyalty never answers) is overdue;
    # the extended CCPA one is not.
    privacy = consent.privacy  # type: ignore[attr-defined]
    real_clock = privacy.clock
    privacy.clock = lambda: real_clock() + timedelta(days=11)
    flagged = await status_when(stub, pipa.request_id, ESCALATED)

    async def overdue() -> bool:
        r = await stub.GetPrivacyRequestStatus(
            pb.GetPrivacyRequestStatusRequest(request_id=pipa.request_id), timeout=5
        )
        return r.overdue

    await eventually(overdue, timeout=5)
    other = await stub.GetPrivacyRequestStatus(
        pb.GetPrivacyRequestStatusRequest(request_id=ccpa.request_id), timeout=5
    )
    assert not other.overdue and other.extended and other.extension_reason == "many systems"
    assert flagged.escalation_reason == epb.PRIVACY_ESCALATION_REASON_PARTICIPANTS_SILENT


async def test_bad_privacy_requests_are_refused_naming_the_field(suite: Starter) -> None:
    consent = await suite(privacy_participants="consent,gateway")
    stub = await stub_of(consent)
    cases = [
        (dict(customer_id="", kind=ERASURE), "customer_id"),
        (dict(customer_id="a b", kind=ERASURE), "customer_id"),
        (dict(customer_id="c1", kind=0), "kind"),
        (dict(customer_id="c1", kind=ERASURE, jurisdiction=99), "jurisdiction"),
    ]
    for fields, name in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.OpenPrivacyRequest(pb.OpenPrivacyRequestRequest(**fields), timeout=5)  # type: ignore[arg-type]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert name in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetPrivacyRequestStatus(
            pb.GetPrivacyRequestStatusRequest(request_id=str(uuid.uuid4())), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_erasure_shreds_the_subject_key_so_an_old_stream_message_stays_unreadable(
    suite: Starter, clean_consent_nats: str
) -> None:
    consent = await suite(privacy_participants="consent,gateway")
    stub = await stub_of(consent)
    keyring = consent.keyring  # type: ignore[attr-defined]
    assert consent.db is not None
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    with consent.db.session() as s:
        sealed = keyring.seal(s, cid, b"hong@example.com", context=b"email")
        kept = keyring.seal(s, other, b"kim@example.com", context=b"email")
    # The raw value travels in an event body, sealed with the subject's key.
    nc = await nats.connect(clean_consent_nats)
    try:
        js = nc.jetstream()
        ack = await js.publish("cx.consent.test.sealed", sealed)
        opened = await open_request(stub, cid, ERASURE)
        done = await status_when(stub, opened.request_id, COMPLETED)
        answers = {p.participant: p for p in done.participants}
        assert answers["consent"].row_counts["subject_key"] == 1
        assert "subject_key" in answers["consent"].categories
        old = await js.get_msg("CONSENT", ack.seq)
        assert old.data == sealed  # the stream still holds the message ...
        with consent.db.session() as s, pytest.raises(KeyShredded):
            keyring.open(s, cid, old.data, context=b"email")  # ... but nobody can read it
        with consent.db.session() as s:
            assert keyring.open(s, other, kept, context=b"email") == b"kim@example.com"
    finally:
        await nc.close()
