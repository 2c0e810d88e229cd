"""Who is calling a console route: an API key (``Authorization: Bearer
cxk_...``, scripts and the CLI) or a console session (the browser's
``cxloop_console`` cookie, opened by pasting a key on the login page).

Both end at the same key record, so roles, permissions and the per-key rate
limit are one set of rules (gateway/domain/access.py). A session adds what
a cookie needs (docs/adr/0110-console-sessions.md): requests must come from
the console's own origin, and every state-changing one must carry the
session's CSRF token in ``X-CSRF-Token``.
"""

# No `from __future__ import annotations`: FastAPI reads the routes'
# annotations at run time.
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxloop_libs.apikeys import ApiKey, KeyRegistry
from gateway.adapters.body import parse_json, read_body
from gateway.adapters.http import ErrorBody
from gateway.domain.access import ROLE_PERMISSIONS, Permission, RateLimits, TokenBucket, allowed
from gateway.domain.sessions import SessionBook, same_origin

COOKIE = "cxloop_console"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Every console route's error answers, in the one error shape (OpenAPI).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request; `fields` names each problem."},
    401: {
        "model": ErrorBody,
        "description": "No API key or console session, or an unknown, revoked one.",
    },
    403: {
        "model": ErrorBody,
        "description": "The role may not; a session request without its CSRF token or "
        "from another origin.",
    },
    404: {"model": ErrorBody, "description": "No such customer, case, item or segment."},
    409: {"model": ErrorBody, "description": "The service refused: decided the other way ..."},
    429: {"model": ErrorBody, "description": "Over the key's rate; see `Retry-After`."},
    503: {"model": ErrorBody, "description": "A service cannot answer now; see `Retry-After`."},
}


class Refused(Exception):
    def __init__(
        self, status: int, message: str, field: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the key, and whether it came as a session."""

    key: ApiKey
    session: bool


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_key: str = Field(alias="apiKey", min_length=1, max_length=200)


def describe(key: ApiKey) -> dict[str, Any]:
    return {
        "keyId": key.key_id,
        "name": key.name,
        "role": key.role,
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS.get(key.role, ())),
        "ratePerSecond": key.rate_per_s,
    }


class ConsoleGate:
    def __init__(
        self,
        registry: KeyRegistry,
        *,
        sessions: SessionBook | None = None,
        secure_cookie: bool = True,
        clock: Callable[[], float] = time.monotonic,
        login_rate_per_s: float = 5.0,
    ) -> None:
        self.registry = registry
        # Not `sessions or ...`: an empty book is falsy (it has a length).
        self.sessions = sessions if sessions is not None else SessionBook()
        self.secure_cookie = secure_cookie
        self.clock = clock
        self.limits = RateLimits()
        # Failed logins across all callers: guessing a 256-bit secret is
        # hopeless, but a flood of attempts should not cost the process.
        self._failed_logins = TokenBucket(login_rate_per_s)
        registry.on_change.append(self._key_changed)

    def _key_changed(self, key: ApiKey) -> None:
        if not key.active:
            self.sessions.close_key(key.key_id)

    def _ready(self) -> None:
        if not self.registry.ready.is_set():
            raise Refused(503, "API keys are loading", headers={"Retry-After": "1"})

    @staticmethod
    def check_origin(request: Request) -> None:
        if not same_origin(
            request.headers.get("origin"),
            request.headers.get("sec-fetch-site"),
            request.headers.get("host", ""),
        ):
            raise Refused(403, "cross-origin requests are refused", "Origin")

    def _by_session(self, request: Request) -> ApiKey | None:
        session_id = request.cookies.get(COOKIE)
        if not session_id:
            return None
        self.check_origin(request)
        session = self.sessions.find(session_id, self.clock())
        key = self.registry.keys.get(session.key_id) if session is not None else None
        if session is None or key is None or not key.active:
            raise Refused(401, "the console session has ended; log in again", "Cookie")
        if request.method not in SAFE_METHODS and not session.csrf_matches(
            request.headers.get(CSRF_HEADER)
        ):
            raise Refused(403, "missing or wrong CSRF token", f"header:{CSRF_HEADER}")
        return key

    def authenticate(self, request: Request) -> Caller:
        self._ready()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            key = self.registry.authenticate(token)
            if key is None:
                raise Refused(
                    401,
                    "unknown or revoked API key",
                    "Authorization",
                    {"WWW-Authenticate": "Bearer"},
                )
            return Caller(key, session=False)
        key = self._by_session(request)
        if key is None:
            raise Refused(
                401,
                "an API key is required (Authorization: Bearer cxk_...) or a console session",
                "Authorization",
                {"WWW-Authenticate": "Bearer"},
            )
        return Caller(key, session=True)

    def _limit(self, key: ApiKey) -> None:
        wait = self.limits.take(key.key_id, key.rate_per_s, self.clock())
        if wait > 0:
            raise Refused(
                429,
                f"over this key's {key.rate_per_s} requests per second",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )

    def require(self, permission: Permission | None) -> Callable[..., Awaitable[Caller]]:
        """A route dependency: the caller, if it may do ``permission``."""

        # A coroutine, so FastAPI runs it on the event loop: a plain function
        # is run in a worker thread, a hop per request for a check that only
        # reads memory (docs/adr/0295).
        async def dependency(request: Request) -> Caller:
            caller = self.authenticate(request)
            self._limit(caller.key)
            if permission is not None and not allowed(caller.key.role, permission):
                raise Refused(403, f"role {caller.key.role!r} may not {permission.value}")
            return caller

        return dependency

    # -- the session routes ------------------------------------------------

    def _set_cookie(self, response: JSONResponse, value: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure_cookie,
            httponly=True,
            samesite="strict",
        )

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1/console", tags=["console"], responses=ERRORS)

        @router.post(
            "/session",
            summary="Log in to the console with an API key (sets a cookie)",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": LoginBody.model_json_schema(by_alias=True)}
                    },
                }
            },
        )
        async def login(request: Request) -> JSONResponse:
            # Login CSRF: only the console's own page may open a session.
            self.check_origin(request)
            self._ready()
            if "application/json" not in request.headers.get("content-type", ""):
                raise Refused(415, 'send JSON: {"apiKey": "cxk_..."}', "header:Content-Type")
            try:
                body = LoginBody.model_validate(parse_json(await read_body(request, 4096)))
            except ValidationError:
                raise Refused(400, "give the API key as apiKey", "apiKey") from None
            key = self.registry.authenticate(body.api_key)
            if key is None:
                wait = self._failed_logins.take(self.clock())
                if wait > 0:
                    raise Refused(429, "too many failed logins", headers={"Retry-After": "1"})
                raise Refused(401, "unknown or revoked API key", "apiKey")
            self._limit(key)
            session_id, session = self.sessions.open(key.key_id, self.clock())
            response = JSONResponse(
                {
                    **describe(key),
                    "csrfToken": session.csrf_token,
                    "idleTimeoutSeconds": int(self.sessions.idle_s),
                }
            )
            self._set_cookie(response, session_id, int(self.sessions.max_age_s))
            response.headers["Cache-Control"] = "no-store"
            return response

        @router.get("/session", summary="The console session: who, role, CSRF token")
        async def current(request: Request) -> JSONResponse:
            self._ready()
            key = self._by_session(request)
            if key is None:
                raise Refused(401, "not logged in", "Cookie")
            session = self.sessions.find(request.cookies.get(COOKIE), self.clock())
            assert session is not None
            response = JSONResponse(
                {
                    **describe(key),
                    "csrfToken": session.csrf_token,
                    "idleTimeoutSeconds": int(self.sessions.idle_s),
                }
            )
            response.headers["Cache-Control"] = "no-store"
            return response

        @router.delete("/session", summary="Log out (needs the CSRF token)")
        async def logout(request: Request) -> JSONResponse:
            self._ready()
            if self._by_session(request) is None:
                raise Refused(401, "not logged in", "Cookie")
            self.sessions.close(request.cookies.get(COOKIE))
            response = JSONResponse({"loggedOut": True})
            self._set_cookie(response, "", 0)
            return response

        return router


def install(app: FastAPI, gate: ConsoleGate) -> None:
    """The session routes and the refusal handler (once per app)."""
    from gateway.adapters.error_body import error_body

    app.include_router(gate.router())

    async def on_refused(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        fields = [{"field": exc.field, "reason": exc.message}] if exc.field else None
        body = error_body(exc.status, exc.message, fields)
        if exc.status == 403:
            body["code"] = "forbidden"
        elif exc.status == 429:
            body["code"] = "rate_limited"
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(Refused, on_refused)

    async def on_invalid(_request: Request, exc: Exception) -> JSONResponse:
        """A query, path or header value FastAPI refused: a 400 in the one
        error shape naming the parameter (not FastAPI's 422 ``detail``)."""
        assert isinstance(exc, RequestValidationError)
        fields = []
        for problem in exc.errors():
            loc = [str(x) for x in problem.get("loc", ())]
            name = ".".join(loc[1:]) or (loc[0] if loc else "request")
            if loc and loc[0] == "header":
                name = f"header:{name}"
            fields.append({"field": name, "reason": str(problem.get("msg", "invalid"))})
        return JSONResponse(error_body(400, "invalid request", fields), status_code=400)

    app.add_exception_handler(RequestValidationError, on_invalid)
