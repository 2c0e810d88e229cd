"""Consent's audit log, notice publishing, receipt key rotation and unknown
subjects, over real gRPC with named tokens, real NATS and SQLite/PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.audit.v1 import audit_pb2 as apb
from cxloop.audit.v1 import events_pb2 as aepb
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.identity.v1 import events_pb2 as ipb

from consent.adapters.tables import RecordRow
from consent.tests.conftest import start_consent
from cxloop_libs.audit import AuditEventRow
from cxloop_libs.consent import verify_receipt
from cxloop_libs.consent.receipts import generate_signing_key_pem
from cxloop_libs.messaging import EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.tables import OutboxEvent
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

GRANTED = epb.CONSENT_DECISION_GRANTED
WEB = epb.CONSENT_CHANNEL_WEB_FORM
CALL_CENTRE = epb.CONSENT_CHANNEL_CALL_CENTRE
TOKENS = "callcentre:tok-callcentre,crm:tok-crm,privacy-office:tok-admin"
DESK = (("authorization", "Bearer tok-callcentre"),)
CRM = (("authorization", "Bearer tok-crm"),)
ADMIN = (("authorization", "Bearer tok-admin"),)


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def consent(clean_consent_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    runtime = await start_consent(
        clean_consent_nats, database_url, grpc_tokens=TOKENS, admin_callers="privacy-office"
    )
    yield runtime
    await runtime.stop()


@pytest.fixture
async def stub(consent: ServiceRuntime) -> AsyncIterator[pb_grpc.ConsentServiceStub]:
    assert consent.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}") as ch:
        yield pb_grpc.ConsentServiceStub(ch)


def audit_rows(runtime: ServiceRuntime, **where: str) -> list[Any]:
    assert runtime.db is not None
    t = AuditEventRow.__table__  # type: ignore[attr-defined]
    with runtime.db.session() as s:
        stmt = sa.select(t).order_by(t.c.id)
        for k, v in where.items():
            stmt = stmt.where(t.c[k] == v)
        return list(s.execute(stmt).all())


def count(runtime: ServiceRuntime, table: Any, *where: Any) -> int:
    assert runtime.db is not None
    with runtime.db.session() as s:
        stmt = sa.select(sa.func.count()).select_from(table)
        for w in where:
            stmt = stmt.where(w)
        return int(s.execute(stmt).scalar_one())


async def grant(
    stub: pb_grpc.ConsentServiceStub, cid: str, purpose: str = "marketing_email", **kw: Any
) -> pb.RecordConsentResponse:
    return await stub.RecordConsent(
        pb.RecordConsentRequest(
            customer_id=cid,
            purpose=purpose,
            decision=GRANTED,
            notice_version=kw.pop("notice_version", "1"),
            channel=kw.pop("channel", WEB),
        ),
        metadata=kw.pop("metadata", DESK),
        timeout=5,
    )


async def test_a_read_with_a_reason_leaves_an_audit_row_with_caller_agent_and_reason(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    await grant(stub, cid)
    nc = await nats.connect(consent.settings.nats_url)
    js = nc.jetstream()
    sub = await js.subscribe(ev.AUDIT_RECORDED["consent"].subject, ordered_consumer=True)
    try:
        await stub.GetPreferences(
            pb.GetPreferencesRequest(customer_id=cid),
            metadata=(
                *DESK,
                ("x-cxloop-actor", "agent-0042"),
                ("x-cxloop-reason", "ticket%20T-981%20%EB%AC%B8%EC%9D%98"),
            ),
            timeout=5,
        )
        reads = audit_rows(consent, subject=cid, action="read")
        assert len(reads) == 1
        row = reads[0]
        assert (row.actor, row.on_behalf_of, row.reason) == (
            "callcentre",
            "agent-0042",
            "ticket T-981 문의",
        )
        assert (row.resource, row.operation, row.outcome) == (
            "consent.preferences",
            "GetPreferences",
            "ok",
        )
        assert "marketing_email" in row.fields
        # The same entry reaches the stream (ids and names only).
        seen: list[aepb.AuditRecorded] = []
        while not any(e.entry.audit_id == row.audit_id for e in seen):
            msg = await sub.next_msg(timeout=5)
            entry = aepb.AuditRecorded()
            entry.ParseFromString(msg.data)
            seen.append(entry)
            assert msg.headers is not None and msg.headers["ce-subject"] == entry.entry.subject
        last = next(e.entry for e in seen if e.entry.audit_id == row.audit_id)
        assert last.action == apb.AUDIT_ACTION_READ and last.reason == "ticket T-981 문의"
    finally:
        await nc.close()
    # A read without a reason is still recorded, reason empty.
    await stub.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), metadata=CRM, timeout=5)
    last_read = audit_rows(consent, subject=cid, action="read")[-1]
    assert (last_read.actor, last_read.reason) == ("crm", "")


async def test_a_malformed_reason_header_is_refused_naming_it_and_nothing_is_written(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    for header, value in (("x-cxloop-reason", "x" * 501), ("x-cxloop-actor", "Jane Doe")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await grant(stub, cid, metadata=(*DESK, (header, value)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.details() or "").startswith(header)
    assert count(consent, RecordRow) == 0
    assert audit_rows(consent) == []


async def test_a_decision_and_its_audit_row_commit_together_or_not_at_all(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = customer()
    # A call-centre decision without proof.actor takes the agent from the header.
    await grant(stub, cid, channel=CALL_CENTRE, metadata=(*DESK, ("x-cxloop-actor", "agent-7")))
    (change,) = audit_rows(consent, subject=cid, action="change")
    assert (change.actor, change.on_behalf_of, change.operation) == (
        "callcentre",
        "agent-7",
        "RecordConsent",
    )
    assert count(consent, RecordRow, RecordRow.customer_id == cid) == 1
    assert count(consent, RecordRow, RecordRow.actor == "agent-7") == 1

    # The audit write fails after the ledger rows were inserted: neither stays.
    audit = consent.audit  # type: ignore[attr-defined]

    def broken(session: Any, entries: Any) -> int:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(audit, "write", broken)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await grant(stub, cid, purpose="marketing_sms")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    monkeypatch.undo()
    assert count(consent, RecordRow, RecordRow.customer_id == cid) == 1
    assert len(audit_rows(consent, subject=cid)) == 1
    assert (
        count(
            consent,
            OutboxEvent,
            OutboxEvent.ce_type == ev.CONSENT_CHANGED.ce_type,
            OutboxEvent.ce_subject == cid,
        )
        <= 1  # the first change's event (the relay may have sent it already)
    )


async def test_check_batch_writes_one_row_per_call_with_the_number_of_customers(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    known = customer()
    await grant(stub, known)
    ids = [known, *(customer() for _ in range(99))]
    resp = await stub.CheckBatch(
        pb.CheckBatchRequest(customer_ids=ids, purpose="marketing_email"), metadata=CRM, timeout=5
    )
    assert [v.known for v in resp.verdicts] == [True] + [False] * 99
    assert resp.verdicts[0].allowed and not resp.verdicts[1].allowed

    def batch_rows() -> list[Any]:
        return audit_rows(consent, operation="CheckBatch")

    await eventually(lambda: len(batch_rows()) == 1)
    (row,) = batch_rows()
    assert (row.actor, row.subject, row.subject_count) == ("crm", "", 100)
    # A single check of a never-seen customer answers the default, known=false.
    never = customer()
    check = await stub.Check(
        pb.CheckRequest(customer_id=never, purpose="analytics"), metadata=CRM, timeout=5
    )
    assert check.allowed and not check.known
    assert check.reason == pb.CHECK_REASON_LEGAL_BASIS
    (single,) = audit_rows(consent, subject=never)
    assert single.operation == "Check"


async def test_export_filters_by_subject_pages_and_is_for_admins_only(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    a, b = customer(), customer()
    for purpose in ("marketing_email", "marketing_sms", "marketing_push"):
        await grant(stub, a, purpose)
    await grant(stub, b)
    first = await stub.ExportAuditLog(
        pb.ExportAuditLogRequest(subject=a, page_size=2), metadata=ADMIN, timeout=5
    )
    assert [e.subject for e in first.entries] == [a, a]
    assert first.next_page_token
    rest = await stub.ExportAuditLog(
        pb.ExportAuditLogRequest(subject=a, page_size=2, page_token=first.next_page_token),
        metadata=ADMIN,
        timeout=5,
    )
    # The first export is itself an entry about the customer.
    assert [e.operation for e in rest.entries] == ["RecordConsent", "ExportAuditLog"]
    assert not rest.next_page_token
    changes = [e for e in [*first.entries, *rest.entries] if e.operation == "RecordConsent"]
    assert {e.fields[0] for e in changes} == {
        "purpose:marketing_email",
        "purpose:marketing_sms",
        "purpose:marketing_push",
    }
    by_actor = await stub.ExportAuditLog(
        pb.ExportAuditLogRequest(actor="callcentre", action=apb.AUDIT_ACTION_CHANGE),
        metadata=ADMIN,
        timeout=5,
    )
    assert sorted({e.subject for e in by_actor.entries}) == sorted({a, b})
    # The export itself is on record.
    exports = audit_rows(consent, operation="ExportAuditLog")
    assert len(exports) == 2 + 1 and exports[0].actor == "privacy-office"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ExportAuditLog(pb.ExportAuditLogRequest(subject=a), metadata=CRM, timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ExportAuditLog(
            pb.ExportAuditLogRequest(page_token="garbage"), metadata=ADMIN, timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("page_token")


async def test_privacy_request_for_an_unknown_subject_is_refused_and_writes_nothing(
    consent: ServiceRuntime,
    stub: pb_grpc.ConsentServiceStub,
    identity_events: EventPublisher,
) -> None:
    stranger = customer()
    request = pb.OpenPrivacyRequestRequest(
        customer_id=stranger,
        kind=epb.PRIVACY_REQUEST_KIND_ACCESS,
        jurisdiction=epb.JURISDICTION_GDPR,
        verification_status=pb.VERIFICATION_STATUS_VERIFIED,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.OpenPrivacyRequest(request, metadata=DESK, timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (err.value.details() or "").startswith("customer_id")
    assert audit_rows(consent, subject=stranger) == []
    assert count(consent, OutboxEvent, OutboxEvent.ce_subject == stranger) == 0

    # Once identity announces the customer, the same request is accepted.
    await identity_events.publish(
        PendingEvent.of(
            ev.PROFILE_CREATED, ipb.ProfileCreated(customer_id=stranger), subject=stranger
        )
    )

    async def opened() -> bool:
        try:
            await stub.OpenPrivacyRequest(request, metadata=DESK, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    await eventually(opened)
    (row,) = audit_rows(consent, subject=stranger, operation="OpenPrivacyRequest")
    assert (row.action, row.actor) == ("change", "callcentre")


async def test_publish_notice_asks_for_reconsent_and_refuses_bad_input(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    await grant(stub, cid, "profiling")
    published = await stub.PublishNotice(
        pb.PublishNoticeRequest(
            purpose="profiling", text_ko="새 안내", text_en="New notice", substantive=True
        ),
        metadata=ADMIN,
        timeout=5,
    )
    assert published.notice.version == "2" and published.reconsent_from_version == "2"
    prefs = await stub.GetPreferences(
        pb.GetPreferencesRequest(customer_id=cid), metadata=DESK, timeout=5
    )
    state = next(p for p in prefs.purposes if p.purpose == "profiling")
    assert state.needs_reconsent
    # A grant citing the superseded text is refused, naming the field.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await grant(stub, cid, "profiling", notice_version="1")
    assert err.value.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "notice_version" in (err.value.details() or "")
    await grant(stub, cid, "profiling", notice_version="2")
    (row,) = audit_rows(consent, operation="PublishNotice")
    assert (row.actor, row.action, row.resource) == ("privacy-office", "change", "consent.notice")

    bad = [
        (dict(purpose="telepathy", text_ko="가", text_en="a"), "purpose"),
        (dict(purpose="profiling", text_ko="", text_en="a"), "text_ko"),
        (dict(purpose="profiling", text_ko="가", text_en=" "), "text_en"),
        (
            dict(
                purpose="profiling",
                text_ko="가",
                text_en="a",
                third_party=pb.ThirdPartyProvision(
                    recipient="x", purpose="y", items=["z"], retention="1y"
                ),
            ),
            "third_party",
        ),
        (
            dict(
                purpose="third_party_provision",
                text_ko="가",
                text_en="a",
                third_party=pb.ThirdPartyProvision(
                    recipient="Partner", purpose="ads", retention="1 year"
                ),
            ),
            "third_party.items",
        ),
    ]
    for fields, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.PublishNotice(
                pb.PublishNoticeRequest(**fields),  # type: ignore[arg-type]
                metadata=ADMIN,
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert (err.value.details() or "").startswith(field), err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PublishNotice(
            pb.PublishNoticeRequest(purpose="profiling", text_ko="가", text_en="a"),
            metadata=DESK,
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    purposes = await stub.ListPurposes(pb.ListPurposesRequest(), metadata=DESK, timeout=5)
    # None of the refused calls wrote a version.
    assert next(p for p in purposes.purposes if p.key == "profiling").notice.version == "2"


async def test_receipt_key_rotation_keeps_old_receipts_verifiable(
    clean_consent_nats: str, database_url: str
) -> None:
    configured = generate_signing_key_pem()

    async def start() -> ServiceRuntime:
        return await start_consent(
            clean_consent_nats,
            database_url,
            grpc_tokens=TOKENS,
            admin_callers="privacy-office",
            signing_key=configured,
        )

    consent = await start()
    try:
        assert consent.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}") as ch:
            stub = pb_grpc.ConsentServiceStub(ch)
            cid = customer()
            before = await grant(stub, cid)
            old_kid = header_kid(before.receipt_jws)
            rotated = await stub.RotateReceiptKey(
                pb.RotateReceiptKeyRequest(), metadata=ADMIN, timeout=5
            )
            assert rotated.kid != old_kid
            after = await grant(stub, cid, "marketing_sms")
            assert header_kid(after.receipt_jws) == rotated.kid
            jwks = (
                await stub.GetReceiptKeys(pb.GetReceiptKeysRequest(), metadata=CRM, timeout=5)
            ).jwks_json
            assert verify_receipt(before.receipt_jws, jwks)["piiPrincipalId"] == cid
            assert verify_receipt(after.receipt_jws, jwks)["piiPrincipalId"] == cid
            (row,) = audit_rows(consent, operation="RotateReceiptKey")
            assert row.actor == "privacy-office"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.RotateReceiptKey(pb.RotateReceiptKeyRequest(), metadata=CRM, timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await consent.stop()

    # A restarted replica with the same configuration signs with the rotated
    # key (sealed in its database) and still publishes the old one.
    again = await start()
    try:
        keys = again.receipt_keys  # type: ignore[attr-defined]
        await eventually(lambda: keys.kid == rotated.kid)
        assert [k["kid"] for k in keys.jwks()["keys"]] == [rotated.kid, old_kid]
    finally:
        await again.stop()


def header_kid(token: str) -> str:
    import base64
    import json

    head = token.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return str(data["kid"])


async def test_audit_rows_cannot_be_changed(
    consent: ServiceRuntime, stub: pb_grpc.ConsentServiceStub
) -> None:
    cid = customer()
    await grant(stub, cid)
    assert consent.db is not None
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with consent.db.session() as s:
            s.execute(sa.text("UPDATE audit_event SET reason = 'rewritten'"))
            s.commit()
    assert audit_rows(consent, subject=cid)[0].reason == ""
