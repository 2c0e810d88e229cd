"""Consent with the real gateway and identity services (in-process, real NATS
and databases): ``Sec-GPC: 1`` on a frontend's call becomes a GPC opt-out of
the customer identity resolved it to; a merge identity makes when one call
joins two profiles gives the survivor the stricter consent; and access and
erasure requests run as a saga across consent, identity and the gateway, with
each service's row counts and proof in its own database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc

from consent.tests.conftest import start_consent
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing import infra
from cxloop_testing.infra import eventually
from gateway.bootstrap import bootstrap as gateway_bootstrap
from gateway.config import GatewaySettings
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration

REFUSED = (epb.CONSENT_DECISION_DENIED, epb.CONSENT_DECISION_WITHDRAWN)


class Suite:
    def __init__(self, consent: ServiceRuntime, identity: ServiceRuntime, gateway_url: str) -> None:
        assert consent.grpc_server is not None and identity.grpc_server is not None
        self.consent_runtime, self.identity_runtime = consent, identity
        self.consent = pb_grpc.ConsentServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}")
        )
        self.identity = ipb_grpc.IdentityServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}")
        )
        self.http = httpx.AsyncClient(base_url=gateway_url, auth=("dev", ""), timeout=5)

    async def call(self, path: str, body: dict[str, object], **headers: str) -> None:
        r = await self.http.post(path, json=body, headers=headers)
        assert r.status_code == 200, r.text

    async def customer_of(self, value: str, kind: int = idpb.IDENTIFIER_TYPE_USER_ID) -> str:
        async def lookup() -> str:
            try:
                r = await self.identity.LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(type=kind, value=value)
                    ),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as exc:  # not resolved yet
                assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
                return ""
            return str(r.customer_id)

        found: str = await eventually(lookup, timeout=10)
        return found

    async def prefs(self, cid: str) -> dict[str, epb.PurposeState]:
        r = await self.consent.GetPreferences(pb.GetPreferencesRequest(customer_id=cid), timeout=5)
        return {p.purpose: p for p in r.purposes}

    async def decide(self, cid: str, purpose: str, decision: int) -> None:
        await self.consent.RecordConsent(
            pb.RecordConsentRequest(
                customer_id=cid,
                purpose=purpose,
                decision=decision,
                notice_version="1",
                channel=epb.CONSENT_CHANNEL_WEB_FORM,
            ),
            timeout=5,
        )


@pytest.fixture
async def suite(
    clean_consent_nats: str, database_url: str, identity_database_url: str
) -> AsyncIterator[Suite]:
    nats_url = clean_consent_nats
    identity = await identity_bootstrap(
        IdentitySettings(
            env="test",
            nats_url=nats_url,
            database_url=identity_database_url,
            grpc_port=0,
            metrics_port=0,
        )
    )
    await identity.start()
    consent = await start_consent(nats_url, database_url)
    port = infra.free_port()
    gateway = await gateway_bootstrap(
        GatewaySettings(env="test", nats_url=nats_url, http_port=port, metrics_port=0)
    )
    await gateway.start()
    await identity.db_ready.wait()
    await gateway.bus.ready()
    await eventually(lambda: infra.port_open("127.0.0.1", port), timeout=10)
    s = Suite(consent, identity, f"http://127.0.0.1:{port}")
    yield s
    await s.http.aclose()
    for runtime in (gateway, consent, identity):
        await runtime.stop()


async def test_sec_gpc_at_the_gateway_opts_the_resolved_customer_out(suite: Suite) -> None:
    user = f"u-{uuid.uuid4()}"
    await suite.call(
        "/v1/identify", {"userId": user, "traits": {"plan": "gold"}}, **{"Sec-GPC": "1"}
    )
    cid = await suite.customer_of(user)

    async def opted_out() -> dict[str, epb.PurposeState] | None:
        p = await suite.prefs(cid)
        return p if p["third_party_provision"].decision in REFUSED else None

    p = await eventually(opted_out, timeout=10)
    for purpose in ("third_party_provision", "marketing_email", "marketing_app"):
        assert p[purpose].channel == epb.CONSENT_CHANNEL_GPC_SIGNAL
    assert p["personalization"].decision == epb.CONSENT_DECISION_UNSPECIFIED
    # Without the header nothing is recorded for another customer.
    other = f"u-{uuid.uuid4()}"
    await suite.call("/v1/track", {"userId": other, "event": "Viewed"})
    other_cid = await suite.customer_of(other)
    assert all(s.decision == 0 for s in (await suite.prefs(other_cid)).values())


async def test_identitys_merge_gives_the_survivor_every_refusal(suite: Suite) -> None:
    anon, user_b = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    # Two profiles: one known by an anonymous id and an email, one by a user id.
    await suite.call("/v1/identify", {"anonymousId": anon, "traits": {"email": email}})
    await suite.call("/v1/track", {"userId": user_b, "event": "Viewed"})
    a = await suite.customer_of(anon, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID)
    b = await suite.customer_of(user_b)
    assert a != b
    await suite.decide(a, "marketing_email", epb.CONSENT_DECISION_GRANTED)
    await suite.decide(a, "marketing_sms", epb.CONSENT_DECISION_DENIED)
    await suite.decide(b, "marketing_email", epb.CONSENT_DECISION_DENIED)
    await suite.decide(b, "marketing_sms", epb.CONSENT_DECISION_GRANTED)
    # One call shows both are one person (the email, now with user b).
    await suite.call("/v1/identify", {"userId": user_b, "traits": {"email": email}})

    async def merged() -> str | None:
        s = await suite.customer_of(anon, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID)
        t = await suite.customer_of(user_b)
        return s if s == t else None

    survivor = await eventually(merged, timeout=10)

    async def stricter() -> dict[str, epb.PurposeState] | None:
        p = await suite.prefs(survivor)
        ok = all(p[k].decision in REFUSED for k in ("marketing_email", "marketing_sms"))
        return p if ok else None

    await eventually(stricter, timeout=10)


async def test_erasure_saga_across_consent_identity_and_gateway_with_proof(
    suite: Suite,
) -> None:
    identity_runtime, consent_runtime = suite.identity_runtime, suite.consent_runtime
    anon, user, other = f"a-{uuid.uuid4()}", f"u-{uuid.uuid4()}", f"o-{uuid.uuid4()}"
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    await suite.call("/v1/identify", {"anonymousId": anon, "traits": {"email": email}})
    await suite.call("/v1/track", {"userId": user, "event": "Viewed"})
    await suite.call("/v1/track", {"userId": other, "event": "Viewed"})
    merged_away = await suite.customer_of(anon, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID)
    await suite.customer_of(user)
    # One call joins the two profiles: the subject is the survivor of a merge.
    await suite.call("/v1/identify", {"userId": user, "traits": {"email": email}})

    async def merged() -> str | None:
        s = await suite.customer_of(anon, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID)
        return s if s == await suite.customer_of(user) else None

    subject = await eventually(merged, timeout=10)
    keep = await suite.customer_of(other)
    await suite.decide(subject, "marketing_email", epb.CONSENT_DECISION_GRANTED)
    await suite.decide(keep, "marketing_email", epb.CONSENT_DECISION_GRANTED)
    customers = sorted({subject, merged_away})
    assert identity_rows(identity_runtime, "identifier", customers) == 3

    async def run(kind: int) -> pb.GetPrivacyRequestStatusResponse:
        opened = await suite.consent.OpenPrivacyRequest(
            pb.OpenPrivacyRequestRequest(
                customer_id=subject,
                kind=kind,
                jurisdiction=epb.JURISDICTION_GDPR,
                verification_status=pb.VERIFICATION_STATUS_VERIFIED,
            ),
            timeout=5,
        )

        async def completed() -> pb.GetPrivacyRequestStatusResponse:
            r = await suite.consent.GetPrivacyRequestStatus(
                pb.GetPrivacyRequestStatusRequest(request_id=opened.request_id), timeout=5
            )
            assert r.status == pb.PRIVACY_REQUEST_STATUS_COMPLETED, str(r)
            return r

        result: pb.GetPrivacyRequestStatusResponse = await eventually(completed, timeout=15)
        return result

    # Access first: one bundle with what every service holds (hashes, no raw PII).
    access = await run(epb.PRIVACY_REQUEST_KIND_ACCESS)
    bundle = json.loads(access.access_bundle_json)
    services = {s["service"]: s for s in bundle["services"]}
    assert len(services["identity"]["data"]["identifiers"]) == 3
    assert email not in json.dumps(bundle) and user not in json.dumps(bundle)
    assert len(services["consent"]["data"]["consent_records"]) == 1

    done = await run(epb.PRIVACY_REQUEST_KIND_ERASURE)
    answers = {p.participant: p for p in done.participants}
    assert set(answers) == {"consent", "identity", "gateway"}
    ident = answers["identity"].row_counts
    assert ident["identifiers"] == 3 and ident["customers"] == 2 and ident["identity_links"] >= 3
    assert answers["consent"].row_counts["consent_records"] == 1
    assert answers["gateway"].state == pb.PARTICIPANT_STATE_NOT_APPLICABLE
    # Per-service proof in each service's own database.
    assert identity_rows(identity_runtime, "identifier", customers) == 0
    assert identity_rows(identity_runtime, "customer", customers) == 0
    assert identity_rows(identity_runtime, "identity_link", customers) == 0
    assert identity_rows(identity_runtime, "identifier", [keep]) == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.identity.LookupByIdentifier(
            ipb.LookupByIdentifierRequest(
                identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user)
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert consent_records(consent_runtime, subject) == 0
    # The earlier access bundle went with the subject.
    earlier = await suite.consent.GetPrivacyRequestStatus(
        pb.GetPrivacyRequestStatusRequest(request_id=access.request_id), timeout=5
    )
    assert earlier.access_bundle_json == ""
    assert consent_records(consent_runtime, keep) == 1


def identity_rows(runtime: ServiceRuntime, table: str, customers: list[str]) -> int:
    assert runtime.db is not None
    t = sa.table(table, sa.column("customer_id"))
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.customer_id.in_(customers))
            ).scalar_one()
        )


def consent_records(runtime: ServiceRuntime, customer_id: str) -> int:
    assert runtime.db is not None
    t = sa.table("consent_record", sa.column("customer_id"))
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.customer_id == customer_id)
            ).scalar_one()
        )
