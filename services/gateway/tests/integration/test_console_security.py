"""Every console route refuses a missing, wrong, forged, revoked or
under-privileged API key or console session; a write key opens nothing;
state-changing session requests need the CSRF token; cross-origin requests
are refused; sessions end at logout, when idle and when their key is
revoked (docs/adr/0100, docs/adr/0110).

Real NATS (the keys' bucket) and the console's real routes; the services
behind them are addresses where nothing answers, so an allowed request
gets past the gate and then a partial answer or a 503 — never 401/403."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from cxloop_libs.apikeys import KeyRegistry, KeyStore
from cxloop_libs.audit.stream import read_audit_entries
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_testing.infra import eventually, free_port
from gateway.adapters.console_audit import StreamAudit
from gateway.adapters.console_sources import GrpcConsoleSources
from gateway.adapters.customer_parts import grpc_customer360
from gateway.domain.access import ROLE_PERMISSIONS, Permission
from gateway.domain.sessions import SessionBook
from gateway.entrypoints.console_api import add_console_routes
from gateway.entrypoints.console_auth import COOKIE, ConsoleGate
from gateway.entrypoints.console_views import add_console_views
from gateway.service_layer.privacy_desk import PrivacyDesk

pytestmark = pytest.mark.integration

HOST = "gw.test"
ORIGIN = f"http://{HOST}"
REASON = {"X-Cxloop-Reason": "security test"}
ROLES = ("admin", "marketer", "analyst", "agent", "privacy_officer")
WRITE_KEY = "shop-write-key"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with a sample id / query
    template: str  # as FastAPI knows it
    permission: Permission | None
    body: dict[str, Any] | None = None


ROUTES = (
    Route("GET", "/v1/me", "/v1/me", None),
    Route("GET", "/v1/customers/c-1", "/v1/customers/{customer_id}", Permission.CUSTOMER_READ),
    Route("GET", "/v1/customers?email=a@example.com", "/v1/customers", Permission.CUSTOMER_READ),
    Route(
        "POST",
        "/v1/customers/c-1/points",
        "/v1/customers/{customer_id}/points",
        Permission.CUSTOMER_ACT,
        {"points": 5, "reason": "goodwill"},
    ),
    Route(
        "POST",
        "/v1/customers/c-1/privacy-requests",
        "/v1/customers/{customer_id}/privacy-requests",
        Permission.PRIVACY,
        {"type": "access"},
    ),
    Route("GET", "/v1/console/overview", "/v1/console/overview", Permission.ANALYTICS_READ),
    Route("GET", "/v1/console/funnel?steps=a,b", "/v1/console/funnel", Permission.ANALYTICS_READ),
    Route(
        "GET",
        "/v1/console/experiments/e-1",
        "/v1/console/experiments/{experiment_id}",
        Permission.ANALYTICS_READ,
    ),
    Route(
        "GET", "/v1/console/segments/s-1", "/v1/console/segments/{segment_id}", Permission.SEGMENTS
    ),
    Route(
        "POST",
        "/v1/console/segments/preview",
        "/v1/console/segments/preview",
        Permission.SEGMENTS,
        {"rule": "lifetime_orders >= 1"},
    ),
    Route("GET", "/v1/console/segments", "/v1/console/segments", Permission.SEGMENTS),
    Route(
        "POST",
        "/v1/console/segments",
        "/v1/console/segments",
        Permission.SEGMENTS,
        {"segmentId": "buyers", "rule": "lifetime_orders >= 1"},
    ),
    Route(
        "GET",
        "/v1/console/paths?anchor=Product%20Viewed",
        "/v1/console/paths",
        Permission.ANALYTICS_READ,
    ),
    Route("GET", "/v1/console/retention", "/v1/console/retention", Permission.ANALYTICS_READ),
    Route("GET", "/v1/console/alerts", "/v1/console/alerts", Permission.ANALYTICS_READ),
    Route(
        "GET",
        "/v1/console/identity/reviews",
        "/v1/console/identity/reviews",
        Permission.CUSTOMER_ACT,
    ),
    Route(
        "POST",
        "/v1/console/identity/reviews/r-1",
        "/v1/console/identity/reviews/{item_id}",
        Permission.CUSTOMER_ACT,
        {"decision": "approve", "reason": "same person, checked"},
    ),
    Route(
        "POST",
        "/v1/console/identity/explain",
        "/v1/console/identity/explain",
        Permission.CUSTOMER_READ,
        {
            "a": {"type": "email", "value": "a@example.com"},
            "b": {"type": "userId", "value": "u-1"},
        },
    ),
    Route(
        "POST",
        "/v1/customers/c-1/cases/k-1",
        "/v1/customers/{customer_id}/cases/{case_id}",
        Permission.CUSTOMER_ACT,
        {"status": "resolved", "resolution": "refunded"},
    ),
)
SESSION_ROUTES = {("GET", "/v1/console/session"), ("DELETE", "/v1/console/session")}
LOGIN = ("POST", "/v1/console/session")


@dataclass
class Env:
    http: httpx.AsyncClient
    app: FastAPI
    store: KeyStore
    registry: KeyRegistry
    keys: dict[str, str]  # role -> key
    clock: list[float]
    bus: NatsBus


@pytest.fixture
async def env(clean_nats: str) -> AsyncIterator[Env]:
    bus = NatsBus(clean_nats, name="gateway-security-test", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    nowhere = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")
    channels = {
        s: nowhere
        for s in ("identity", "consent", "loyalty", "personalization", "feedback", "analytics")
    }
    store = KeyStore(lambda: bus.js)
    registry = KeyRegistry(store)
    watcher = asyncio.create_task(registry.run())
    clock = [1000.0]
    gate = ConsoleGate(
        registry, sessions=SessionBook(idle_s=60, max_age_s=600), clock=lambda: clock[0]
    )
    audit = StreamAudit(EventPublisher(bus, source="/cxloop/gateway"))
    app = FastAPI()
    add_console_routes(
        app,
        registry,
        grpc_customer360(channels, deadline_s=0.3),
        audit.publish,
        audit.entry,
        gate=gate,
    )
    add_console_views(
        app,
        gate,
        GrpcConsoleSources(channels, deadline_s=0.3),
        PrivacyDesk(nowhere, nowhere, deadline_s=0.3),
        audit.publish,
        audit.entry,
    )
    keys = {role: await store.create(f"sec {role}", role, rate_per_s=10_000) for role in ROLES}
    await asyncio.wait_for(registry.ready.wait(), 10)
    await eventually(lambda: all(registry.authenticate(k) for k in keys.values()), timeout=10)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield Env(http, app, store, registry, keys, clock, bus)
    await registry.stop()
    watcher.cancel()
    await nowhere.close()
    await bus.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _call(
    env: Env, route: Route, headers: dict[str, str], *, csrf: str | None = None
) -> httpx.Response:
    h = {**REASON, **headers}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    if route.body is not None:
        return await env.http.request(route.method, route.path, json=route.body, headers=h)
    return await env.http.request(route.method, route.path, headers=h)


async def _login(env: Env, key: str) -> tuple[str, str]:
    """(the cookie header, the CSRF token) of a new session."""
    r = await env.http.post("/v1/console/session", json={"apiKey": key}, headers={"Origin": ORIGIN})
    assert r.status_code == 200, r.text
    set_cookie = r.headers["set-cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attr.lower() in set_cookie.lower()
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    return f"{COOKIE}={value}", str(r.json()["csrfToken"])


def _allowed(role: str, permission: Permission | None) -> bool:
    return permission is None or permission in ROLE_PERMISSIONS[role]


async def test_the_table_names_every_console_route(env: Env) -> None:
    """A new console route must be added to ROUTES (and so to every test here)."""
    served = {
        (method.upper(), path)
        for path, ops in env.app.openapi()["paths"].items()
        for method in ops
        if path.startswith(("/v1/me", "/v1/customers", "/v1/console"))
    }
    assert served == {(r.method, r.template) for r in ROUTES} | SESSION_ROUTES | {LOGIN}


async def test_every_console_error_is_documented_in_the_one_error_shape(env: Env) -> None:
    """OpenAPI: each console route's 4xx/5xx answers name ErrorBody; no 422
    (FastAPI's own validation answers 400 in the one shape, ADR 0210)."""
    from gateway.adapters.http import _openapi

    spec = _openapi(env.app)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith(("/v1/me", "/v1/customers", "/v1/console")):
            continue
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            for status in ("400", "401", "403", "503"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorBody"), (method, path, status)
            checked += 1
    assert checked == len(ROUTES) + len(SESSION_ROUTES) + 1


async def test_missing_wrong_forged_revoked_and_write_keys_are_refused(env: Env) -> None:
    revoked = await env.store.create("sec revoked", "admin", rate_per_s=10_000)
    key_id = revoked.split("_")[1]
    await eventually(lambda: env.registry.authenticate(revoked) is not None, timeout=10)
    await env.store.revoke(key_id)
    await eventually(lambda: env.registry.authenticate(revoked) is None, timeout=10)
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    bad = {
        "none": {},
        "garbage": _bearer("nope"),
        "forged": _bearer(f"cxk_{env.keys['admin'].split('_')[1]}_{'A' * 43}"),
        "revoked": _bearer(revoked),
        "write key (Basic)": {"Authorization": f"Basic {basic}"},
        "write key (Bearer)": _bearer(WRITE_KEY),
        "bogus session": {"Cookie": f"{COOKIE}=made-up-session-id"},
    }
    for route in ROUTES:
        for what, headers in bad.items():
            r = await _call(env, route, headers)
            assert r.status_code == 401, (route.path, what, r.status_code, r.text)
            assert r.json()["code"] == "unauthorized"


async def test_each_role_is_refused_what_it_may_not_do_by_key_and_by_session(env: Env) -> None:
    for role in ROLES:
        cookie, csrf = await _login(env, env.keys[role])
        for route in ROUTES:
            by_key = await _call(env, route, _bearer(env.keys[role]))
            by_session = await _call(env, route, {"Cookie": cookie}, csrf=csrf)
            for r in (by_key, by_session):
                if _allowed(role, route.permission):
                    assert r.status_code not in (401, 403), (role, route.path, r.text)
                else:
                    assert r.status_code == 403, (role, route.path, r.status_code)
                    assert r.json()["code"] == "forbidden"


async def test_session_writes_need_the_csrf_token_and_reads_need_the_same_origin(
    env: Env,
) -> None:
    cookie, csrf = await _login(env, env.keys["admin"])
    other_cookie, other_csrf = await _login(env, env.keys["admin"])
    writes = [r for r in ROUTES if r.method != "GET"]
    for route in writes:
        for token in (None, "", "wrong", other_csrf):
            r = await _call(env, route, {"Cookie": cookie}, csrf=token)
            assert r.status_code == 403, (route.path, token)
            assert r.json()["fields"][0]["field"] == "header:X-CSRF-Token"
        # A bearer key carries no ambient credential: no CSRF token needed.
        r = await _call(env, route, _bearer(env.keys["admin"]))
        assert r.status_code not in (401, 403)
    cross = (
        {"Origin": "http://evil.example"},
        {"Origin": "http://gw.test:8443"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    )
    for route in ROUTES:
        for headers in cross:
            r = await _call(env, route, {"Cookie": cookie, **headers}, csrf=csrf)
            assert r.status_code == 403, (route.path, headers)
            assert r.json()["fields"][0]["field"] == "Origin"
        same = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
        r = await _call(env, route, {"Cookie": cookie, **same}, csrf=csrf)
        assert r.status_code not in (401, 403), (route.path, r.text)
    assert other_cookie != cookie


async def test_login_refuses_bad_keys_other_origins_and_non_json(env: Env) -> None:
    async def login(body: Any, headers: dict[str, str]) -> httpx.Response:
        return await env.http.post("/v1/console/session", json=body, headers=headers)

    same = {"Origin": ORIGIN}
    assert (await login({"apiKey": "nope"}, same)).status_code == 401
    assert (await login({"apiKey": WRITE_KEY}, same)).status_code == 401
    assert (await login({}, same)).status_code == 400
    cross = await login({"apiKey": env.keys["admin"]}, {"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    form = await env.http.post(
        "/v1/console/session", data={"apiKey": env.keys["admin"]}, headers=same
    )
    assert form.status_code == 415 and "set-cookie" not in form.headers
    assert (await env.http.get("/v1/console/session")).status_code == 401


async def test_sessions_end_at_logout_when_idle_and_when_the_key_is_revoked(env: Env) -> None:
    me = ROUTES[0]
    cookie, csrf = await _login(env, env.keys["analyst"])
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 200
    out = await env.http.delete("/v1/console/session", headers={"Cookie": cookie})
    assert out.status_code == 403  # logout needs the CSRF token too
    out = await env.http.delete(
        "/v1/console/session", headers={"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    assert out.status_code == 200
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 401

    cookie, _ = await _login(env, env.keys["analyst"])
    env.clock[0] += 59
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 200
    env.clock[0] += 61  # over the 60 s idle limit
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 401

    doomed = await env.store.create("sec doomed", "agent", rate_per_s=10_000)
    await eventually(lambda: env.registry.authenticate(doomed) is not None, timeout=10)
    cookie, _ = await _login(env, doomed)
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 200
    await env.store.revoke(doomed.split("_")[1])
    await eventually(lambda: env.registry.authenticate(doomed) is None, timeout=10)
    assert (await _call(env, me, {"Cookie": cookie})).status_code == 401
    assert (await _call(env, ROUTES[1], {"Cookie": cookie})).status_code == 401


async def test_actions_are_audited_with_the_key_and_the_reason_before_any_service_is_asked(
    env: Env,
) -> None:
    """Loyalty and consent are down here: the entries are written all the same,
    before the call (an action that cannot be audited is not made)."""
    cookie, csrf = await _login(env, env.keys["admin"])
    points = await _call(env, ROUTES[3], {"Cookie": cookie}, csrf=csrf)
    privacy = await _call(env, ROUTES[4], _bearer(env.keys["admin"]))
    case = await _call(env, _route("/v1/customers/c-1/cases/k-1"), _bearer(env.keys["agent"]))
    review = await _call(
        env, _route("/v1/console/identity/reviews/r-1"), _bearer(env.keys["agent"])
    )
    for r in (points, privacy, case, review):
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "unavailable" and r.headers["Retry-After"]
    admin = env.keys["admin"].split("_")[1]
    agent = env.keys["agent"].split("_")[1]

    async def audited(subject: str, expected: set[tuple[str, str, str]]) -> bool:
        entries = await read_audit_entries(
            env.bus.js, services=["gateway"], subject=subject, timeout_s=1
        )
        got = {(e.actor, e.resource, e.reason) for e in entries}
        return expected <= got

    await eventually(
        lambda: audited(
            "c-1",
            {
                (f"gateway-key:{admin}", "loyalty_adjustment", "goodwill"),
                (f"gateway-key:{admin}", "privacy_request:access", "security test"),
                (f"gateway-key:{agent}", "feedback_case:resolved", "security test"),
            },
        ),
        timeout=10,
    )
    await eventually(
        lambda: audited(
            "",
            {(f"gateway-key:{agent}", "identity_review:approve:r-1", "same person, checked")},
        ),
        timeout=10,
    )


def _route(path: str) -> Route:
    return next(r for r in ROUTES if r.path == path)


async def test_reads_of_customer_data_need_a_reason_and_inputs_are_named(env: Env) -> None:
    """The review queue and the link explanation are customer data: no
    reason, no read (400 naming the header). Bad input is a 400 in the one
    error shape naming the field, before any service is asked."""
    agent = _bearer(env.keys["agent"])
    for path, method, body in (
        ("/v1/console/identity/reviews", "GET", None),
        (
            "/v1/console/identity/explain",
            "POST",
            {"a": {"type": "email", "value": "a@x.kr"}, "b": {"type": "userId", "value": "u"}},
        ),
        ("/v1/customers/c-1/cases/k-1", "POST", {"note": "called back"}),
    ):
        r = await env.http.request(method, path, json=body, headers=agent)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["fields"][0]["field"] == "X-Cxloop-Reason"
    marketer = _bearer(env.keys["marketer"])
    analyst = _bearer(env.keys["analyst"])
    bad = (
        ("POST", "/v1/console/segments", marketer, {"segmentId": "a b", "rule": "x"}, "segmentId"),
        ("POST", "/v1/console/segments", marketer, {"segmentId": "a", "rule": ""}, "rule"),
        ("POST", "/v1/console/segments", marketer, {"segmentId": "a", "rul": "x"}, "rule"),
        ("GET", "/v1/console/paths", analyst, None, "anchor"),
        ("GET", "/v1/console/paths?anchor=a&depth=11", analyst, None, "depth"),
        ("GET", "/v1/console/paths?anchor=a&direction=sideways", analyst, None, "direction"),
        ("GET", "/v1/console/retention?weeks=0", analyst, None, "weeks"),
        ("GET", "/v1/console/retention?cohortEvent=%00", analyst, None, "cohortEvent"),
        ("GET", "/v1/console/alerts?limit=501", analyst, None, "limit"),
        ("GET", "/v1/console/identity/reviews?status=maybe", agent, None, "status"),
        (
            "POST",
            "/v1/console/identity/reviews/r-1",
            agent,
            {"decision": "perhaps", "reason": "x"},
            "decision",
        ),
        (
            "POST",
            "/v1/console/identity/explain",
            agent,
            {"a": {"type": "fax", "value": "1"}, "b": {"type": "email", "value": "a@x.kr"}},
            "a.type",
        ),
        (
            "POST",
            "/v1/customers/c-1/cases/k-1",
            agent,
            {"status": "resolved"},
            "resolution",
        ),
        ("POST", "/v1/customers/c-1/cases/k-1", agent, {}, "status"),
    )
    for method, path, headers, body, field in bad:
        r = await env.http.request(method, path, json=body, headers={**REASON, **headers})
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        got = r.json()
        assert got["success"] is False and got["code"] == "invalid_request", got
        assert [f["field"] for f in got["fields"]][:1] == [field], (path, got)
