"""Retention on real NATS and a real database: consent's SetRetentionPolicy
publishes the policy (event + bucket), services' streams take the new max
age, consent's own purge deletes superseded ledger records and closed privacy
requests older than the period in bounded batches and keeps everything newer
or still in force; a service starting later reads the policy from the bucket;
bad input is refused naming the field, with nothing written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.consent.v1 import retention_service_pb2 as pb
from cxloop.consent.v1 import retention_service_pb2_grpc as pb_grpc

from consent.adapters.tables import PrivacyAnswerRow, PrivacyRequestRow, RecordRow, StateRow
from consent.tests.conftest import start_consent
from cxloop_libs.messaging import NatsBus, stream_for
from cxloop_libs.messaging.streams import DAY_S
from cxloop_libs.privacy.retention import RetentionSchedule
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
async def consent(clean_consent_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    runtime = await start_consent(
        clean_consent_nats, database_url, retention_batch_size=100, retention_interval_s=3600
    )
    yield runtime
    await runtime.stop()


def stub_of(runtime: ServiceRuntime) -> pb_grpc.RetentionServiceStub:
    assert runtime.grpc_server is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}")
    return pb_grpc.RetentionServiceStub(channel)


async def max_age_days(bus: NatsBus, stream: str) -> float:
    info = await bus.js.stream_info(stream)
    assert info.config.max_age is not None
    return info.config.max_age / DAY_S


def record(cid: str, purpose: str, decision: str, decided: datetime) -> dict[str, object]:
    return {
        "record_id": str(uuid.uuid4()),
        "customer_id": cid,
        "purpose": purpose,
        "notice_version": 1,
        "decision": decision,
        "channel": "web_form",
        "decided_at": decided,
        "recorded_at": decided,
        "ip_hash": "",
        "user_agent_hash": "",
        "actor": "",
        "receipt_jws": "x",
        "gpc_conflict": False,
        "derived_from": "",
    }


def state_of(r: dict[str, object]) -> dict[str, object]:
    keys = ("customer_id", "purpose", "decision", "notice_version", "channel", "decided_at")
    return {**{k: r[k] for k in keys}, "record_id": r["record_id"], "gpc_conflict": False}


def seed_ledger(runtime: ServiceRuntime) -> dict[str, str]:
    """250 customers whose grant was withdrawn 6 years ago (the grant is
    superseded beyond the 5-year period), plus the cases that must stay."""
    years = 365
    rows: list[dict[str, object]] = []
    states: list[dict[str, object]] = []
    for i in range(250):
        grant = record(f"old-{i}", "marketing_email", "granted", NOW - timedelta(days=7 * years))
        withdrawal = record(
            f"old-{i}", "marketing_email", "withdrawn", NOW - timedelta(days=6 * years)
        )
        rows += [grant, withdrawal]
        states.append(state_of(withdrawal))
    # Replaced only 2 years ago: still proof within the period.
    recent_grant = record("recent", "personalization", "granted", NOW - timedelta(days=8 * years))
    recent_denial = record("recent", "personalization", "denied", NOW - timedelta(days=2 * years))
    # A grant from 10 years ago that still decides (never replaced).
    standing = record("standing", "analytics", "denied", NOW - timedelta(days=10 * years))
    rows += [recent_grant, recent_denial, standing]
    states += [state_of(recent_denial), state_of(standing)]
    assert runtime.db is not None
    with runtime.db.session() as s:
        s.execute(sa.insert(RecordRow.__table__), rows)  # type: ignore[attr-defined]
        s.execute(sa.insert(StateRow.__table__), states)  # type: ignore[attr-defined]
    return {
        "recent_grant": str(recent_grant["record_id"]),
        "recent_denial": str(recent_denial["record_id"]),
        "standing": str(standing["record_id"]),
    }


def seed_requests(runtime: ServiceRuntime) -> None:
    def request(rid: str, closed: datetime | None, status: str) -> dict[str, object]:
        return {
            "request_id": rid,
            "customer_id": "c",
            "kind": "erasure",
            "jurisdiction": "PIPA",
            "status": status,
            "verification": "verified",
            "verification_method": "",
            "actor": "",
            "opened_at": NOW - timedelta(days=5 * 365),
            "due_at": NOW - timedelta(days=5 * 365 - 10),
            "closed_at": closed,
            "extended": False,
            "extension_reason": "",
        }

    requests = [
        request("closed-long-ago", NOW - timedelta(days=4 * 365), "completed"),
        request("closed-lately", NOW - timedelta(days=30), "completed"),
        request("still-open", None, "escalated"),
    ]
    answers = [
        {
            "request_id": r["request_id"],
            "participant": p,
            "state": "done",
            "categories": "[]",
            "row_counts": "{}",
            "detail": "",
        }
        for r in requests
        for p in ("consent", "identity", "gateway")
    ]
    assert runtime.db is not None
    with runtime.db.session() as s:
        s.execute(sa.insert(PrivacyRequestRow.__table__), requests)  # type: ignore[attr-defined]
        s.execute(sa.insert(PrivacyAnswerRow.__table__), answers)  # type: ignore[attr-defined]


async def test_a_policy_change_reaches_every_stream_and_consent_purges_by_it(
    consent: ServiceRuntime, clean_consent_nats: str
) -> None:
    retention: RetentionSchedule = consent.retention  # type: ignore[attr-defined]
    # At start consent puts the seeded policy into the bucket and follows it.
    first = await retention.wait_rounds(1, timeout=20)
    assert first.policy_version == 1
    kept = seed_ledger(consent)
    seed_requests(consent)

    # Another service (any with a stream) following the same bucket.
    loyalty_bus = NatsBus(clean_consent_nats, name="test-loyalty", streams=[stream_for("loyalty")])
    await loyalty_bus.connect(timeout=10)
    loyalty = RetentionSchedule("loyalty", bus=loyalty_bus, stream="LOYALTY")
    loyalty_task = asyncio.ensure_future(loyalty.run())
    await loyalty.wait_rounds(1, timeout=20)
    assert await max_age_days(loyalty_bus, "LOYALTY") == pytest.approx(30)

    events = await loyalty_bus.js.subscribe(
        "cx.consent.retention_policy.changed", ordered_consumer=True
    )
    stub = stub_of(consent)
    resp = await stub.SetRetentionPolicy(
        pb.SetRetentionPolicyRequest(category_days={"interactions": 7}, actor="dpo-42"), timeout=5
    )
    assert resp.policy.version == 2 and resp.policy.category_days["interactions"] == 7
    assert resp.policy.category_days["consent_ledger"] == 5 * 365  # the rest kept
    assert resp.policy.changed_by == "dpo-42"

    # The event on the CONSENT stream carries the full policy.
    msg = await events.next_msg(timeout=10)
    changed = epb.RetentionPolicyChanged.FromString(msg.data)
    assert changed.policy.version == 2 and dict(changed.policy.category_days) == dict(
        resp.policy.category_days
    )
    # Both services' streams follow, and both run a round at once.
    report = await retention.wait_rounds(2, timeout=20)
    await loyalty.wait_rounds(2, timeout=20)
    assert report.policy_version == 2
    assert await max_age_days(loyalty_bus, "LOYALTY") == pytest.approx(7)
    assert await max_age_days(consent.bus, "CONSENT") == pytest.approx(7)

    # Consent's purge: 250 superseded grants (3 batches of at most 100),
    # everything in force or replaced within the period stays.
    assert report.rows["consent_ledger"] == 250 and report.batches["consent_ledger"] == 3
    assert report.rows["privacy_requests"] == 4  # one request and its 3 answers
    assert consent.db is not None
    with consent.db.session() as s:
        ids = set(s.execute(sa.select(RecordRow.record_id)).scalars())  # type: ignore[call-overload]
        requests = set(s.execute(sa.select(PrivacyRequestRow.request_id)).scalars())  # type: ignore[call-overload]
        answers = s.execute(sa.select(sa.func.count()).select_from(PrivacyAnswerRow)).scalar_one()
    assert len(ids) == 250 + 3 and set(kept.values()) <= ids  # 250 withdrawals + 3 kept
    assert requests == {"closed-lately", "still-open"} and answers == 6

    # A service starting now reads version 2 from the bucket.
    late = RetentionSchedule("feedback", bus=loyalty_bus)
    late_task = asyncio.ensure_future(late.run())
    assert (await late.wait_policy(timeout=20)).category_days["interactions"] == 7
    for s_, t in ((loyalty, loyalty_task), (late, late_task)):
        await s_.stop()
        await t
    await events.unsubscribe()
    await loyalty_bus.close()


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            pb.SetRetentionPolicyRequest(category_days={"interactions": -1}),
            "category_days.interactions",
        ),
        (pb.SetRetentionPolicyRequest(category_days={"forever": 10}), "category_days.forever"),
        (pb.SetRetentionPolicyRequest(purpose_days={"astrology": 10}), "purpose_days.astrology"),
        (pb.SetRetentionPolicyRequest(purpose_days={"analytics": 0}), "purpose_days.analytics"),
        (pb.SetRetentionPolicyRequest(), "category_days"),
    ],
)
async def test_bad_policy_input_names_the_field_and_writes_nothing(
    consent: ServiceRuntime, request_: pb.SetRetentionPolicyRequest, field: str
) -> None:
    stub = stub_of(consent)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SetRetentionPolicy(request_, timeout=5)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (exc.value.details() or "")
    policy = (await stub.GetRetentionPolicy(pb.GetRetentionPolicyRequest(), timeout=5)).policy
    assert policy.version == 1 and policy.category_days["interactions"] == 30


async def test_the_bucket_holds_the_seeded_policy_after_the_first_start(
    consent: ServiceRuntime, clean_consent_nats: str
) -> None:
    nc = await nats.connect(clean_consent_nats)
    try:
        kv = await nc.jetstream().key_value("RETENTION_POLICY")

        async def entry() -> bytes | None:
            try:
                return (await kv.get("policy")).value
            except Exception:
                return None

        value = await eventually(entry)
        policy = epb.RetentionPolicyChanged.FromString(value).policy
        assert policy.version == 1 and policy.purpose_days["marketing_email"] == 730
        assert policy.changed_by == "migration:0007"
    finally:
        await nc.close()
