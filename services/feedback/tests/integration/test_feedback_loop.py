"""The loop on real NATS and a real database (SQLite and PostgreSQL): a
resolved purchase → an invitation (only with survey consent, at most once
per contact window) → a token response → KPIs → a detractor case and the
events loyalty and personalization act on → the resolved case's follow-up;
reviews, voice notes, bad input and erasure."""

from __future__ import annotations

import json

import grpc
import pytest
import sqlalchemy as sa
from cxloop.feedback.v1 import events_pb2 as epb
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import RequestKind
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from feedback.adapters import privacy
from feedback.adapters import tables as t
from feedback.service_layer.handlers import FeedbackHandlers
from feedback.tests.integration.conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

NPS_SURVEY = {
    "id": "post-purchase",
    "name": "After purchase",
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {"ko": "추천하시겠어요?", "en": "Recommend us?"},
        },
        {"id": "why", "type": "free_text", "text": {"ko": "이유", "en": "Why?"}},
    ],
}
FOLLOW_UP = {
    "id": "follow-up",
    "questions": [{"id": "csat", "type": "csat", "text": {"en": "Are you satisfied now?"}}],
}
COMMENT = "배송이 너무 늦고 포장도 엉망이에요. 최악입니다"


async def setup_surveys(stub: pb_grpc.FeedbackServiceStub) -> None:
    for doc in (NPS_SURVEY, FOLLOW_UP):
        await stub.PutSurvey(pb.PutSurveyRequest(survey_json=json.dumps(doc)), timeout=5)
    await stub.PutTrigger(
        pb.PutTriggerRequest(
            trigger=pb.Trigger(
                trigger_id="purchase",
                survey_id="post-purchase",
                event="Order Completed",
                touchpoint="checkout",
                journey_stage="post_purchase",
                active=True,
            )
        ),
        timeout=5,
    )


async def invite(
    world: World, stub: pb_grpc.FeedbackServiceStub, customer: str
) -> epb.SurveyInvited:
    await world.consent(customer, "survey_contact", granted=True)
    await world.interaction(f"order-{customer}", customer, "Order Completed", segment="vip")
    invited = await eventually(
        lambda: [e for e in world.events(ev.SURVEY_INVITED) if e.customer_id == customer],
        timeout=15,  # type: ignore[attr-defined]
    )
    return invited[0]  # type: ignore[no-any-return]


def rows(runtime: ServiceRuntime, table: sa.Table, **where: str) -> list[sa.Row]:
    assert runtime.db is not None
    with runtime.db.session() as s:
        q = sa.select(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return list(s.execute(q))


async def test_purchase_to_case_to_follow_up(
    feedback: ServiceRuntime, stub: pb_grpc.FeedbackServiceStub, world: World
) -> None:
    await setup_surveys(stub)
    await world.consent("c-no", "survey_contact", granted=False)
    inv = await invite(world, stub, "c-yes")
    assert inv.response_token and inv.survey_version == 1 and inv.touchpoint == "checkout"
    await world.interaction("order-c-no", "c-no", "Order Completed")

    # Answer through the token (what the public page does): a detractor.
    r = await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            token=inv.response_token,
            answers=[
                pb.Answer(question_id="nps", score=3),
                pb.Answer(question_id="why", text=COMMENT),
            ],
        ),
        timeout=10,
    )
    assert r.complete and r.detractor and r.case_id
    assert {m.aspect for m in r.analysis.aspects} >= {"delivery"}
    # The token is single use.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.SubmitResponse(
            pb.SubmitResponseRequest(
                token=inv.response_token, answers=[pb.Answer(question_id="nps", score=10)]
            ),
            timeout=5,
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "token" in (
        e.value.details() or ""
    )

    detractors = await eventually(lambda: world.events(ev.DETRACTOR_DETECTED), timeout=10)
    d = detractors[0]
    assert d.customer_id == "c-yes" and d.score == 3 and d.case_id == r.case_id  # type: ignore[attr-defined]
    await eventually(
        lambda: world.events(ev.RESPONSE_RECEIVED) and world.events(ev.CASE_OPENED), timeout=10
    )
    # The comment never travels in clear.
    assert all(
        COMMENT.encode() not in data and "배송".encode() not in data for _, data, _ in world.seen
    )
    # c-no refused survey contact: never invited.
    assert not [e for e in world.events(ev.SURVEY_INVITED) if e.customer_id == "c-no"]  # type: ignore[attr-defined]

    # KPIs include it, by segment too.
    k = await stub.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert k.total.responses == 1 and k.total.value == -100 and k.total.detractors == 1
    by_seg = await stub.GetKpis(
        pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS, segment="vip"), timeout=5
    )
    assert by_seg.total.responses == 1
    other = await stub.GetKpis(
        pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS, segment="new"), timeout=5
    )
    assert other.total.responses == 0
    drivers = await stub.GetDrivers(pb.GetDriversRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert "delivery" in {x.aspect for x in drivers.drivers}

    # A second purchase inside the contact window: no second invitation.
    await world.interaction("order-c-yes-2", "c-yes", "Order Completed")
    await eventually(
        lambda: len(rows(feedback, t.invitation, customer_id="c-yes")) == 2, timeout=10
    )
    statuses = sorted(x.status for x in rows(feedback, t.invitation, customer_id="c-yes"))
    assert statuses[0] == "answered" and statuses[1].startswith("skipped:")

    # The agent works the case and resolves it, telling the customer.
    cases = await stub.ListCases(pb.ListCasesRequest(), timeout=5)
    assert [c.case_id for c in cases.cases] == [r.case_id]
    assert cases.cases[0].priority == pb.CASE_PRIORITY_HIGH
    await stub.UpdateCase(
        pb.UpdateCaseRequest(
            case_id=r.case_id, status=pb.CASE_STATUS_IN_PROGRESS, note="called", actor="agent-7"
        ),
        timeout=5,
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.UpdateCase(
            pb.UpdateCaseRequest(case_id=r.case_id, status=pb.CASE_STATUS_RESOLVED), timeout=5
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "resolution" in (
        e.value.details() or ""
    )
    done = await stub.UpdateCase(
        pb.UpdateCaseRequest(
            case_id=r.case_id,
            status=pb.CASE_STATUS_RESOLVED,
            resolution="새 택배사로 바꿨습니다",
            notify_customer=True,
            actor="agent-7",
        ),
        timeout=5,
    )
    assert done.case.status == pb.CASE_STATUS_RESOLVED and done.case.notes[0].text == "called"
    assert done.case.resolution == "새 택배사로 바꿨습니다" and done.case.follow_up_invitation_id
    resolved = await eventually(lambda: world.events(ev.CASE_RESOLVED), timeout=10)
    assert resolved[0].follow_up_invitation_id == done.case.follow_up_invitation_id  # type: ignore[attr-defined]
    follow = await eventually(
        lambda: [e for e in world.events(ev.SURVEY_INVITED) if e.case_id == r.case_id],
        timeout=10,  # type: ignore[attr-defined]
    )
    assert follow[0].survey_id == "follow-up"  # type: ignore[attr-defined]


async def test_reviews_voice_and_bad_input(
    feedback: ServiceRuntime, stub: pb_grpc.FeedbackServiceStub, world: World
) -> None:
    await setup_surveys(stub)
    rv = await stub.SubmitReview(
        pb.SubmitReviewRequest(
            customer_id="c1",
            product_id="sku-1",
            rating=1,
            text="Broken on arrival, refund took weeks.",
        ),
        timeout=10,
    )
    assert rv.review_id and rv.case_id
    assert {m.aspect for m in rv.analysis.aspects} >= {"quality", "returns"}
    reviews = await eventually(lambda: world.events(ev.REVIEW_SUBMITTED), timeout=10)
    assert reviews[0].rating == 1 and reviews[0].text_length == len(
        "Broken on arrival, refund took weeks."
    )  # type: ignore[attr-defined]
    good = await stub.SubmitReview(
        pb.SubmitReviewRequest(
            customer_id="c1", product_id="sku-2", rating=5, text="Great quality, fast delivery"
        ),
        timeout=10,
    )
    assert not good.case_id
    v = await stub.RecordVoice(
        pb.RecordVoiceRequest(
            customer_id="c1", source="call_centre", text="고객이 앱 로그인 오류로 화가 났음"
        ),
        timeout=10,
    )
    assert v.voice_id and "app_website" in {m.aspect for m in v.analysis.aspects}
    stored = rows(feedback, t.voice, voice_id=v.voice_id)[0]
    assert "로그인".encode() not in bytes(stored.text_sealed)

    async def refused(call, request, field: str) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(request, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert field in (e.value.details() or ""), e.value.details()

    await refused(
        stub.SubmitReview,
        pb.SubmitReviewRequest(customer_id="c1", product_id="p", rating=6),
        "rating",
    )
    await refused(
        stub.SubmitReview,
        pb.SubmitReviewRequest(customer_id="c1", product_id="p", rating=3, text="x" * 6000),
        "text",
    )
    await refused(
        stub.RecordVoice,
        pb.RecordVoiceRequest(customer_id="c1", source="cc", text="bin\x00ary"),
        "text",
    )
    base = {"survey_id": "post-purchase", "customer_id": "c2"}
    await refused(
        stub.SubmitResponse,
        pb.SubmitResponseRequest(**base, answers=[pb.Answer(question_id="nps", score=11)]),
        "answers[0].score",
    )
    await refused(
        stub.SubmitResponse,
        pb.SubmitResponseRequest(
            **base, survey_version=9, answers=[pb.Answer(question_id="nps", score=5)]
        ),
        "survey_version",
    )
    await refused(
        stub.SubmitResponse, pb.SubmitResponseRequest(token="inv.forged", answers=[]), "token"
    )
    await refused(stub.PutSurvey, pb.PutSurveyRequest(survey_json="{not json"), "survey_json")
    await refused(stub.GetKpis, pb.GetKpisRequest(metric=0), "metric")
    # Nothing of the refused calls was stored.
    assert rows(feedback, t.response) == []
    assert len(rows(feedback, t.review)) == 2

    # A partner's response without a token, partial then completed by idempotent retry.
    first = await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            **base, answers=[pb.Answer(question_id="nps", score=10)], idempotency_key="k1"
        ),
        timeout=10,
    )
    again = await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            **base, answers=[pb.Answer(question_id="nps", score=10)], idempotency_key="k1"
        ),
        timeout=10,
    )
    assert first.response_id == again.response_id and not first.detractor
    assert len(rows(feedback, t.response)) == 1


async def test_partial_response_completes_with_the_same_token(
    feedback: ServiceRuntime, stub: pb_grpc.FeedbackServiceStub, world: World
) -> None:
    await setup_surveys(stub)
    inv = await invite(world, stub, "c-partial")
    part = await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            token=inv.response_token,
            partial=True,
            answers=[pb.Answer(question_id="why", text="Fast delivery, friendly staff")],
        ),
        timeout=10,
    )
    assert not part.complete
    k = await stub.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert k.total.responses == 0  # counted when complete
    full = await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            token=inv.response_token, answers=[pb.Answer(question_id="nps", score=10)]
        ),
        timeout=10,
    )
    assert full.complete and full.response_id == part.response_id
    k = await stub.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert k.total.responses == 1 and k.total.value == 100
    received = await eventually(lambda: world.events(ev.RESPONSE_RECEIVED), timeout=10)
    assert {a.question_id for a in received[0].answers} == {"nps", "why"}  # type: ignore[attr-defined]


async def test_erasure_removes_the_customer_and_keeps_the_kpis(
    feedback: ServiceRuntime, stub: pb_grpc.FeedbackServiceStub, world: World
) -> None:
    await setup_surveys(stub)
    inv = await invite(world, stub, "c-gone")
    await stub.SubmitResponse(
        pb.SubmitResponseRequest(
            token=inv.response_token,
            answers=[
                pb.Answer(question_id="nps", score=2),
                pb.Answer(question_id="why", text="rude staff"),
            ],
        ),
        timeout=10,
    )
    await stub.SubmitReview(
        pb.SubmitReviewRequest(customer_id="c-gone", product_id="p", rating=1, text="awful"),
        timeout=10,
    )
    handlers: FeedbackHandlers = feedback.feedback_handlers  # type: ignore[attr-defined]
    assert feedback.db is not None

    def erase(s):  # type: ignore[no-untyped-def]
        answer = privacy.answer(s, "c-gone", RequestKind.ERASURE, handlers.keyring)
        handlers.keyring.shred(s, "c-gone")
        return answer

    access = await feedback.db.in_transaction(
        lambda s: privacy.answer(s, "c-gone", RequestKind.ACCESS, handlers.keyring)
    )
    exported = json.loads(access.export_json)
    assert exported["responses"][0]["text"] == json.dumps({"why": "rude staff"})
    answer = await feedback.db.in_transaction(erase)
    assert (
        answer.row_counts["responses"] == 1
        and answer.row_counts["reviews"] == 1
        and answer.row_counts["cases"] == 2
    )
    for table in (t.response, t.review, t.case, t.invitation):
        assert rows(feedback, table, customer_id="c-gone") == []
    k = await stub.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert k.total.responses == 1 and k.total.detractors == 1  # the aggregate stays
