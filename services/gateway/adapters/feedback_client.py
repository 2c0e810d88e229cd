"""The gateway's client of the feedback service (public survey and review
submission by invitation token)."""

from __future__ import annotations

from typing import Any

import grpc
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc


class FeedbackClient:
    def __init__(self, channel: grpc.aio.Channel, *, deadline_s: float = 5.0) -> None:
        self._stub = pb_grpc.FeedbackServiceStub(channel)
        self.deadline_s = deadline_s

    async def submit_response(self, request: pb.SubmitResponseRequest) -> pb.SubmitResponseResponse:
        return await self._stub.SubmitResponse(request, timeout=self.deadline_s)  # type: ignore[no-any-return]

    async def submit_review(self, request: pb.SubmitReviewRequest) -> pb.SubmitReviewResponse:
        return await self._stub.SubmitReview(request, timeout=self.deadline_s)  # type: ignore[no-any-return]

    async def get_survey(self, survey_id: str, version: int) -> Any:
        return await self._stub.GetSurvey(
            pb.GetSurveyRequest(survey_id=survey_id, version=version), timeout=self.deadline_s
        )
