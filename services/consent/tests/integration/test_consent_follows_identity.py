"""Consent follows identity on real NATS and a real database: a GPC signal on
a resolved interaction opts the customer out of sale/share and targeted
marketing (once, idempotently); an explicit later grant stands, flagged as
conflicting; a merge gives the survivor the stricter decision; a split gives
each profile its own history back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as idp
from google.protobuf.message import Message

from consent.adapters.tables import RecordRow
from consent.tests.conftest import start_consent
from cxloop_libs.messaging import EventKind, EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

GRANTED = epb.CONSENT_DECISION_GRANTED
DENIED = epb.CONSENT_DECISION_DENIED
WITHDRAWN = epb.CONSENT_DECISION_WITHDRAWN
GPC = epb.CONSENT_CHANNEL_GPC_SIGNAL
GPC_PURPOSES = {
    "third_party_provision",
    "marketing_email",
    "marketing_sms",
    "marketing_push",
    "marketing_app",
}


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


def customer() -> str:
    return str(uuid.uuid4())


async def publish(pub: EventPublisher, kind: EventKind, msg: Message, subject: str = "") -> str:
    event = PendingEvent.of(kind, msg, subject=subject)
    await pub.publish(event)
    return event.event_id


async def resolved(pub: EventPublisher, cid: str, *, gpc: bool) -> str:
    interaction = gw.InteractionRecorded(
        message_id=str(uuid.uuid4()),
        kind=gw.INTERACTION_KIND_PAGE,
        name="home",
        global_privacy_control=gpc,
    )
    interaction.received_at.GetCurrentTime()
    msg = idp.InteractionResolved(customer_id=cid, interaction=interaction)
    return await publish(pub, ev.INTERACTION_RESOLVED, msg, cid)


async def decide(
    stub: pb_grpc.ConsentServiceStub, cid: str, purpose: str, decision: int
) -> pb.RecordConsentResponse:
    return await stub.RecordConsent(
        pb.RecordConsentRequest(
            customer_id=cid,
            purpose=purpose,
            decision=decision,
            notice_version="1" if decision == GRANTED else "",
            channel=epb.CONSENT_CHANNEL_WEB_FORM,
        ),
        timeout=5,
    )


async def prefs(stub: pb_grpc.ConsentServiceStub, cid: str) -> dict[str, epb.PurposeState]:
    r = await stub.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), timeout=5)
    return {p.purpose: p for p in r.purposes}


def ledger_rows(runtime: ServiceRuntime, cid: str) -> int:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count())
                .select_from(RecordRow)
                .where(RecordRow.customer_id == cid)  # type: ignore[arg-type]
            ).scalar_one()
        )


async def test_gpc_opts_out_of_sale_share_and_targeted_marketing_once(
    consent: ServiceRuntime,
    stub: pb_grpc.ConsentServiceStub,
    identity_events: EventPublisher,
) -> None:
    cid, quiet = customer(), customer()
    await decide(stub, cid, "marketing_email", GRANTED)
    await decide(stub, cid, "personalization", GRANTED)
    await resolved(identity_events, quiet, gpc=False)
    await resolved(identity_events, cid, gpc=True)

    async def opted_out() -> dict[str, epb.PurposeState] | None:
        p = await prefs(stub, cid)
        return p if all(p[k].channel == GPC for k in GPC_PURPOSES) else None

    p = await eventually(opted_out, timeout=10)
    assert p["marketing_email"].decision == WITHDRAWN  # a grant stood: withdrawn
    assert p["third_party_provision"].decision == DENIED  # nothing stood: denied
    assert p["personalization"].decision == GRANTED  # not a GPC purpose
    assert p["analytics"].decision == epb.CONSENT_DECISION_UNSPECIFIED
    rows = ledger_rows(consent, cid)
    assert rows == 2 + len(GPC_PURPOSES)
    assert ledger_rows(consent, quiet) == 0
    # Every later page view carries the header again: nothing more is written.
    for _ in range(3):
        await resolved(identity_events, cid, gpc=True)
    gpc_consumer = next(c for c in consent.consumers if c.spec.durable == "consent-gpc")
    await eventually(lambda: gpc_consumer.processed >= 5, timeout=10)
    assert ledger_rows(consent, cid) == rows
    # The check everyone uses agrees.
    check = await stub.Check(
        pb.CheckRequest(customer_id=cid, purpose="third_party_provision"), timeout=5
    )
    assert not check.allowed and check.reason == pb.CHECK_REASON_DENIED


async def test_explicit_grant_after_gpc_stands_flagged_as_conflicting(
    consent: ServiceRuntime,
    stub: pb_grpc.ConsentServiceStub,
    identity_events: EventPublisher,
) -> None:
    cid = customer()
    await resolved(identity_events, cid, gpc=True)
    await eventually(lambda: ledger_rows(consent, cid) == len(GPC_PURPOSES), timeout=10)
    granted = await decide(stub, cid, "marketing_sms", GRANTED)
    assert granted.conflicts_with_gpc
    other = await decide(stub, cid, "personalization", GRANTED)
    assert not other.conflicts_with_gpc  # not a GPC purpose
    await resolved(identity_events, cid, gpc=True)
    gpc_consumer = next(c for c in consent.consumers if c.spec.durable == "consent-gpc")
    await eventually(lambda: gpc_consumer.processed >= 2, timeout=10)
    p = await prefs(stub, cid)
    assert p["marketing_sms"].decision == GRANTED
    assert p["marketing_sms"].conflicts_with_gpc
    assert p["marketing_email"].decision == DENIED
    check = await stub.Check(pb.CheckRequest(customer_id=cid, purpose="marketing_sms"), timeout=5)
    assert check.allowed


async def test_merge_stricter_wins_and_split_restores_each_history(
    consent: ServiceRuntime,
    stub: pb_grpc.ConsentServiceStub,
    identity_events: EventPublisher,
) -> None:
    survivor, merged = customer(), customer()
    await decide(stub, survivor, "marketing_email", GRANTED)
    await decide(stub, survivor, "personalization", GRANTED)
    await decide(stub, merged, "marketing_email", DENIED)
    await decide(stub, merged, "analytics", WITHDRAWN)
    await decide(stub, merged, "profiling", GRANTED)
    merged_before = await prefs(stub, merged)

    await publish(
        identity_events,
        ev.PROFILE_MERGED,
        idp.ProfileMerged(
            surviving_customer_id=survivor, merged_customer_ids=[merged], reason="email"
        ),
        survivor,
    )

    async def took_refusals() -> dict[str, epb.PurposeState] | None:
        p = await prefs(stub, survivor)
        return p if p["marketing_email"].decision == WITHDRAWN else None

    p = await eventually(took_refusals, timeout=10)
    assert p["analytics"].decision == WITHDRAWN  # an objection travels
    assert p["personalization"].decision == GRANTED  # the survivor's own grant stays
    assert p["profiling"].decision == epb.CONSENT_DECISION_UNSPECIFIED  # grants never travel
    rows = ledger_rows(consent, survivor)

    await publish(
        identity_events,
        ev.PROFILE_SPLIT,
        idp.ProfileSplit(
            original_customer_id=survivor, resulting_customer_ids=[survivor, merged], reason="x"
        ),
        survivor,
    )

    async def restored() -> dict[str, epb.PurposeState] | None:
        p = await prefs(stub, survivor)
        return p if p["marketing_email"].decision == GRANTED else None

    p = await eventually(restored, timeout=10)
    assert p["analytics"].decision == epb.CONSENT_DECISION_UNSPECIFIED  # it had none of its own
    assert p["personalization"].decision == GRANTED
    assert ledger_rows(consent, survivor) == rows + 1  # restored by a new record
    assert await prefs(stub, merged) == merged_before  # the other kept its own throughout
    with consent.db.session() as s:  # type: ignore[union-attr]
        tags = {
            r.derived_from
            for r in s.execute(
                sa.select(RecordRow).where(RecordRow.customer_id == survivor)
            ).scalars()  # type: ignore[arg-type]
        }
    assert tags == {"", f"merge:{merged}", f"split:{merged}"}


async def test_a_profile_new_from_a_split_starts_with_the_originals_refusals(
    consent: ServiceRuntime,
    stub: pb_grpc.ConsentServiceStub,
    identity_events: EventPublisher,
) -> None:
    # identity's Split moves identifiers to a customer id it mints there.
    original, minted = customer(), customer()
    await decide(stub, original, "analytics", DENIED)
    await decide(stub, original, "marketing_email", GRANTED)
    await publish(
        identity_events,
        ev.PROFILE_SPLIT,
        idp.ProfileSplit(
            original_customer_id=original, resulting_customer_ids=[original, minted], reason="x"
        ),
        original,
    )

    async def inherited() -> dict[str, epb.PurposeState] | None:
        p = await prefs(stub, minted)
        return p if p["analytics"].decision == DENIED else None

    p = await eventually(inherited, timeout=10)
    assert p["marketing_email"].decision == epb.CONSENT_DECISION_UNSPECIFIED  # no grant
    assert (await prefs(stub, original))["marketing_email"].decision == GRANTED
