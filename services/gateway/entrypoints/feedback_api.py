"""``/v1/feedback``: what a survey page or review form in the browser calls.

No write key: the invitation's signed single-use token (from the survey link)
is the only credential, and it only lets its holder answer that invitation
(or review with it). Requests from an ``Origin`` not in
``CXLOOP_GATEWAY_FEEDBACK_ORIGINS`` are refused (403, field ``origin``);
empty allows every origin (development). Errors are 400 with the field that
is wrong, as the feedback service named it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format

from gateway.adapters.feedback_client import FeedbackClient

MAX_BODY_BYTES = 64 * 1024
_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}


def _error(status: int, message: str, field: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["fields"] = [{"field": field, "message": message}]
    return JSONResponse(body, status_code=status)


def _from_grpc(exc: grpc.aio.AioRpcError) -> JSONResponse:
    details = exc.details() or ""
    field, _, _ = details.partition(":")
    status = _STATUS.get(exc.code(), 502)
    if status == 400:
        return _error(400, details, field.strip())
    return _error(status, details if status < 500 else "feedback service unavailable")


def feedback_router(client: FeedbackClient, *, origins: frozenset[str] = frozenset()) -> APIRouter:
    router = APIRouter(prefix="/v1/feedback", tags=["feedback"])

    async def body_of(request: Request) -> dict[str, Any] | JSONResponse:
        origin = request.headers.get("origin")
        if origins and origin is not None and origin not in origins:
            return _error(403, "origin not allowed", "origin")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            doc = json.loads(raw)
        except ValueError:
            return _error(400, "body: not JSON", "body")
        if not isinstance(doc, dict):
            return _error(400, "body: a JSON object", "body")
        return doc

    async def call(
        request: Request,
        build: Callable[[dict[str, Any]], Any],
        send: Callable[[Any], Awaitable[Any]],
    ) -> JSONResponse:
        doc = await body_of(request)
        if isinstance(doc, JSONResponse):
            return doc
        try:
            message = build(doc)
        except json_format.ParseError as exc:
            return _error(400, str(exc)[:200], "body")
        try:
            reply = await send(message)
        except grpc.aio.AioRpcError as exc:
            return _from_grpc(exc)
        return JSONResponse(json_format.MessageToDict(reply))

    def response_request(doc: dict[str, Any]) -> pb.SubmitResponseRequest:
        # Only what a public page may set: survey, customer and dimensions
        # come from the invitation behind the token.
        allowed = {k: doc[k] for k in ("token", "answers", "partial", "idempotencyKey") if k in doc}
        msg = json_format.ParseDict(allowed, pb.SubmitResponseRequest())
        if not msg.token:
            raise json_format.ParseError("token: required")
        return msg

    def review_request(doc: dict[str, Any]) -> pb.SubmitReviewRequest:
        allowed = {k: doc[k] for k in ("token", "productId", "rating", "text") if k in doc}
        msg = json_format.ParseDict(allowed, pb.SubmitReviewRequest())
        if not msg.token:
            raise json_format.ParseError("token: required")
        return msg

    @router.post("/responses", summary="Answer a survey invitation with its token.")
    async def submit_response(request: Request) -> JSONResponse:
        return await call(request, response_request, client.submit_response)

    @router.post("/reviews", summary="Review a product with an invitation token.")
    async def submit_review(request: Request) -> JSONResponse:
        return await call(request, review_request, client.submit_review)

    @router.get("/surveys/{survey_id}", summary="A survey's questions, to render the page.")
    async def get_survey(survey_id: str, version: int = 0) -> JSONResponse:
        try:
            reply = await client.get_survey(survey_id[:64], version)
        except grpc.aio.AioRpcError as exc:
            return _from_grpc(exc)
        return JSONResponse(json.loads(reply.survey.survey_json))

    return router


def add_feedback_routes(
    app: FastAPI, client: FeedbackClient, origins: frozenset[str] = frozenset()
) -> None:
    app.include_router(feedback_router(client, origins=origins))
    if origins:
        app.add_middleware(FeedbackCors, origins=origins)


class FeedbackCors:
    """CORS of ``/v1/feedback`` for the allowed origins only. The gateway's
    CORS middleware allows every origin (``*``; the ingest API needs that),
    so without this a page from any origin would be told it may post survey
    answers, and learn only from the 403 that it may not. Added after that
    middleware, so it runs first: a preflight from another origin is refused
    here (403, field ``origin``, no CORS headers); on the answers, the
    ``*`` becomes the caller's origin when it is allowed (with ``Vary:
    Origin``, so a cache keeps one answer per origin), and every CORS header
    is removed when it is not."""

    def __init__(self, app: Any, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/feedback/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if not allowed:
                await _error(403, "origin not allowed", "origin")(scope, receive, send)
                return

        async def send_with_origin(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"access-control-allow-origin", b"vary")
                    and (allowed or not k.lower().startswith(b"access-control-"))
                ]
                vary = [
                    v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k.lower() == b"vary"
                ]
                varies = {x.strip().lower() for v in vary for x in v.split(",")}
                if "origin" not in varies:
                    vary.append("Origin")
                kept.append((b"vary", ", ".join(vary).encode("latin-1")))
                if allowed:
                    kept.append((b"access-control-allow-origin", origin.encode("latin-1")))
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_with_origin)
