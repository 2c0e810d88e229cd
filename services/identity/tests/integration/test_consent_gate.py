"""CXLOOP_IDENTITY_LINK_REQUIRES_MARKETING_CONSENT (docs/adr/0021), with the
real consent service, real NATS and a real database (SQLite and PostgreSQL):
a new email (phone) is not linked to a customer who refused or withdrew
``marketing_email`` (``marketing_sms``); the refusal is recorded like a
merge-protection block (``blocked:consent``) and counted; customers who did
not object, other identifier types and a re-grant link as usual."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cpb_grpc
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from consent.tests.conftest import start_consent
from cxloop_libs.consent import Reason
from cxloop_libs.messaging import EventPublisher
from cxloop_libs.pii import IdType
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.service_layer.consent_gate import MarketingConsentGate
from identity.tests.integration.test_identity_flow import HASHER, interaction

pytestmark = pytest.mark.integration


class Gated:
    def __init__(self, identity: ServiceRuntime, consent: ServiceRuntime) -> None:
        assert identity.grpc_server is not None and consent.grpc_server is not None
        self.identity = identity
        self.stub = pb_grpc.IdentityServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}")
        )
        self.consent = cpb_grpc.ConsentServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}")
        )
        gate = identity.consent_gate  # type: ignore[attr-defined]
        assert isinstance(gate, MarketingConsentGate)
        self.gate = gate

    async def owner(self, id_type: int, value: str) -> str | None:
        try:
            r = await self.stub.LookupByIdentifier(
                pb.LookupByIdentifierRequest(identifier=idpb.Identifier(type=id_type, value=value)),
                timeout=5,
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return None
        return str(r.customer_id)

    async def decide(self, cid: str, purpose: str, decision: int, expect: Reason) -> None:
        await self.consent.RecordConsent(
            cpb.RecordConsentRequest(
                customer_id=cid,
                purpose=purpose,
                decision=decision,
                notice_version="1",
                channel=cev.CONSENT_CHANNEL_WEB_FORM,
            ),
            timeout=5,
        )
        # Identity's own projection has it (how fast is the consent bench's
        # question; a test does not assert on wall-clock time).
        await eventually(lambda: self.gate.projection.verdict(cid, purpose) == expect, timeout=20)

    def consent_blocks(self, customer_id: str) -> int:
        assert self.identity.db is not None
        t = sa.table("identity_link", sa.column("customer_id"), sa.column("rule"))
        with self.identity.db.session() as s:
            return int(
                s.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.customer_id == customer_id, t.c.rule == "blocked:consent")
                ).scalar_one()
            )


@pytest.fixture
async def gated(
    clean_nats: str, database_url: str, tmp_path: Path, gateway_publisher: EventPublisher
) -> AsyncIterator[Gated]:
    identity = await bootstrap(
        IdentitySettings(
            env="test",
            nats_url=clean_nats,
            database_url=database_url,
            grpc_port=0,
            metrics_port=0,
            link_requires_marketing_consent=True,
        )
    )
    await identity.start()
    await identity.db_ready.wait()
    # Consent's own database is not what is tested here: SQLite.
    consent = await start_consent(clean_nats, f"sqlite:///{tmp_path / 'consent.db'}")
    g = Gated(identity, consent)
    await g.gate.projection.wait_ready(timeout=10)
    yield g
    await consent.stop()
    await identity.stop()


async def test_new_marketing_identifiers_of_an_objector_are_not_linked(
    gated: Gated, gateway_publisher: EventPublisher
) -> None:
    tag = uuid.uuid4().hex[:8]
    user, other = f"u-{tag}", f"o-{tag}"
    e1, e2, e3, e4 = (f"{n}-{tag}@example.com" for n in ("first", "second", "third", "fourth"))
    p1, p2 = "010-2345-6789", "010-3456-7890"
    await gateway_publisher.publish(interaction(f"m1-{tag}", user_id=user, email=e1))
    cid = await eventually(lambda: gated.owner(idpb.IDENTIFIER_TYPE_USER_ID, user))
    assert await gated.owner(idpb.IDENTIFIER_TYPE_EMAIL, e1) == cid  # no decision: linked

    await gated.decide(cid, "marketing_email", cev.CONSENT_DECISION_DENIED, Reason.DENIED)
    # A new email is refused; a new phone (SMS not refused) and a new device link.
    await gateway_publisher.publish(
        interaction(f"m2-{tag}", user_id=user, email=e2, phone=p1, anonymous_id=f"a-{tag}")
    )
    # Another customer with no refusal links a new email as usual.
    await gateway_publisher.publish(interaction(f"m3-{tag}", user_id=other, email=e3))
    other_cid = await eventually(lambda: gated.owner(idpb.IDENTIFIER_TYPE_EMAIL, e3))
    assert other_cid != cid
    assert await gated.owner(idpb.IDENTIFIER_TYPE_PHONE, p1) == cid
    assert await gated.owner(idpb.IDENTIFIER_TYPE_ANONYMOUS_ID, f"a-{tag}") == cid
    assert await gated.owner(idpb.IDENTIFIER_TYPE_EMAIL, e2) is None
    assert await gated.owner(idpb.IDENTIFIER_TYPE_EMAIL, e1) == cid  # linked before: stays
    # Recorded as a refused link, with its reason, and counted.
    assert gated.consent_blocks(cid) == 1
    assert gated.consent_blocks(other_cid) == 0
    stats = await gated.stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.blocked_links >= 1
    profile = (
        await gated.stub.GetProfile(pb.GetProfileRequest(customer_id=cid), timeout=5)
    ).profile
    assert HASHER.hash(IdType.EMAIL, e2) not in {i.hash for i in profile.identifiers}

    # Withdrawing SMS marketing refuses the next new phone the same way.
    await gated.decide(cid, "marketing_sms", cev.CONSENT_DECISION_GRANTED, Reason.GRANTED)
    await gated.decide(cid, "marketing_sms", cev.CONSENT_DECISION_WITHDRAWN, Reason.WITHDRAWN)
    await gateway_publisher.publish(interaction(f"m4-{tag}", user_id=user, phone=p2))
    await eventually(lambda: gated.consent_blocks(cid) == 2)
    assert await gated.owner(idpb.IDENTIFIER_TYPE_PHONE, p2) is None

    # A re-grant of email marketing lets a new email link again.
    await gated.decide(cid, "marketing_email", cev.CONSENT_DECISION_GRANTED, Reason.GRANTED)
    await gateway_publisher.publish(interaction(f"m5-{tag}", user_id=user, email=e4))
    assert await eventually(lambda: gated.owner(idpb.IDENTIFIER_TYPE_EMAIL, e4)) == cid
    assert gated.consent_blocks(cid) == 2
