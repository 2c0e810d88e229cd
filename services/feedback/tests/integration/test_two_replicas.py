"""Two replicas of the feedback service on one PostgreSQL database and one
NATS: what one stores the other serves, a purchase invites once, a token
spent on one is spent on the other, KPIs agree, and an erasure through one
leaves nothing the other can open (no subject key is kept in memory)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from cxloop.feedback.v1 import events_pb2 as epb
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import KeyShredded
from cxloop_libs.privacy import RequestKind
from feedback.adapters import privacy
from feedback.adapters import tables as t
from feedback.service_layer.handlers import ANSWER_CONTEXT, FeedbackHandlers
from feedback.tests.integration.conftest import World, settings_for, start_feedback
from feedback.tests.integration.test_feedback_loop import NPS_SURVEY, invite, rows, setup_surveys

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


async def test_two_replicas_agree(
    clean_nats: str, postgres_url: str, model_dir: Path, world: World
) -> None:
    a = await start_feedback(settings_for(clean_nats, postgres_url, model_dir))
    b = await start_feedback(settings_for(clean_nats, postgres_url, model_dir))
    assert a.grpc_server is not None and b.grpc_server is not None
    ch_a = grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}")
    ch_b = grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc_server.port}")
    try:
        sa_, sb = pb_grpc.FeedbackServiceStub(ch_a), pb_grpc.FeedbackServiceStub(ch_b)
        await setup_surveys(sa_)
        got = await sb.GetSurvey(pb.GetSurveyRequest(survey_id="post-purchase"), timeout=5)
        assert got.survey.version == 1
        v2 = dict(NPS_SURVEY, name="After purchase (v2)")
        await sb.PutSurvey(pb.PutSurveyRequest(survey_json=json.dumps(v2)), timeout=5)
        got = await sa_.GetSurvey(pb.GetSurveyRequest(survey_id="post-purchase"), timeout=5)
        assert got.survey.version == 2  # A's cache of versions does not hide B's new one

        inv = await invite(world, sa_, "c-two")
        await asyncio.sleep(1.0)  # both replicas consume the same durable consumer
        invited = {
            e.invitation_id  # type: ignore[attr-defined]
            for e in world.events(ev.SURVEY_INVITED)
            if e.customer_id == "c-two"  # type: ignore[attr-defined]
        }
        # One invitation. (Both replicas' relays may publish its event; it
        # carries one event id, so the stream keeps one and consumers dedupe.)
        assert len(invited) == 1
        assert len(rows(a, t.invitation, customer_id="c-two")) == 1

        answer = pb.SubmitResponseRequest(
            token=inv.response_token,
            answers=[
                pb.Answer(question_id="nps", score=3),
                pb.Answer(question_id="why", text="배송이 너무 늦었어요"),
            ],
        )
        r = await sb.SubmitResponse(answer, timeout=10)
        assert r.complete and r.detractor and r.case_id
        with pytest.raises(grpc.aio.AioRpcError) as spent:
            await sa_.SubmitResponse(answer, timeout=10)
        assert spent.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (spent.value.details() or "").startswith("token")

        ka = await sa_.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
        kb = await sb.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
        assert ka.total == kb.total and ka.total.responses == 1 and ka.total.detractors == 1

        sealed = bytes(rows(b, t.response, customer_id="c-two")[0].text_sealed)
        ha: FeedbackHandlers = a.feedback_handlers  # type: ignore[attr-defined]
        hb: FeedbackHandlers = b.feedback_handlers  # type: ignore[attr-defined]
        opened = await b.db.in_transaction(  # type: ignore[union-attr]
            lambda s: hb.keyring.open(s, "c-two", sealed, context=ANSWER_CONTEXT)
        )
        assert json.loads(opened) == {"why": "배송이 너무 늦었어요"}

        def erase(s):  # type: ignore[no-untyped-def]
            out = privacy.answer(s, "c-two", RequestKind.ERASURE, ha.keyring)
            ha.keyring.shred(s, "c-two")
            return out

        await a.db.in_transaction(erase)  # type: ignore[union-attr]
        with pytest.raises(KeyShredded):
            await b.db.in_transaction(  # type: ignore[union-attr]
                lambda s: hb.keyring.open(s, "c-two", sealed, context=ANSWER_CONTEXT)
            )
        for table in (t.response, t.case, t.invitation):
            assert rows(b, table, customer_id="c-two") == []
        kb = await sb.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
        assert kb.total.responses == 1  # the aggregate stays, on both
    finally:
        await ch_a.close()
        await ch_b.close()
        await a.stop()
        await b.stop()
