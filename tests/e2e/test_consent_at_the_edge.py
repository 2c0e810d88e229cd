"""Consent enforced at the gateway, and privacy requests over its HTTP API,
with the real consent, identity and gateway services (in-process, real NATS,
real gRPC servers, real HTTP; SQLite and PostgreSQL).

* A customer who refuses ``analytics`` (consent ``RecordConsent``) has their
  track calls withheld by the gateway within one second — by user id and by
  an anonymous id linked to them, before or after the refusal — while other
  customers' calls are stored; ``Sec-GPC: 1`` on a withheld call still
  reaches consent; a re-grant lets calls through again.
* ``POST /v1/privacy/requests`` by email runs an erasure through consent's
  saga; bad input is a field-level 400, an unknown subject 404, a missing or
  write-key token 401, consent unreachable 503.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.gateway.v1 import events_pb2 as gpb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from consent.tests.conftest import start_consent
from cxloop_libs.consent.state_bucket import STATE_STREAM
from cxloop_libs.grpcx.client import client_channel
from cxloop_libs.messaging import NatsBus
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing import infra
from cxloop_testing.infra import eventually
from gateway.bootstrap import bootstrap as gateway_bootstrap
from gateway.bootstrap import create_gateway_app
from gateway.config import GatewaySettings
from gateway.service_layer.enforcement import AnalyticsEnforcement
from gateway.service_layer.privacy_desk import PrivacyDesk
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")
PRIVACY = {"Authorization": "Bearer dev-privacy"}
REFUSED = (epb.CONSENT_DECISION_DENIED, epb.CONSENT_DECISION_WITHDRAWN)


class Suite:
    def __init__(
        self,
        consent: ServiceRuntime,
        identity: ServiceRuntime,
        gateway: ServiceRuntime,
        gateway_url: str,
        nats_url: str,
    ) -> None:
        assert consent.grpc_server is not None and identity.grpc_server is not None
        self.consent_runtime, self.identity_runtime = consent, identity
        self.enforcement: AnalyticsEnforcement = gateway.enforcement  # type: ignore[attr-defined]
        self.nats_url = nats_url
        self.consent = pb_grpc.ConsentServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}")
        )
        self.identity = ipb_grpc.IdentityServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}")
        )
        self.http = httpx.AsyncClient(base_url=gateway_url, timeout=10)

    async def post(self, path: str, body: dict[str, object], **headers: str) -> dict[str, int]:
        r = await self.http.post(path, json=body, headers=headers, auth=("dev", ""))
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def track(self, message_id: str, **ids: str) -> int:
        """Post a track call; how many events were withheld (0 or 1)."""
        body: dict[str, object] = {"event": "Viewed", "messageId": message_id, **ids}
        return (await self.post("/v1/track", body))["withheld"]

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

    async def stored(self) -> dict[str, gpb.InteractionRecorded]:
        """Every interaction in the GATEWAY stream, by message id."""
        nc = await nats.connect(self.nats_url)
        out: dict[str, gpb.InteractionRecorded] = {}
        try:
            js = nc.jetstream()
            pending = (await js.stream_info("GATEWAY")).state.messages
            # The whole stream (privacy answers share it), interactions kept.
            sub = await js.subscribe(
                "cx.gateway.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            for _ in range(pending):
                msg = await sub.next_msg(timeout=5)
                if msg.subject == "cx.gateway.interaction.recorded":
                    m = gpb.InteractionRecorded.FromString(msg.data)
                    out[m.message_id] = m
            await sub.unsubscribe()
        finally:
            await nc.close()
        return out


@pytest.fixture
def identity_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'identity.db'}"
        return
    admin = infra.postgres_admin_url()
    assert admin is not None
    with infra.fresh_postgres_database(admin) as url:
        yield url


@pytest.fixture
async def suite(
    clean_nats: str,
    database_url: str,
    identity_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Suite]:
    nc = await nats.connect(clean_nats)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(STATE_STREAM)
    await nc.close()
    identity = await identity_bootstrap(
        IdentitySettings(
            env="test",
            nats_url=clean_nats,
            database_url=identity_database_url,
            grpc_port=0,
            metrics_port=0,
        )
    )
    await identity.start()
    consent = await start_consent(clean_nats, database_url)
    assert identity.grpc_server is not None and consent.grpc_server is not None
    monkeypatch.setenv("CXLOOP_IDENTITY_GRPC_TARGET", f"127.0.0.1:{identity.grpc_server.port}")
    monkeypatch.setenv("CXLOOP_CONSENT_GRPC_TARGET", f"127.0.0.1:{consent.grpc_server.port}")
    port = infra.free_port()
    gateway = await gateway_bootstrap(
        GatewaySettings(
            env="test",
            nats_url=clean_nats,
            http_port=port,
            metrics_port=0,
            readiness_services="identity,consent",
        )
    )
    await gateway.start()
    await identity.db_ready.wait()
    await eventually(lambda: infra.port_open("127.0.0.1", port), timeout=10)
    s = Suite(consent, identity, gateway, f"http://127.0.0.1:{port}", clean_nats)
    # /readyz includes consent's state: ready once it is read (ADR 0036).
    r = await eventually(lambda: _ready(s.http), timeout=15)
    assert r["checks"]["consent_state"] is True
    yield s
    await s.http.aclose()
    for runtime in (gateway, consent, identity):
        await runtime.stop()


async def _ready(http: httpx.AsyncClient) -> dict[str, object] | None:
    r = await http.get("/readyz")
    return dict(r.json()) if r.status_code == 200 else None


async def test_objection_to_analytics_withholds_the_customers_calls(
    suite: Suite,
) -> None:
    user, anon, other = f"u-{uuid.uuid4()}", f"a-{uuid.uuid4()}", f"o-{uuid.uuid4()}"
    # One customer known by a user id and a device; another customer.
    await suite.post("/v1/identify", {"userId": user, "anonymousId": anon})
    await suite.post("/v1/track", {"userId": other, "event": "Viewed"})
    cid = await suite.customer_of(user)
    assert await suite.customer_of(anon, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID) == cid
    assert await suite.track(f"before-{uuid.uuid4()}", userId=user) == 0

    await suite.decide(cid, "analytics", epb.CONSENT_DECISION_DENIED)
    probes: list[str] = []

    async def withheld() -> bool:
        probes.append(f"probe-{uuid.uuid4()}")
        return await suite.track(probes[-1], userId=user) == 1

    # How soon is bench/consent.py's question (withdrawal -> projection p99
    # in milliseconds); a test does not assert on wall-clock time.
    await eventually(withheld, timeout=20, interval=0.01)
    held = [f"held-{n}-{uuid.uuid4()}" for n in range(3)]
    assert await suite.track(held[0], userId=user) == 1
    assert await suite.track(held[1], anonymousId=anon) == 1  # linked before the refusal
    flowing = f"other-{uuid.uuid4()}"
    assert await suite.track(flowing, userId=other) == 0
    # A device linked after the refusal: identity's profile event reloads the customer.
    anon2 = f"a2-{uuid.uuid4()}"
    await suite.post("/v1/identify", {"userId": user, "anonymousId": anon2})

    async def second_device_withheld() -> bool:
        return await suite.track(f"probe2-{uuid.uuid4()}", anonymousId=anon2) == 1

    await eventually(second_device_withheld, timeout=20, interval=0.02)
    assert await suite.track(held[2], anonymousId=anon2) == 1
    # identify still flows (identity needs it) and is not counted as withheld.
    r = await suite.post("/v1/identify", {"userId": user, "messageId": f"id-{uuid.uuid4()}"})
    assert r["withheld"] == 0

    # A batch mixes them: only the objector's track call is withheld.
    batch = [
        {"type": "track", "userId": user, "event": "X", "messageId": f"b1-{uuid.uuid4()}"},
        {"type": "page", "userId": other, "name": "Home", "messageId": f"b2-{uuid.uuid4()}"},
        {"type": "identify", "userId": user, "messageId": f"b3-{uuid.uuid4()}"},
    ]
    r = await suite.post("/v1/batch", {"batch": batch})
    assert (r["accepted"], r["withheld"]) == (3, 1)

    stored = await suite.stored()
    assert flowing in stored and batch[1]["messageId"] in stored and batch[2]["messageId"] in stored
    assert not {*held, str(batch[0]["messageId"])} & set(stored)
    # Probes sent before the projection learnt the refusal were stored; the
    # last one (the first withheld) was not.
    assert probes[-1] not in stored

    # A re-grant lets them flow again, within a second.
    await suite.decide(cid, "analytics", epb.CONSENT_DECISION_GRANTED)
    again: list[str] = []

    async def flows() -> bool:
        again.append(f"again-{uuid.uuid4()}")
        return await suite.track(again[-1], anonymousId=anon) == 0

    await eventually(flows, timeout=1.0, interval=0.01)
    assert again[-1] in await suite.stored()


async def test_gpc_on_a_withheld_call_still_reaches_consent(suite: Suite) -> None:
    user = f"u-{uuid.uuid4()}"
    await suite.post("/v1/identify", {"userId": user})
    cid = await suite.customer_of(user)
    await suite.decide(cid, "analytics", epb.CONSENT_DECISION_WITHDRAWN)
    await eventually(lambda: suite.enforcement.withholding(_event_of(user)) == cid, timeout=20)

    message_id = f"gpc-{uuid.uuid4()}"
    r = await suite.post(
        "/v1/track",
        {"userId": user, "event": "Secret", "messageId": message_id, "properties": {"a": 1}},
        **{"Sec-GPC": "1"},
    )
    assert r["withheld"] == 1
    signal = (await suite.stored())[message_id]
    assert signal.kind == gpb.INTERACTION_KIND_PRIVACY_SIGNAL
    assert signal.global_privacy_control and not signal.name and not signal.properties
    assert signal.occurred_at == signal.received_at

    async def opted_out() -> bool:
        prefs = await suite.consent.GetPreferences(
            pb.GetPreferencesRequest(customer_id=cid), timeout=5
        )
        states = {p.purpose: p for p in prefs.purposes}
        gpc = states["third_party_provision"]
        return gpc.decision in REFUSED and gpc.channel == epb.CONSENT_CHANNEL_GPC_SIGNAL

    await eventually(opted_out, timeout=10)


def _event_of(user: str) -> gpb.InteractionRecorded:
    return gpb.InteractionRecorded(
        identifiers=[
            idpb.HashedIdentifier(
                type=idpb.IDENTIFIER_TYPE_USER_ID, hash=HASHER.hash(IdType.USER_ID, user)
            )
        ]
    )


async def test_privacy_request_over_http_runs_the_erasure_saga(suite: Suite) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    user = f"u-{uuid.uuid4()}"
    await suite.post("/v1/identify", {"userId": user, "traits": {"email": email}})
    cid = await suite.customer_of(user)
    await suite.customer_of(email, idpb.IDENTIFIER_TYPE_EMAIL)
    # The objector's identifiers are held by the gateway: erasure drops them.
    await suite.decide(cid, "analytics", epb.CONSENT_DECISION_DENIED)
    await eventually(lambda: suite.enforcement.withholding(_event_of(user)) == cid, timeout=20)

    body = {
        "type": "erasure",
        "subject": {"identifier": {"type": "email", "value": email.upper()}},
        "jurisdiction": "gdpr",
        "verificationStatus": "verified",
        "verificationMethod": "email_otp",
    }
    r = await suite.http.post("/v1/privacy/requests", json=body, headers=PRIVACY)
    assert r.status_code == 201, r.text
    opened = r.json()
    assert opened["customerId"] == cid and opened["type"] == "erasure"
    assert opened["status"] == "in_progress" and opened["dueAt"] > opened["openedAt"]
    assert email not in r.text

    async def completed() -> dict[str, object] | None:
        s = await suite.http.get(f"/v1/privacy/requests/{opened['requestId']}", headers=PRIVACY)
        assert s.status_code == 200, s.text
        status = dict(s.json())
        return status if status["status"] == "completed" else None

    done = await eventually(completed, timeout=15)
    answers = {p["participant"]: p for p in done["participants"]}  # type: ignore[attr-defined]
    assert set(answers) == {"consent", "identity", "gateway"}
    assert answers["identity"]["rowCounts"]["identifiers"] == 2
    assert answers["gateway"]["rowCounts"] == {"consent_enforcement_identifiers": 2}
    assert done["jurisdiction"] == "gdpr" and done["verificationStatus"] == "verified"
    assert suite.enforcement.withholding(_event_of(user)) is None
    assert cid not in suite.enforcement.identifiers

    # By customer id too; an access request awaits verification when pending.
    keep = f"k-{uuid.uuid4()}"
    await suite.post("/v1/track", {"userId": keep, "event": "Viewed"})
    keep_cid = await suite.customer_of(keep)

    async def opened_once_consent_knows() -> httpx.Response | None:
        # Identity answers the lookup as soon as it resolved the customer;
        # consent learns of the customer from identity's event a moment
        # later, and until then says it knows no such customer (404).
        got = await suite.http.post(
            "/v1/privacy/requests",
            json={"type": "access", "subject": {"customerId": keep_cid}},
            headers=PRIVACY,
        )
        return None if got.status_code == 404 else got

    r = await eventually(opened_once_consent_knows, timeout=20)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "awaiting_verification"


async def test_privacy_api_refuses_bad_input_unknown_subjects_and_strangers(
    suite: Suite,
) -> None:
    async def post(body: object, headers: dict[str, str] = PRIVACY) -> httpx.Response:
        return await suite.http.post("/v1/privacy/requests", json=body, headers=headers)

    ok = {"type": "access", "subject": {"customerId": str(uuid.uuid4())}}
    # Authentication: a privacy token, never a write key.
    assert (await post(ok, {})).status_code == 401
    assert (await post(ok, {"Authorization": "Bearer nope"})).status_code == 401
    write_key = await suite.http.post("/v1/privacy/requests", json=ok, auth=("dev", ""), headers={})
    assert write_key.status_code == 401 and write_key.headers["www-authenticate"] == "Bearer"
    # Field-level 400s.
    cases: list[tuple[object, str]] = [
        ({"subject": {"customerId": "c"}}, "type"),
        ({"type": "delete", "subject": {"customerId": "c"}}, "type"),
        ({"type": "access"}, "subject"),
        ({"type": "access", "subject": {}}, "subject"),
        (
            {
                "type": "access",
                "subject": {"customerId": "c", "identifier": {"type": "email", "value": "a@b.kr"}},
            },
            "subject",
        ),
        (
            {"type": "access", "subject": {"identifier": {"type": "email", "value": "no-at"}}},
            "subject.identifier.value",
        ),
        ({**ok, "jurisdiction": "mars"}, "jurisdiction"),
        ({**ok, "verificationStatus": "failed"}, "verificationStatus"),
    ]
    for body, field in cases:
        r = await post(body)
        assert r.status_code == 400, (body, r.text)
        assert field in [f["field"] for f in r.json()["fields"]], (body, r.text)
        assert "no-at" not in r.text
    r = await suite.http.post(
        "/v1/privacy/requests", content=b"{not json", headers={**PRIVACY, "content-type": "x"}
    )
    assert r.status_code == 400
    # Unknown subjects and requests: 404.
    assert (await post(ok)).status_code == 404
    unknown_email = {
        "type": "erasure",
        "subject": {"identifier": {"type": "email", "value": "x@y.kr"}},
    }
    r = await post(unknown_email)
    assert r.status_code == 404 and "x@y.kr" not in r.text
    r = await suite.http.get(f"/v1/privacy/requests/{uuid.uuid4()}", headers=PRIVACY)
    assert r.status_code == 404
    r = await suite.http.get("/v1/privacy/requests/not%20an%20id", headers=PRIVACY)
    assert r.status_code == 400
    # /docs shows the API.
    spec = (await suite.http.get("/openapi.json")).json()
    post_op = spec["paths"]["/v1/privacy/requests"]["post"]
    assert post_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "OpenPrivacyRequestBody"
    )
    assert "/v1/privacy/requests/{request_id}" in spec["paths"]


async def test_privacy_api_answers_503_when_consent_is_unreachable(suite: Suite) -> None:
    identity = suite.identity_runtime.grpc_server
    assert identity is not None
    dead = f"127.0.0.1:{infra.free_port()}"
    user = f"u-{uuid.uuid4()}"
    await suite.post("/v1/track", {"userId": user, "event": "Viewed"})
    cid = await suite.customer_of(user)
    settings = GatewaySettings(env="test", nats_url=suite.nats_url, metrics_port=0)
    bus = NatsBus(suite.nats_url, name="test-gateway-503")
    identity_channel = client_channel(f"127.0.0.1:{identity.port}")
    consent_channel = client_channel(dead)
    desk = PrivacyDesk(consent_channel, identity_channel, deadline_s=1.0)
    app = create_gateway_app(settings, bus, _NoSink(), privacy_desk=desk)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http:
            r = await http.post(
                "/v1/privacy/requests",
                json={"type": "access", "subject": {"customerId": cid}},
                headers=PRIVACY,
            )
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            r = await http.get(f"/v1/privacy/requests/{uuid.uuid4()}", headers=PRIVACY)
            assert r.status_code == 503
    finally:
        await identity_channel.close()
        await consent_channel.close()


class _NoSink:
    async def publish(self, *_: object, **__: object) -> None:
        raise AssertionError("nothing is published here")

    async def publish_many(self, *_: object, **__: object) -> None:
        raise AssertionError("nothing is published here")
