"""The gateway's client of personalization (and of identity, to turn a
frontend's userId / anonymousId into a customer id). Keeps the last popular
list per placement so pages still get items, with a stated reason, while
personalization is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import grpc
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
POPULAR_CACHE_SIZE = 100
REFRESH_S = 60.0


class PersonalizationDown(Exception):
    """Personalization did not answer and no popular list is held yet."""


class BadRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _bad(exc: grpc.aio.AioRpcError) -> BadRequest:
    details = exc.details() or ""
    field, sep, message = details.partition(": ")
    return BadRequest(field if sep else "request", message if sep else details)


@dataclass
class Recommendations:
    body: dict[str, Any]
    fallback_reason: str = ""


@dataclass
class PersonalizationClient:
    personalization: grpc.aio.Channel
    identity: grpc.aio.Channel
    deadline_s: float = 1.0
    popular: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.stub = pb_grpc.PersonalizationServiceStub(self.personalization)
        self.ids = ipb_grpc.IdentityServiceStub(self.identity)

    async def customer_for(self, user_id: str, anonymous_id: str) -> str:
        """The identity's customer id, or "" (then answers are non-personal)."""
        for kind, value in (
            (idpb.IDENTIFIER_TYPE_USER_ID, user_id),
            (idpb.IDENTIFIER_TYPE_ANONYMOUS_ID, anonymous_id),
        ):
            if not value:
                continue
            try:
                r = await self.ids.LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(type=kind, value=value)
                    ),
                    timeout=self.deadline_s,
                )
                return str(r.customer_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise BadRequest(
                        "userId" if kind == idpb.IDENTIFIER_TYPE_USER_ID else "anonymousId",
                        exc.details() or "invalid",
                    ) from None
                continue  # unknown or identity down: a cold start
        return ""

    async def recommend(self, req: pb.RecommendRequest) -> Recommendations:
        try:
            r = await self.stub.Recommend(req, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise _bad(exc) from None
            if exc.code() not in DOWN:
                raise
            held = self.popular.get(req.placement) or self.popular.get("")
            if not held:
                raise PersonalizationDown() from None
            items = [
                {
                    **i,
                    "reason": "popular",
                    "explanation": "popular right now (personalization unavailable)",
                    "strategy": "popular",
                }
                for i in held[: req.limit]
            ]
            return Recommendations(
                {
                    "recommendationId": "",
                    "items": items,
                    "fallback": True,
                    "fallbackReason": "personalization_unavailable",
                },
                "personalization_unavailable",
            )
        body = {
            "recommendationId": r.recommendation_id,
            "items": [
                {
                    "itemId": i.item_id,
                    "score": round(i.score, 6),
                    "reason": pb.RecommendationReason.Name(i.reason)
                    .removeprefix("RECOMMENDATION_REASON_")
                    .lower(),
                    "explanation": i.explanation,
                    "strategy": i.strategy,
                    "relatedItemId": i.related_item_id,
                }
                for i in r.items
            ],
            "fallback": r.fallback,
            "fallbackReason": "non_personal" if r.fallback else "",
            "experimentId": r.experiment_id,
            "variantId": r.variant_id,
            "strategy": r.strategy,
        }
        return Recommendations(body)

    async def similar(self, item_id: str, limit: int) -> dict[str, Any]:
        try:
            r = await self.stub.SimilarItems(
                pb.SimilarItemsRequest(item_id=item_id, limit=limit), timeout=self.deadline_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise _bad(exc) from None
            if exc.code() not in DOWN:
                raise
            held = [i for i in self.popular.get("", []) if i["itemId"] != item_id]
            if not held:
                raise PersonalizationDown() from None
            return {
                "items": [
                    {"itemId": i["itemId"], "similarity": 0.0, "strategy": "popular"}
                    for i in held[:limit]
                ],
                "fallback": True,
                "fallbackReason": "personalization_unavailable",
            }
        return {
            "items": [
                {"itemId": i.item_id, "similarity": round(i.similarity, 6), "strategy": i.strategy}
                for i in r.items
            ],
            "fallback": False,
            "fallbackReason": "",
        }

    async def refresh_popular(self) -> bool:
        try:
            r = await self.stub.Recommend(
                pb.RecommendRequest(placement="", limit=POPULAR_CACHE_SIZE, strategy="popular"),
                timeout=self.deadline_s,
            )
        except grpc.aio.AioRpcError:
            return False
        self.popular[""] = [{"itemId": i.item_id, "score": round(i.score, 6)} for i in r.items]
        return True

    async def run(self) -> None:
        """Keeps the popular list current for when personalization is down."""
        while not self._stopping.is_set():
            ok = await self.refresh_popular()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), REFRESH_S if ok else 2.0)

    async def stop(self) -> None:
        self._stopping.set()
        await self.personalization.close()
