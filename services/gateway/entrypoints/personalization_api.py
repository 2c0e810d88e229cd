"""``/v1/recommendations`` and ``/v1/items/{itemId}/similar``: read-only
routes for frontends, authenticated with the source's write key (the same
Basic scheme as the tracking API). Answered by personalization; a held
popular list with ``fallbackReason: personalization_unavailable`` when it is
down. Bad input is a 400 naming the field."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cxloop.personalization.v1 import personalization_service_pb2 as pb
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.adapters.personalization_client import (
    BadRequest,
    PersonalizationClient,
    PersonalizationDown,
)
from gateway.domain.write_keys import WriteKeys

# Query parameter -> Recommend context key.
CONTEXT_PARAMS = {
    "channel": "channel",
    "store": "store",
    "hour": "hour",
    "weekday": "weekday",
    "currentItem": "current_item",
    "cart": "cart",
    "category": "category",
    "priceMin": "price_min",
    "priceMax": "price_max",
    "page": "page",
}
KNOWN = {
    "placement",
    "limit",
    "userId",
    "anonymousId",
    "strategy",
    "excludeItems",
    "writeKey",
    *CONTEXT_PARAMS,
}


def _error(status: int, message: str, field: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["fields"] = [{"field": field, "message": message}]
    return JSONResponse(body, status_code=status)


def _write_key(request: Request) -> str:
    scheme, _, param = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(param.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return request.query_params.get("writeKey", "")


def _limit(raw: str | None) -> int:
    if raw is None:
        return 10
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise BadRequest("limit", "must be an integer between 1 and 100")
    return int(raw)


def add_personalization_routes(
    app: FastAPI, client: PersonalizationClient, write_keys: WriteKeys
) -> None:
    def authorised(request: Request) -> JSONResponse | None:
        key = _write_key(request)
        if not key or write_keys.source_for(key) is None:
            return _error(401, "missing or unknown write key")
        return None

    @app.get("/v1/recommendations", tags=["personalization"])
    async def recommendations(request: Request) -> JSONResponse:
        """Items for a page slot (``placement``) for this visitor."""
        denied = authorised(request)
        if denied is not None:
            return denied
        q = request.query_params
        try:
            unknown = sorted(set(q) - KNOWN)
            if unknown:
                raise BadRequest(unknown[0], "unknown parameter")
            placement = q.get("placement", "")
            if not placement or len(placement) > 64:
                raise BadRequest("placement", "required, at most 64 characters")
            req = pb.RecommendRequest(
                placement=placement,
                limit=_limit(q.get("limit")),
                strategy=q.get("strategy", ""),
                exclude_item_ids=[x for x in q.get("excludeItems", "").split(",") if x],
                context={CONTEXT_PARAMS[k]: v for k, v in q.items() if k in CONTEXT_PARAMS},
            )
            req.customer_id = await client.customer_for(
                q.get("userId", ""), q.get("anonymousId", "")
            )
            got = await client.recommend(req)
        except BadRequest as exc:
            return _error(400, exc.message, exc.field)
        except PersonalizationDown:
            return JSONResponse(
                {"error": "personalization unavailable"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse(got.body)

    @app.get("/v1/items/{item_id}/similar", tags=["personalization"])
    async def similar(item_id: str, request: Request) -> JSONResponse:
        """Items like this one (product pages); needs no visitor."""
        denied = authorised(request)
        if denied is not None:
            return denied
        try:
            if len(item_id) > 128:
                raise BadRequest("itemId", "at most 128 characters")
            body = await client.similar(item_id, _limit(request.query_params.get("limit")))
        except BadRequest as exc:
            return _error(400, exc.message, exc.field)
        except PersonalizationDown:
            return JSONResponse(
                {"error": "personalization unavailable"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse(body)
