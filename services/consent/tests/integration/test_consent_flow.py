"""Consent against real NATS JetStream and a real database (SQLite and
PostgreSQL): decisions in over gRPC, ledger and receipts, events out, and a
projection in another "service" that follows them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb
from google.protobuf.timestamp_pb2 import Timestamp

from consent.adapters.tables import RecordRow, StateRow
from consent.bootstrap import bootstrap
from consent.config import ConsentSettings
from consent.tests.conftest import start_consent
from cxloop_libs.consent import ConsentProjection, InvalidReceipt, verify_receipt
from cxloop_libs.messaging import NatsBus
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.tables import OutboxEvent
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

GRANTED = epb.CONSENT_DECISION_GRANTED
WITHDRAWN = epb.CONSENT_DECISION_WITHDRAWN
DENIED = epb.CONSENT_DECISION_DENIED
WEB = epb.CONSENT_CHANNEL_WEB_FORM


@pytest.fixture
async def consent(clean_consent_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    runtime = await start_consent(clean_consent_nats, database_url)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def stub(consent: ServiceRuntime) -> AsyncIterator[pb_grpc.ConsentServiceStub]:
    assert consent.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}") as ch:
        yield pb_grpc.ConsentServiceStub(ch)


@pytest.fixture
async def other_service(clean_consent_nats: str) -> AsyncIterator[ConsentProjection]:
    """A ConsentProjection as any other service would run it, on its own connection."""
    bus = NatsBus(clean_consent_nats, name="test-personalization")
    projection = ConsentProjection(bus)
    bus.start()
    import asyncio

    task = asyncio.create_task(projection.run())
    yield projection
    await projection.stop()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await bus.close()


def customer() -> str:
    return str(uuid.uuid4())


async def record(
    stub: pb_grpc.ConsentServiceStub,
    cid: str,
    purpose: str,
    decision: int,
    *,
    notice_version: str = "1",
    **extra: object,
) -> pb.RecordConsentResponse:
    return await stub.RecordConsent(
        pb.RecordConsentRequest(
            customer_id=cid,
            purpose=purpose,
            decision=decision,
            notice_version=notice_version,
            channel=WEB,
            **extra,  # type: ignore[arg-type]
        ),
        timeout=5,
    )


async def test_withdrawal_reaches_another_services_projection(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub, other_service: ConsentProjection
) -> None:
    await other_service.wait_ready(timeout=10)
    cid = customer()
    assert not other_service.may_use(cid, "marketing_email")  # never asked: no
    assert other_service.may_use(cid, "essential_service")  # contract: yes
    await record(
        stub,
        cid,
        "marketing_email",
        GRANTED,
        proof=pb.ConsentProof(ip_address="203.0.113.7", user_agent="Mozilla/5.0"),
    )
    await eventually(lambda: other_service.may_use(cid, "marketing_email"), timeout=20)
    await record(stub, cid, "marketing_email", WITHDRAWN)
    # How fast is the benchmark's question (bench/consent.py: withdrawal ->
    # another process's projection, p99 in milliseconds); a test never
    # asserts on wall-clock time, only that the withdrawal arrives.
    await eventually(lambda: not other_service.may_use(cid, "marketing_email"), timeout=20)
    assert other_service.version_of(cid) == 2


async def test_each_change_publishes_the_full_state_on_the_consent_stream(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub, clean_consent_nats: str
) -> None:
    cid = customer()
    first = await record(stub, cid, "marketing_sms", GRANTED)
    await record(stub, cid, "personalization", DENIED)
    nc = await nats.connect(clean_consent_nats)
    try:
        js = nc.jetstream()

        async def two() -> bool:
            # Count this subject only: the stream also carries notices and
            # retention reports (docs/adr/0019).
            subject = ev.CONSENT_CHANGED.subject
            info = await js.stream_info("CONSENT", subjects_filter=subject)
            return (info.state.subjects or {}).get(subject, 0) >= 2

        await eventually(two)
        sub = await js.pull_subscribe(ev.CONSENT_CHANGED.subject, stream="CONSENT")
        msgs = await sub.fetch(10, timeout=5)
        assert [m.headers["ce-type"] for m in msgs] == [ev.CONSENT_CHANGED.ce_type] * 2
        assert {m.headers["ce-subject"] for m in msgs} == {cid}
        bodies = sorted((ev.CONSENT_CHANGED.decode(m.data) for m in msgs), key=lambda b: b.version)
        assert [b.version for b in bodies] == [1, 2]
        assert bodies[0].record_id == first.record_id
        latest = {p.purpose: p.decision for p in bodies[1].purposes}
        assert latest == {"marketing_sms": GRANTED, "personalization": DENIED}
        assert bodies[1].changed_purpose == "personalization"
    finally:
        await nc.close()


async def test_receipt_verifies_with_the_published_key_and_a_tampered_one_does_not(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    r = await record(stub, cid, "third_party_provision", GRANTED)
    keys = await stub.GetReceiptKeys(pb.GetReceiptKeysRequest(), timeout=5)
    claims = verify_receipt(r.receipt_jws, keys.jwks_json)
    assert claims["piiPrincipalId"] == cid
    assert claims["consentReceiptID"] == r.record_id
    assert claims["version"] == "KI-CR-v1.1.0"
    (purpose,) = claims["services"][0]["purposes"]
    assert purpose["purpose"] == "third_party_provision"
    assert purpose["decision"] == "granted"
    assert purpose["noticeVersion"] == "1"
    assert purpose["thirdPartyDisclosure"] is True
    assert purpose["thirdParty"]["items"]
    header, payload, sig = r.receipt_jws.split(".")
    forged = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["services"][0]["purposes"][0]["decision"] = "withdrawn"
    body = __import__("base64").urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=")
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{header}.{body.decode()}.{sig}", keys.jwks_json)


async def test_check_batch_answers_in_request_order(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    yes, no, never = customer(), customer(), customer()
    await record(stub, yes, "marketing_push", GRANTED)
    await record(stub, no, "marketing_push", GRANTED)
    await record(stub, no, "marketing_push", WITHDRAWN)
    r = await stub.CheckBatch(
        pb.CheckBatchRequest(customer_ids=[never, yes, no], purpose="marketing_push"), timeout=5
    )
    assert [(v.customer_id, v.allowed, v.reason) for v in r.verdicts] == [
        (never, False, pb.CHECK_REASON_NO_DECISION),
        (yes, True, pb.CHECK_REASON_GRANTED),
        (no, False, pb.CHECK_REASON_WITHDRAWN),
    ]
    one = await stub.Check(pb.CheckRequest(customer_id=yes, purpose="analytics"), timeout=5)
    assert one.allowed and one.reason == pb.CHECK_REASON_LEGAL_BASIS


async def test_substantive_notice_change_asks_for_reconsent_everywhere(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub, other_service: ConsentProjection
) -> None:
    await other_service.wait_ready(timeout=10)
    cid = customer()
    await record(stub, cid, "profiling", GRANTED)
    await eventually(lambda: other_service.may_use(cid, "profiling"), timeout=5)
    handlers = consent.handlers  # type: ignore[attr-defined]
    assert consent.db is not None
    await consent.db.in_transaction(
        lambda s: handlers.publish_notice(
            s,
            "profiling",
            text_ko="[선택] 새 프로파일링",
            text_en="[Optional] new",
            substantive=True,
        )
    )
    assert consent.relay is not None
    consent.relay.notify()
    await eventually(lambda: not other_service.may_use(cid, "profiling"), timeout=5)
    check = await stub.Check(pb.CheckRequest(customer_id=cid, purpose="profiling"), timeout=5)
    assert check.reason == pb.CHECK_REASON_NOTICE_OUTDATED and not check.allowed
    prefs = await stub.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), timeout=5)
    state = next(p for p in prefs.purposes if p.purpose == "profiling")
    assert state.needs_reconsent and state.notice_version == "1"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(stub, cid, "profiling", GRANTED, notice_version="1")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "notice_version" in (err.value.details() or "")
    await record(stub, cid, "profiling", GRANTED, notice_version="2")
    await eventually(lambda: other_service.may_use(cid, "profiling"), timeout=5)


async def test_projection_started_later_rebuilds_from_the_bucket(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub, clean_consent_nats: str
) -> None:
    cids = [customer() for _ in range(5)]
    for cid in cids:
        await record(stub, cid, "marketing_email", GRANTED)
    await record(stub, cids[0], "marketing_email", WITHDRAWN)
    assert consent.relay is not None
    await eventually(lambda: consent.relay is not None and consent.relay.pending() == 0)
    bus = NatsBus(clean_consent_nats, name="test-late-starter")
    late = ConsentProjection(bus)
    import asyncio

    task = asyncio.create_task(late.run())
    try:
        await late.wait_ready(timeout=10)
        assert [late.may_use(c, "marketing_email") for c in cids] == [False, *[True] * 4]
        assert late.version_of(cids[0]) == 2
    finally:
        await late.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()


async def test_bad_requests_name_the_field_and_write_nothing(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    cases = [
        (dict(customer_id="", purpose="marketing_email"), "customer_id"),
        (dict(customer_id=cid, purpose="telepathy"), "purpose"),
        (dict(customer_id=cid, purpose="marketing_email", notice_version="7"), "notice_version"),
        (dict(customer_id=cid, purpose="marketing_email", notice_version="v1"), "notice_version"),
        (dict(customer_id=cid, purpose="marketing_email", decision=0), "decision"),
        (dict(customer_id=cid, purpose="essential_service", decision=WITHDRAWN), "decision"),
        (dict(customer_id=cid, purpose="marketing_email", channel=0), "channel"),
        (
            dict(
                customer_id=cid, purpose="marketing_email", proof=pb.ConsentProof(ip_hash="1.2.3.4")
            ),
            "proof.ip_hash",
        ),
    ]
    for fields, field in cases:
        req = pb.RecordConsentRequest(decision=GRANTED, notice_version="1", channel=WEB)
        for k, v in fields.items():
            if k == "proof":
                req.proof.CopyFrom(v)  # type: ignore[arg-type]
            else:
                setattr(req, k, v)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RecordConsent(req, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert (err.value.details() or "").startswith(field), (fields, err.value.details())
    for bad in (
        pb.CheckRequest(customer_id="", purpose="analytics"),
        pb.CheckRequest(customer_id=cid, purpose="telepathy"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Check(bad, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CheckBatch(pb.CheckBatchRequest(customer_ids=[], purpose="analytics"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert consent.db is not None
    with consent.db.session() as s:
        for table in (RecordRow, StateRow):
            assert s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
        assert (
            s.execute(
                sa.select(sa.func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.ce_type == ev.CONSENT_CHANGED.ce_type)
            ).scalar_one()
            == 0
        )


async def test_retry_with_the_same_idempotency_key_returns_the_first_record(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    a = await record(stub, cid, "marketing_app", GRANTED, idempotency_key="form-123")
    b = await record(stub, cid, "marketing_app", GRANTED, idempotency_key="form-123")
    assert (a.record_id, a.receipt_jws) == (b.record_id, b.receipt_jws)
    assert consent.db is not None
    with consent.db.session() as s:
        n = s.execute(
            sa.select(sa.func.count()).select_from(RecordRow).where(RecordRow.customer_id == cid)
        ).scalar_one()
    assert n == 1


async def test_preferences_list_every_purpose_and_the_catalogue_has_both_languages(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    await record(stub, cid, "marketing_email", GRANTED)
    prefs = await stub.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), timeout=5)
    by = {p.purpose: p for p in prefs.purposes}
    assert by["marketing_email"].decision == GRANTED
    assert by["marketing_email"].HasField("expires_at")  # marketing: two-year validity
    assert by["marketing_sms"].decision == epb.CONSENT_DECISION_UNSPECIFIED
    catalogue = await stub.ListPurposes(pb.ListPurposesRequest(), timeout=5)
    keys = {p.key for p in catalogue.purposes}
    assert {
        "essential_service",
        "analytics",
        "personalization",
        "marketing_email",
        "marketing_sms",
        "marketing_push",
        "marketing_app",
        "third_party_provision",
        "profiling",
    } <= keys
    for p in catalogue.purposes:
        assert p.notice.text_ko and p.notice.text_en
    tp = next(p for p in catalogue.purposes if p.key == "third_party_provision")
    assert tp.notice.third_party.recipient and tp.notice.third_party.retention


async def test_check_batch_from_the_view_agrees_with_the_ledger(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    # CheckBatch answers from memory once loaded, from the database before:
    # both must say the same for every kind of state.
    ids = [customer() for _ in range(6)]
    await record(stub, ids[0], "marketing_email", GRANTED)
    await record(stub, ids[1], "marketing_email", DENIED)
    await record(stub, ids[2], "marketing_email", GRANTED)
    await record(stub, ids[2], "marketing_email", WITHDRAWN)
    await record(stub, ids[3], "analytics", DENIED)
    now = int(time.time())
    await record(
        stub,
        ids[4],
        "marketing_email",
        GRANTED,
        decided_at=Timestamp(seconds=now - 7200),
        expires_at=Timestamp(seconds=now - 3600),
    )
    handlers = consent.handlers  # type: ignore[attr-defined]
    expired = await stub.Check(
        pb.CheckRequest(customer_id=ids[4], purpose="marketing_email"), timeout=5
    )
    assert expired.reason == pb.CHECK_REASON_EXPIRED
    assert consent.db is not None
    servicer_view = consent.grpc_server._servicers[0][1].view  # type: ignore[union-attr]
    for purpose in ("marketing_email", "analytics", "essential_service"):
        from_db = await consent.db.in_transaction(lambda s, p=purpose: handlers.check(s, ids, p))
        local = handlers.check_local(servicer_view, ids, purpose)
        assert [(r.customer_id, r.reason) for r in from_db] == [(c, r) for c, r, _ in local]
        assert [r.state.notice_version if r.state else 0 for r in from_db] == [
            v for _, _, v in local
        ]


async def test_projection_started_before_consent_waits_denies_then_follows(
    clean_consent_nats: str, database_url: str
) -> None:
    import asyncio

    bus = NatsBus(clean_consent_nats, name="test-early-starter")
    early = ConsentProjection(bus)
    task = asyncio.create_task(early.run())
    await asyncio.sleep(0.5)  # no bucket yet: consent has never run
    assert not early.is_ready
    assert not early.may_use("anyone", "essential_service")  # not ready: deny everything
    runtime = await bootstrap(
        ConsentSettings(
            env="test", nats_url=clean_consent_nats, database_url=database_url, grpc_port=0
        )
    )
    await runtime.start()
    try:
        await early.wait_ready(timeout=15)
        await eventually(lambda: early.may_use("anyone", "essential_service"), timeout=5)
        assert runtime.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            stub = pb_grpc.ConsentServiceStub(ch)
            await eventually(lambda: runtime.handlers.is_ready)  # type: ignore[attr-defined]
            cid = customer()
            await record(stub, cid, "personalization", GRANTED)
            await eventually(lambda: early.may_use(cid, "personalization"), timeout=20)
    finally:
        await early.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()
        await runtime.stop()


async def test_survey_contact_is_a_purpose_a_customer_can_grant_for_feedback_invitations(
    stub: pb_grpc.ConsentServiceStub,
) -> None:
    cid = customer()
    await record(stub, cid, "survey_contact", GRANTED)
    prefs = await stub.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), timeout=5)
    by = {p.purpose: p for p in prefs.purposes}
    assert by["survey_contact"].decision == GRANTED


async def test_preferences_from_memory_equal_the_ledger_read(
    clean_consent_nats: str, database_url: str
) -> None:
    """A replica answering from its view (the default) and one reading the
    ledger (CXLOOP_CONSENT_PREFERENCES_IN_MEMORY=false) on the same data
    answer alike, right after the writes (docs/adr/0310)."""
    memory = await start_consent(clean_consent_nats, database_url)
    ledger = await start_consent(clean_consent_nats, database_url, preferences_in_memory=False)
    try:
        assert memory.grpc_server is not None and ledger.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{memory.grpc_server.port}") as m_ch,
            grpc.aio.insecure_channel(f"127.0.0.1:{ledger.grpc_server.port}") as l_ch,
        ):
            m_stub = pb_grpc.ConsentServiceStub(m_ch)
            l_stub = pb_grpc.ConsentServiceStub(l_ch)
            cids = [customer() for _ in range(3)]
            await record(m_stub, cids[0], "marketing_email", GRANTED)
            await record(m_stub, cids[0], "analytics", DENIED)
            await record(m_stub, cids[1], "profiling", GRANTED)
            await record(m_stub, cids[1], "profiling", WITHDRAWN)
            for cid in [*cids, customer()]:
                request = pb.GetPreferencesRequest(customer_id=cid)
                from_memory = await m_stub.GetPreferences(request, timeout=5)
                from_ledger = await l_stub.GetPreferences(request, timeout=5)
                assert from_memory == from_ledger
            decided = await m_stub.GetPreferences(
                pb.GetPreferencesRequest(customer_id=cids[1]), timeout=5
            )
            by = {p.purpose: p for p in decided.purposes}
            assert by["profiling"].decision == WITHDRAWN
    finally:
        await ledger.stop()
        await memory.stop()
