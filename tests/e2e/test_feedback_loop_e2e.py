"""Issue 13's loop end to end, with the real consent, identity, gateway,
feedback and loyalty services (in-process: real gRPC servers, real HTTP,
real NATS JetStream, each service on its own PostgreSQL database):

a web shop's Segment ``Order Completed`` posted to the gateway's
``/v1/batch`` with a write key → identity resolves it → feedback's trigger
(configured through feedback's gRPC API, with a delay) invites the customer,
who agreed to ``survey_contact`` in consent → the survey page answers with
the invitation's token over the gateway's public ``/v1/feedback/responses``
(no write key; CORS for the configured shop origin only) → ``GetKpis`` counts
the detractor → ``ListCases`` shows the case and ``detractor detected`` is
published → loyalty grants the goodwill points (the customer agreed to app
marketing) and the survey points, exactly once, also when the event is
replayed under a new id and when loyalty's consumer is deleted and the whole
FEEDBACK stream is delivered again; a review posted with the token through
``/v1/feedback/reviews`` earns the review points. The token answers the
survey once; a customer who never agreed to survey contact is not invited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cpb_grpc
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.feedback.v1 import events_pb2 as fev
from cxloop.feedback.v1 import feedback_service_pb2 as fpb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as fpb_grpc
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lpb_grpc
from nats.js.errors import NotFoundError

from consent.tests.conftest import start_consent
from cxloop_libs.consent.state_bucket import STATE_STREAM
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing import infra
from cxloop_testing.infra import eventually
from feedback.tests.integration.conftest import settings_for, start_feedback
from gateway.bootstrap import bootstrap as gateway_bootstrap
from gateway.config import GatewaySettings
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings
from loyalty.entrypoints.consumers import FEEDBACK_CONSUMER
from loyalty.tests.conftest import start_loyalty

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

SHOP = "https://shop.example.kr"
WRITE_KEY = ("dev", "")
DELAY_S = 2
SURVEY = {
    "id": "after-order",
    "name": "After your order",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {"ko": "추천하시겠어요?", "en": "Would you recommend us?"},
        },
        {"id": "why", "type": "free_text", "text": {"ko": "이유는요?", "en": "Why?"}},
    ],
}
COMMENT = "배송이 너무 늦었고 상자가 찢어져 왔어요"
GOODWILL_POINTS = 500  # loyalty's default CXLOOP_LOYALTY_GOODWILL_POINTS
SURVEY_POINTS = 50  # the default rule set's `survey-answered`
REVIEW_POINTS = 100  # its `review-written` (20 characters or more)
REVIEW = "Comfortable shoes, the size was right"


@dataclass
class Loop:
    nats_url: str
    loyalty_db: str
    consent: cpb_grpc.ConsentServiceStub
    identity: ipb_grpc.IdentityServiceStub
    feedback: fpb_grpc.FeedbackServiceStub
    feedback_runtime: ServiceRuntime
    http: httpx.AsyncClient
    seen: list[tuple[str, bytes]]
    runtimes: dict[str, ServiceRuntime]

    @property
    def loyalty_runtime(self) -> ServiceRuntime:
        return self.runtimes["loyalty"]

    def loyalty(self) -> lpb_grpc.LoyaltyServiceStub:
        server = self.loyalty_runtime.grpc_server
        assert server is not None
        return lpb_grpc.LoyaltyServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))

    def events(self, kind: ev.EventKind) -> list[object]:
        return [kind.decode(data) for subject, data in self.seen if subject == kind.subject]

    async def segment(self, *calls: dict[str, object]) -> None:
        r = await self.http.post("/v1/batch", json={"batch": list(calls)}, auth=WRITE_KEY)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(calls), r.text

    async def customer_of(self, user_id: str) -> str:
        async def lookup() -> str:
            try:
                r = await self.identity.LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user_id)
                    ),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as exc:  # not resolved yet
                assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
                return ""
            return str(r.customer_id)

        found: str = await eventually(lookup, timeout=20)
        return found

    async def agree(self, customer_id: str, *purposes: str) -> None:
        for purpose in purposes:
            await self.consent.RecordConsent(
                cpb.RecordConsentRequest(
                    customer_id=customer_id,
                    purpose=purpose,
                    decision=cev.CONSENT_DECISION_GRANTED,
                    notice_version="1",
                    channel=cev.CONSENT_CHANNEL_WEB_FORM,
                ),
                timeout=5,
            )

    async def drained(self, stream: str, durable: str) -> bool:
        """The durable consumer has nothing left to deliver or to be acked."""
        nc = await nats.connect(self.nats_url)
        try:
            info = await nc.jetstream().consumer_info(stream, durable)
        finally:
            await nc.close()
        return info.num_pending == 0 and info.num_ack_pending == 0


def _postgres() -> str:
    admin = infra.postgres_admin_url()
    if admin is None:
        if infra.in_ci():
            pytest.fail("PostgreSQL is required in CI but none was found")
        pytest.skip("no PostgreSQL available on this machine")
    return admin


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """One PostgreSQL database per service, as deployed."""
    admin = _postgres()
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(infra.fresh_postgres_database(admin))
            for name in ("consent", "identity", "feedback", "loyalty")
        }


@pytest.fixture
async def loop(
    clean_nats: str,
    databases: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Loop]:
    nc = await nats.connect(clean_nats)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(STATE_STREAM)
    seen: list[tuple[str, bytes]] = []

    async def collect(msg: nats.aio.msg.Msg) -> None:
        seen.append((msg.subject, msg.data))

    await nc.subscribe("cx.feedback.>", cb=collect)
    runtimes: dict[str, ServiceRuntime] = {}
    try:
        consent = await start_consent(clean_nats, databases["consent"])
        runtimes["consent"] = consent
        identity = await identity_bootstrap(
            IdentitySettings(
                env="test",
                nats_url=clean_nats,
                database_url=databases["identity"],
                grpc_port=0,
                metrics_port=0,
            )
        )
        await identity.start()
        runtimes["identity"] = identity
        await identity.db_ready.wait()
        # The small model feedback's own integration tests train and cache.
        model_dir = Path(tempfile.gettempdir()) / "cxloop-feedback-test-models"
        feedback = await start_feedback(settings_for(clean_nats, databases["feedback"], model_dir))
        runtimes["feedback"] = feedback
        runtimes["loyalty"] = await start_loyalty(clean_nats, databases["loyalty"])
        for name, runtime in runtimes.items():
            assert runtime.grpc_server is not None
            monkeypatch.setenv(
                f"CXLOOP_{name.upper()}_GRPC_TARGET", f"127.0.0.1:{runtime.grpc_server.port}"
            )
        port = infra.free_port()
        gateway = await gateway_bootstrap(
            GatewaySettings(
                env="test",
                nats_url=clean_nats,
                http_port=port,
                metrics_port=0,
                readiness_services="identity,consent,feedback,loyalty",
                feedback_origins=SHOP,
            )
        )
        await gateway.start()
        runtimes["gateway"] = gateway
        await eventually(lambda: infra.port_open("127.0.0.1", port), timeout=10)

        def stub(name: str) -> grpc.aio.Channel:
            server = runtimes[name].grpc_server
            assert server is not None
            return grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            yield Loop(
                nats_url=clean_nats,
                loyalty_db=databases["loyalty"],
                consent=cpb_grpc.ConsentServiceStub(stub("consent")),
                identity=ipb_grpc.IdentityServiceStub(stub("identity")),
                feedback=fpb_grpc.FeedbackServiceStub(stub("feedback")),
                feedback_runtime=feedback,
                http=http,
                seen=seen,
                runtimes=runtimes,
            )
    finally:
        for name in ("gateway", "loyalty", "feedback", "identity", "consent"):
            if name in runtimes:
                await runtimes[name].stop()
        await nc.close()


def _uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_purchase_to_invitation_to_answer_to_case_to_goodwill(loop: Loop) -> None:
    # The survey and its trigger, through feedback's API: every completed
    # order, invited DELAY_S seconds later.
    await loop.feedback.PutSurvey(fpb.PutSurveyRequest(survey_json=json.dumps(SURVEY)), timeout=5)
    await loop.feedback.PutTrigger(
        fpb.PutTriggerRequest(
            trigger=fpb.Trigger(
                trigger_id="order-completed",
                survey_id="after-order",
                event="Order Completed",
                delay_seconds=DELAY_S,
                sample_rate=1.0,
                channel=fev.INVITATION_CHANNEL_EMAIL,
                touchpoint="web-checkout",
                journey_stage="post_purchase",
                active=True,
            )
        ),
        timeout=5,
    )

    # Two shoppers sign in on the web shop; one agrees to surveys and app
    # marketing, the other to nothing.
    user, other = f"buyer-{_uid()}", f"quiet-{_uid()}"
    await loop.segment(
        {"type": "identify", "userId": user, "messageId": _uid(), "traits": {"plan": "web"}},
        {"type": "identify", "userId": other, "messageId": _uid()},
    )
    cid, other_cid = await loop.customer_of(user), await loop.customer_of(other)
    await loop.agree(cid, "survey_contact", "marketing_app")
    # Both services read consent from their local view of consent's state.
    fb_consent = loop.feedback_runtime.consent_projection  # type: ignore[attr-defined]
    ly_consent = loop.loyalty_runtime.consent  # type: ignore[attr-defined]
    await eventually(lambda: fb_consent.may_use(cid, "survey_contact"), timeout=10)
    await eventually(lambda: ly_consent.may_use(cid, "marketing_app"), timeout=10)
    assert not fb_consent.may_use(other_cid, "survey_contact")

    # The orders, as a Segment batch with the write key.
    now = datetime.now(UTC)
    ordered_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as Segment sends it
    order = {"currency": "KRW", "total": 45000}
    await loop.segment(
        {
            "type": "track",
            "userId": other,
            "event": "Order Completed",
            "messageId": _uid(),
            "timestamp": ordered_at.isoformat(),
            "properties": {"order_id": f"o-{_uid()}", **order},
        },
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "messageId": _uid(),
            "timestamp": ordered_at.isoformat(),
            "properties": {"order_id": f"o-{_uid()}", **order},
        },
    )

    # Feedback invites the consenting buyer, after the trigger's delay, with
    # a signed single-use token for the survey page.
    invitations = await eventually(
        lambda: [i for i in loop.events(ev.SURVEY_INVITED) if i.customer_id == cid],  # type: ignore[attr-defined]
        timeout=30,
    )
    inv = invitations[0]
    assert isinstance(inv, fev.SurveyInvited)
    assert inv.customer_id == cid and inv.survey_id == "after-order"
    assert inv.response_token and inv.touchpoint == "web-checkout"
    assert inv.invited_at.ToDatetime(UTC) >= ordered_at + timedelta(seconds=DELAY_S)
    # Loyalty saw both orders (identity resolved both) and feedback's trigger
    # consumer has read everything identity published: the quiet shopper
    # was not invited.
    loyalty = loop.loyalty()

    async def pending(customer: str) -> int:
        a = await loyalty.GetAccount(lpb.GetAccountRequest(customer_id=customer), timeout=5)
        return int(a.pending_points)

    await eventually(lambda: _equals(pending(other_cid), 450), timeout=20)
    await eventually(lambda: _equals(pending(cid), 450), timeout=20)
    await eventually(
        lambda: loop.drained("IDENTITY", "feedback-survey-triggers"), timeout=20, interval=0.2
    )
    await asyncio.sleep(0.5)  # a dispatch round (0.2 s) after the last trigger
    assert [i.customer_id for i in loop.events(ev.SURVEY_INVITED)] == [cid]  # type: ignore[attr-defined]

    # The survey page renders from the gateway and answers with the token
    # only (no write key), from the shop's origin: a detractor with a comment.
    page = await loop.http.get("/v1/feedback/surveys/after-order", headers={"origin": SHOP})
    assert page.status_code == 200 and page.json()["questions"][0]["id"] == "nps"
    preflight = await loop.http.options(
        "/v1/feedback/responses",
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == SHOP
    answer = {
        "token": inv.response_token,
        "answers": [{"questionId": "nps", "score": 3}, {"questionId": "why", "text": COMMENT}],
    }
    r = await loop.http.post("/v1/feedback/responses", json=answer, headers={"origin": SHOP})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    body = r.json()
    assert body["complete"] is True and body["detractor"] is True and body["caseId"]
    # The token is single use: a second answer is refused, naming the token.
    again = await loop.http.post(
        "/v1/feedback/responses",
        json={**answer, "answers": [{"questionId": "nps", "score": 10}]},
        headers={"origin": SHOP},
    )
    assert again.status_code == 400, again.text
    assert again.json()["fields"][0]["field"] == "token"
    assert "already used" in again.json()["error"]
    # Another origin is refused and told nothing by CORS.
    evil = await loop.http.post(
        "/v1/feedback/responses", json=answer, headers={"origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and evil.json()["fields"][0]["field"] == "origin"
    assert "access-control-allow-origin" not in evil.headers

    # KPIs count the answer: one detractor, NPS -100.
    k = await loop.feedback.GetKpis(fpb.GetKpisRequest(metric=fev.KPI_METRIC_NPS), timeout=5)
    assert (k.total.responses, k.total.detractors, k.total.value) == (1, 1, -100)
    # A follow-up case is open for the customer, about this response.
    cases = await loop.feedback.ListCases(fpb.ListCasesRequest(customer_id=cid), timeout=5)
    assert [c.case_id for c in cases.cases] == [body["caseId"]]
    case = cases.cases[0]
    assert case.source_kind == "response" and case.source_id == body["responseId"]
    detected = await eventually(lambda: loop.events(ev.DETRACTOR_DETECTED), timeout=15)
    d = detected[0]
    assert isinstance(d, fev.DetractorDetected)
    assert (d.customer_id, d.score, d.case_id) == (cid, 3, case.case_id)
    assert COMMENT.encode() not in b"".join(data for _, data in loop.seen)

    # Loyalty: goodwill for the detractor (marketing consent), survey points.
    async def available() -> int:
        a = await loyalty.GetAccount(lpb.GetAccountRequest(customer_id=cid), timeout=5)
        return int(a.available_points)

    await eventually(
        lambda: _equals(available(), GOODWILL_POINTS + SURVEY_POINTS), timeout=20, interval=0.2
    )
    assert await goodwill_entries(loyalty, cid) == 1
    # A review of the order's product with the same token, from the shop's
    # review form: `review submitted` earns the review points.
    review = {"token": inv.response_token, "productId": "sku-1", "rating": 4, "text": REVIEW}
    rv = await loop.http.post("/v1/feedback/reviews", json=review, headers={"origin": SHOP})
    assert rv.status_code == 200, rv.text
    assert rv.headers["access-control-allow-origin"] == SHOP
    earned = GOODWILL_POINTS + SURVEY_POINTS + REVIEW_POINTS
    await eventually(lambda: _equals(available(), earned), timeout=20, interval=0.2)

    # Replayed under a new event id: the goodwill key holds.
    bus = NatsBus(loop.nats_url, name="test-replay", streams=[stream_for("feedback")])
    await bus.connect(timeout=10)
    try:
        await EventPublisher(bus, source="/cxloop/feedback").publish(
            PendingEvent.of(ev.DETRACTOR_DETECTED, d, subject=cid)
        )
    finally:
        await bus.close()
    await eventually(lambda: loop.drained("FEEDBACK", FEEDBACK_CONSUMER), timeout=20)
    # Redelivered: loyalty restarted with its durable deleted, so the whole
    # FEEDBACK stream comes again; the inbox drops what was handled.
    await loop.loyalty_runtime.stop()
    nc = await nats.connect(loop.nats_url)
    try:
        await nc.jetstream().delete_consumer("FEEDBACK", FEEDBACK_CONSUMER)
    finally:
        await nc.close()
    loop.runtimes["loyalty"] = await start_loyalty(loop.nats_url, loop.loyalty_db)
    loyalty = loop.loyalty()
    await eventually(lambda: loop.drained("FEEDBACK", FEEDBACK_CONSUMER), timeout=30, interval=0.2)
    assert await available() == earned
    assert await goodwill_entries(loyalty, cid) == 1


async def goodwill_entries(loyalty: lpb_grpc.LoyaltyServiceStub, cid: str) -> int:
    h = await loyalty.GetHistory(lpb.GetHistoryRequest(customer_id=cid, page_size=50), timeout=5)
    return sum(1 for e in h.entries if e.description == "goodwill")


async def _equals(value: object, expected: object) -> bool:
    if asyncio.iscoroutine(value):
        value = await value
    return value == expected
