"""The HTTP edge: Segment-compatible routes, probes and error bodies.

Thin: it authenticates the write key, reads the body within its size limit
and hands the JSON to :class:`~gateway.service_layer.ingest.SegmentIngest`.
Every error has one shape (``adapters/error_body.py``, docs/adr/0035).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cxloop_libs.errors import Unavailable
from gateway.adapters.body import check_content_type, parse_json, read_body
from gateway.adapters.error_body import error_body
from gateway.adapters.privacy_api import (
    OpenPrivacyRequestBody,
    PrivacyUnauthorized,
    add_privacy_routes,
)
from gateway.adapters.readiness import Readiness
from gateway.domain.errors import InvalidRequest, TooLarge, UnsupportedMediaType
from gateway.domain.segment import MESSAGE_MODELS, BatchRequest, CallType, batch_items_schema
from gateway.domain.translation import Reception
from gateway.domain.write_keys import WriteKeys
from gateway.service_layer.ingest import (
    MAX_EVENT_BYTES,
    IngestResult,
    NotStored,
    SegmentIngest,
)
from gateway.service_layer.metrics import GatewayMetrics, gateway_metrics
from gateway.service_layer.privacy_desk import PrivacyDesk

log = logging.getLogger(__name__)

RETRY_AFTER_S = "1"
# Segment's short paths, used by analytics.js; /v1/import is Segment's batch alias.
_SHORT_PATHS: dict[CallType, str] = {
    CallType.TRACK: "/v1/t",
    CallType.IDENTIFY: "/v1/i",
    CallType.PAGE: "/v1/p",
    CallType.SCREEN: "/v1/s",
    CallType.ALIAS: "/v1/a",
    CallType.GROUP: "/v1/g",
}
_CALL_DOCS: dict[CallType, str] = {
    CallType.TRACK: "Record an action the customer performed (`event` is required).",
    CallType.IDENTIFY: "Tie the customer to their traits; only `email`, `phone` and "
    "`loyaltyCard` are kept, hashed.",
    CallType.PAGE: "Record a web page view (`name` optional).",
    CallType.SCREEN: "Record an app screen view (`name` optional).",
    CallType.ALIAS: "Say that `previousId` and `userId` are the same customer.",
    CallType.GROUP: "Tie the customer to a group (company, household) by `groupId`.",
}
DESCRIPTION = """
Segment-compatible ingest of customer interactions
([Segment HTTP tracking API](https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/)).

* **Auth**: the write key as HTTP Basic username with an empty password, or
  `writeKey` in the JSON body.
* **Limits**: 32 KB per call and per event; `/v1/batch` up to 500 KB and 500 events.
* **Privacy**: identifiers are hashed with a keyed HMAC; other traits and PII-named
  properties (email, phone, name, firstName, lastName, address, ip) are dropped.
* **Delivery**: `200` only once JetStream stored the events; `503` with `Retry-After`
  when it could not (`stored` lists the messageIds that were). Send `messageId`
  so retries are stored once.
* **Batches** keep their good events: each invalid one is listed in `rejections`
  (index, messageId, field, reason) and not stored; the answer is still `200`.
* **Free text**: emails, phone numbers and resident registration numbers in
  properties and names are replaced by `[redacted ...]`.
* **Errors**: `{"success": false, "code": "invalid_request", "message": "...",
  "error": "...", "fields": [{"field": "userId", "reason": "..."}]}`.
"""


class Accepted(BaseModel):
    success: bool = True
    accepted: int = Field(description="Events in the request that are now stored.")
    duplicates: int = Field(0, description="Of those, events whose messageId was already stored.")
    dropped_identifiers: int = Field(
        0,
        alias="droppedIdentifiers",
        description="Placeholder identifiers (test@test.com, 010-0000-0000 ...) left out.",
    )
    withheld: int = Field(
        0,
        description="Of the accepted events, track/page/screen calls not stored because "
        "the customer objected to analytics.",
    )


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    success: bool = False
    code: str = Field(description="invalid_request, unauthorized, too_large, unavailable ...")
    message: str
    error: str = Field(description="Same as `message`.")
    fields: list[FieldError] | None = None
    stored: list[str] | None = Field(
        None, description="503 only: messageIds JetStream did store before failing."
    )


class Rejected(BaseModel):
    index: int = Field(description="Position of the event in `batch`.")
    message_id: str | None = Field(alias="messageId")
    field: str
    reason: str
    code: str = Field(description="invalid, too_large or not_attributable.")


class BatchAccepted(Accepted):
    rejected: int = Field(0, description="Events of the batch not stored (see `rejections`).")
    not_attributable: int = Field(
        0,
        alias="notAttributable",
        description="Of the rejected, events whose identifiers were all placeholders.",
    )
    rejections: list[Rejected] = Field(
        default_factory=list, description="One entry per problem (at most 100)."
    )


class Readyz(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="What gates readiness: nats, jetstream ...")
    dependencies: dict[str, bool] = Field(
        default_factory=dict,
        description="Services some routes call; while one is down those routes answer 503 "
        "with Retry-After, the rest of the gateway stays ready.",
    )


class Unauthorized(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WriteKeyAuth(HTTPBasic):
    """Segment's scheme: ``Authorization: Basic base64(writeKey + ":")``.

    Lenient where Segment SDKs differ (a missing ``:``, a UTF-8 key); returns
    None when there is no Basic header so the body's ``writeKey`` can be used.
    """

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        header = request.headers.get("authorization", "")
        scheme, _, param = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic authorization header") from None
        return decoded.partition(":")[0]


_write_key_auth = WriteKeyAuth(
    auto_error=False,
    scheme_name="writeKey",
    description="The source's write key as username, empty password.",
)

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request; `fields` names each problem."},
    401: {"model": ErrorBody, "description": "Missing or unknown write key."},
    413: {"model": ErrorBody, "description": "Body, batch or event over its limit."},
    503: {"model": ErrorBody, "description": "Events not stored; retry after `Retry-After`."},
}


def global_privacy_control(header: str | None) -> bool:
    """``Sec-GPC`` as the GPC specification defines it: absent, or ``1``.
    Anything else is refused rather than guessed at: read as no signal it
    would drop an opt-out; read as one it would invent it."""
    if header is None:
        return False
    if header.strip() == "1":
        return True
    raise InvalidRequest.one("header:Sec-GPC", "must be 1 when present (Global Privacy Control)")


def _error(status: int, message: str, fields: list[dict[str, str]] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, fields), status_code=status)


def create_app(
    *,
    ingest: SegmentIngest,
    write_keys: WriteKeys,
    readiness: Readiness,
    max_batch_bytes: int = 500 * 1024,
    max_call_bytes: int = MAX_EVENT_BYTES,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    metrics: GatewayMetrics | None = None,
    privacy_desk: PrivacyDesk | None = None,
    privacy_tokens: frozenset[str] = frozenset(),
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    metrics = metrics or gateway_metrics()
    app = FastAPI(
        title="cxloop gateway",
        version="1.0.0",
        summary="HTTP/JSON ingest for frontends, following the Segment tracking API.",
        description=DESCRIPTION,
    )
    # Web shops call the gateway straight from the browser (as analytics.js
    # does with Segment); the write key is in a header, not a cookie, so any
    # origin may send and no credentials mode is needed.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        # Any request header: SDKs add their own (analytics-next's
        # X-Retry-Count on retries); refusing one in the preflight makes the
        # browser drop the event (issue 10 item 13). No credentials mode, so
        # this exposes nothing.
        allow_headers=["*"],
        expose_headers=["Retry-After"],
        max_age=86_400,
    )
    _install_error_handlers(app, metrics)

    def authenticate(header_key: str | None, body: dict[str, Any] | None) -> str:
        key = header_key
        if not key and body is not None:
            body_key = body.get("writeKey")
            key = body_key if isinstance(body_key, str) else None
        if not key:
            raise Unauthorized("missing write key (HTTP Basic username or writeKey)")
        source = write_keys.source_for(key)
        if source is None:
            raise Unauthorized("unknown write key")
        return source

    async def receive(
        request: Request, header_key: str | None, limit: int
    ) -> tuple[dict[str, Any], Reception]:
        if header_key:
            # Refuse a wrong key before reading (possibly large) bodies.
            authenticate(header_key, None)
        check_content_type(request)
        body = parse_json(await read_body(request, limit))
        source = authenticate(header_key, body)
        reception = Reception(
            source=source,
            received_at=clock(),
            global_privacy_control=global_privacy_control(request.headers.get("sec-gpc")),
        )
        return body, reception

    def accepted(result: IngestResult, *, batch: bool = False) -> JSONResponse:
        body: dict[str, Any] = {
            "success": True,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "droppedIdentifiers": result.junk_identifiers_dropped,
            "withheld": result.withheld,
        }
        if batch or result.rejected_events:
            body["rejected"] = result.rejected_events
            body["notAttributable"] = result.not_attributable
            body["rejections"] = [r.as_dict() for r in result.rejections]
        return JSONResponse(body)

    def call_route(call_type: CallType) -> Callable[..., Awaitable[JSONResponse]]:
        async def route(
            request: Request, header_key: str | None = Depends(_write_key_auth)
        ) -> JSONResponse:
            body, reception = await receive(request, header_key, max_call_bytes)
            return accepted(await ingest.single(call_type, body, reception))

        return route

    for call_type in CallType:
        handler = call_route(call_type)
        app.add_api_route(
            f"/v1/{call_type.value}",
            handler,
            methods=["POST"],
            name=call_type.value,
            summary=call_type.value.capitalize(),
            description=_CALL_DOCS[call_type],
            tags=["ingest"],
            response_model=BatchAccepted,
            responses=_ERROR_RESPONSES,
        )
        app.add_api_route(
            _SHORT_PATHS[call_type], handler, methods=["POST"], include_in_schema=False
        )

    async def batch(
        request: Request, header_key: str | None = Depends(_write_key_auth)
    ) -> JSONResponse:
        body, reception = await receive(request, header_key, max_batch_bytes)
        return accepted(await ingest.batch(body, reception), batch=True)

    # /v1/b: analytics-next's batching delivery, analytics-swift/kotlin and
    # react-native; /v1/import: Segment's batch alias.
    for path, in_schema in (("/v1/batch", True), ("/v1/import", False), ("/v1/b", False)):
        app.add_api_route(
            path,
            batch,
            methods=["POST"],
            name="batch" if in_schema else "import",
            summary="Batch",
            description="Several calls in one request, each with its `type`. Every valid "
            "event is stored; each invalid one is reported in `rejections` (index, "
            "messageId, field, reason) and not stored. 400 only when the body is not a "
            "batch; 413 when it is over the byte or event limit.",
            tags=["ingest"],
            response_model=BatchAccepted,
            responses=_ERROR_RESPONSES,
            include_in_schema=in_schema,
        )

    @app.get("/v1/projects/{write_key}/settings", include_in_schema=False)
    async def sdk_settings(request: Request, write_key: str) -> JSONResponse:
        """What analytics.js/analytics-next fetch from their CDN at load: with
        ``cdnURL`` pointing at the gateway, the SDK sends its events here."""
        if write_keys.source_for(write_key) is None:
            raise Unauthorized("unknown write key")
        host = request.headers.get("host") or request.url.netloc
        return JSONResponse(
            {
                "integrations": {
                    "Segment.io": {
                        "apiKey": write_key,
                        "apiHost": f"{host}/v1",
                        "protocol": request.url.scheme,
                    }
                },
                "plan": {"track": {"__default": {"enabled": True}}},
                "metrics": {"sampleRate": 0},
            }
        )

    @app.post("/v1/m", include_in_schema=False)
    async def sdk_metrics(request: Request) -> JSONResponse:
        """analytics-next's own telemetry: read within a limit and dropped."""
        await read_body(request, max_call_bytes)
        return JSONResponse({"success": True})

    @app.get("/healthz", tags=["probes"], summary="Liveness: 200 while the process runs.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["probes"],
        summary="Readiness: JetStream answers now, so events can be accepted.",
        response_model=Readyz,
        responses={503: {"model": Readyz, "description": "Something is not ready."}},
    )
    async def readyz() -> JSONResponse:
        checks, dependencies = await asyncio.gather(readiness.checks(), readiness.dependencies())
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "checks": checks, "dependencies": dependencies},
            status_code=200 if ready else 503,
        )

    if privacy_desk is not None:
        add_privacy_routes(app, privacy_desk, privacy_tokens, metrics=metrics)
    # Other domains' routes (loyalty, feedback, personalization ...): one
    # APIRouter each, built in bootstrap.create_gateway_app. Their errors get
    # the handlers above (raise Unavailable for 503 + Retry-After).
    for router in routers:
        app.include_router(router)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI, metrics: GatewayMetrics) -> None:
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidRequest)
        metrics.requests_rejected.add(1, {"reason": "invalid"})
        log.info("request refused: invalid", extra={"fields": [p.field for p in exc.problems]})
        return _error(400, "invalid request", [p.as_dict() for p in exc.problems])

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TooLarge)
        metrics.requests_rejected.add(1, {"reason": "too_large"})
        return _error(413, exc.message, [p.as_dict() for p in exc.problems])

    async def unsupported(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UnsupportedMediaType)
        metrics.requests_rejected.add(1, {"reason": "media_type"})
        return _error(415, exc.message, [{"field": "header:Content-Type", "reason": exc.message}])

    async def unauthorized(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unauthorized | PrivacyUnauthorized)
        metrics.requests_rejected.add(1, {"reason": "unauthorized"})
        response = _error(401, exc.message)
        if isinstance(exc, PrivacyUnauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        body = error_body(503, str(exc) or "service unavailable")
        if isinstance(exc, NotStored):
            # What JetStream did store: resending with the same messageIds is safe.
            body["stored"] = exc.stored
        return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return _error(500, "internal error")

    app.add_exception_handler(InvalidRequest, invalid)
    app.add_exception_handler(TooLarge, too_large)
    app.add_exception_handler(UnsupportedMediaType, unsupported)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(PrivacyUnauthorized, unauthorized)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies: the routes read the body
    themselves (to enforce size limits before parsing), so FastAPI cannot see them."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    bodies: dict[str, type[BaseModel]] = {
        f"/v1/{t.value}": model for t, model in MESSAGE_MODELS.items()
    }
    bodies["/v1/batch"] = BatchRequest
    bodies["/v1/privacy/requests"] = OpenPrivacyRequestBody
    for path, model in bodies.items():
        operation = schema.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        js = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, definition in js.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components[model.__name__] = js
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    # Query and path values FastAPI refuses are answered 400 in the one error
    # shape (gateway/entrypoints/console_auth.install), never 422.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": "Invalid request; `fields` names each problem.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
                            }
                        },
                    },
                )
    batch_schema = components.get(BatchRequest.__name__)
    if batch_schema is not None:
        batch_schema["properties"]["batch"]["items"] = batch_items_schema("#/components/schemas/")
    app.openapi_schema = schema
    return schema
