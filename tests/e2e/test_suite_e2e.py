"""The whole suite as subprocesses, driven like a frontend would: Segment
calls into the gateway over HTTP, events over real NATS JetStream, identity on
real PostgreSQL (where available), answers over gRPC, spans to an OTLP
collector."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_cli.suite import START_ORDER, plan_suite, suite_specs
from cxloop_cli.supervisor import ProcessSpec, Supervisor
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_testing import infra
from cxloop_testing.infra import eventually
from cxloop_testing.otlp import OtlpCollectorStub

pytestmark = pytest.mark.e2e

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")
AUTH = ("dev", "")


@dataclass
class Suite:
    supervisor: Supervisor
    specs: dict[str, ProcessSpec]
    gateway_url: str
    identity_target: str
    collector: OtlpCollectorStub

    def restart(self, name: str) -> None:
        self.supervisor.start(self.specs[name])
        check = self.specs[name].ready_check
        assert check is not None
        self.supervisor.wait_ready({name: check}, timeout=60)


@pytest.fixture(scope="module")
def suite() -> Iterator[Suite]:
    nats_url = infra.nats_url()
    asyncio.run(infra.reset_streams(nats_url))
    data_dir = Path(tempfile.mkdtemp(prefix="cxloop-e2e-"))
    environ: dict[str, str] = {"CXLOOP_GATEWAY_HTTP_PORT": str(infra.free_port())}
    for name in START_ORDER:
        environ[f"CXLOOP_{name.upper()}_METRICS_PORT"] = "0"
        if name != "gateway":
            environ[f"CXLOOP_{name.upper()}_GRPC_PORT"] = str(infra.free_port())
    # Feedback trains its text model at start; a small one keeps this module
    # quick (model quality is bench/feedback.py's business, not these tests').
    environ["CXLOOP_FEEDBACK_SENTIMENT_TRAIN_LIMIT"] = "2000"
    collector = OtlpCollectorStub().start()
    with contextlib.ExitStack() as stack:
        admin = infra.postgres_admin_url()
        if admin is not None:
            environ["CXLOOP_IDENTITY_DATABASE_URL"] = stack.enter_context(
                infra.fresh_postgres_database(admin)
            )
        elif infra.in_ci():
            pytest.fail("PostgreSQL is required in CI")
        plans = plan_suite(data_dir, START_ORDER, environ)
        specs = suite_specs(plans, data_dir, nats_url, extra_env={**environ, **collector.env()})
        sup = Supervisor(log_dir=data_dir / "logs", output=None)
        stack.callback(sup.stop_all)
        for spec in specs:
            sup.start(spec)
        sup.wait_ready(timeout=90)
        by_name = {p.name: p for p in plans}
        yield Suite(
            supervisor=sup,
            specs={s.name: s for s in specs},
            gateway_url=by_name["gateway"].address,
            identity_target=by_name["identity"].address,
            collector=collector,
        )
    collector.stop()


def post(
    suite: Suite, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{suite.gateway_url}{path}", json=body, auth=AUTH, headers=headers, timeout=10
    )


async def profile_of(suite: Suite, id_type: int, value: str) -> pb.Profile:
    """Resolve then read the profile. Health turns SERVING before identity's
    database is migrated; until then it answers UNAVAILABLE, and a client
    retries, as this does."""
    deadline = time.monotonic() + 30
    while True:
        try:
            async with grpc.aio.insecure_channel(suite.identity_target) as ch:
                stub = pb_grpc.IdentityServiceStub(ch)
                r = await stub.Resolve(
                    pb.ResolveRequest(
                        identifiers=[idpb.Identifier(type=id_type, value=value)], source="e2e"
                    ),
                    timeout=5,
                )
                p = await stub.GetProfile(
                    pb.GetProfileRequest(customer_id=r.customer_id), timeout=5
                )
                return p.profile
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_readyz_answers_when_the_suite_is_up(suite: Suite) -> None:
    r = httpx.get(f"{suite.gateway_url}/readyz", timeout=5)
    assert r.status_code == 200, r.text


async def test_anonymous_then_identified_visitor_is_one_profile(suite: Suite) -> None:
    anon, user, email = f"anon-{uid()}", f"user-{uid()}", f"Visitor.{uid()}@Example.com"
    r = post(
        suite,
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "anonymousId": anon,
                    "event": "Product Viewed",
                    "messageId": uid(),
                    "properties": {"sku": "A-1"},
                },
                {
                    "type": "identify",
                    "anonymousId": anon,
                    "userId": user,
                    "messageId": uid(),
                    "traits": {"email": email},
                },
            ]
        },
    )
    assert r.status_code == 200, r.text
    expected = {
        HASHER.hash(IdType.ANONYMOUS_ID, anon),
        HASHER.hash(IdType.USER_ID, user),
        HASHER.hash(IdType.EMAIL, email),
    }

    async def linked() -> pb.Profile | None:
        p = await profile_of(suite, idpb.IDENTIFIER_TYPE_USER_ID, user)
        return p if {i.hash for i in p.identifiers} == expected else None

    profile = await eventually(linked, timeout=30, interval=0.2)
    assert profile.interaction_count == 2


async def test_one_trace_covers_gateway_nats_and_identity(suite: Suite) -> None:
    trace_id = uuid.uuid4().hex
    user = f"user-{uid()}"
    r = post(
        suite,
        "/v1/track",
        {"userId": user, "event": "Order Completed", "messageId": uid()},
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert r.status_code == 200, r.text

    def spans_of_trace():  # type: ignore[no-untyped-def]
        spans = [s for s in suite.collector.spans() if s.trace_id == trace_id]
        names = {(s.service, s.name) for s in spans}
        wanted = {
            ("identity", "cx.gateway.interaction.recorded process"),
            ("gateway", "cx.gateway.interaction.recorded publish"),
        }
        return spans if wanted <= names else None

    spans = await eventually(spans_of_trace, timeout=30, interval=0.2)
    by_name = {s.name: s for s in spans}
    server = [s for s in spans if s.service == "gateway" and s.kind == 2]  # SPAN_KIND_SERVER
    assert server, "the gateway's HTTP server span is in the trace"
    publish = by_name["cx.gateway.interaction.recorded publish"]
    consume = by_name["cx.gateway.interaction.recorded process"]
    # Parent links, not just a shared id: HTTP → publish → consume, and the
    # identity handler's result is recorded on that consume span (ADR 0022).
    assert publish.parent_span_id in {s.span_id for s in spans if s.service == "gateway"}
    assert consume.parent_span_id == publish.span_id
    profile = await profile_of(suite, idpb.IDENTIFIER_TYPE_USER_ID, user)
    assert consume.attributes.get("cxloop.customer_id") == profile.customer_id


async def test_same_message_id_twice_is_one_interaction(suite: Suite) -> None:
    user, mid = f"user-{uid()}", uid()
    for _ in range(2):
        r = post(suite, "/v1/track", {"userId": user, "event": "Clicked", "messageId": mid})
        assert r.status_code == 200, r.text
    # A later, different event proves the duplicate is not merely still in flight.
    r = post(suite, "/v1/track", {"userId": user, "event": "Clicked", "messageId": uid()})
    assert r.status_code == 200

    async def counted() -> int:
        return (await profile_of(suite, idpb.IDENTIFIER_TYPE_USER_ID, user)).interaction_count

    assert await eventually(counted, timeout=30, interval=0.2) >= 1
    await eventually(lambda: _equals(counted, 2), timeout=30, interval=0.2)
    await asyncio.sleep(1.0)
    assert await counted() == 2


async def _equals(fn, value) -> bool:  # type: ignore[no-untyped-def]
    return bool(await fn() == value)


async def test_event_posted_while_identity_is_down_is_processed_after_restart(suite: Suite) -> None:
    suite.supervisor.stop("identity")
    email = f"late.{uid()}@example.com"
    try:
        r = post(
            suite,
            "/v1/identify",
            {"userId": f"u-{uid()}", "messageId": uid(), "traits": {"email": email}},
        )
        # Accepted: JetStream stored it even though nobody consumes it right now.
        assert r.status_code == 200, r.text
        # Still ready: it can accept events (ADR 0036); identity is reported down.
        ready = httpx.get(f"{suite.gateway_url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["dependencies"]["identity"] is False
    finally:
        suite.restart("identity")

    async def processed() -> bool:
        p = await profile_of(suite, idpb.IDENTIFIER_TYPE_EMAIL, email)
        return p.interaction_count == 1 and len(p.identifiers) == 2

    await eventually(processed, timeout=30, interval=0.2)


async def test_invalid_event_gets_field_level_400(suite: Suite) -> None:
    r = post(suite, "/v1/track", {"userId": "u1"})
    assert r.status_code == 400
    assert {f["field"] for f in r.json()["fields"]} == {"event"}, r.json()
    # In a batch the bad event is rejected alone (ADR 0035): 200, named.
    r = post(suite, "/v1/batch", {"batch": [{"type": "track", "userId": "u1"}]})
    assert r.status_code == 200
    fields = {x["field"] for x in r.json()["rejections"]}
    assert any(f.startswith("batch[0]") for f in fields), r.json()


async def test_order_through_the_gateway_earns_points_and_a_refund_takes_them_back(
    suite: Suite,
) -> None:
    """Loyalty (issue #11) end to end: a web shop's Segment `Order Completed`
    through the gateway, resolved by identity, earns pending points; an
    `Order Refunded` for half the order takes back half."""
    from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
    from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lpb_grpc

    user = f"buyer-{uid()}"
    order = f"ord-{uid()}"
    r = post(
        suite,
        "/v1/track",
        {
            "userId": user,
            "event": "Order Completed",
            "properties": {"order_id": order, "currency": "KRW", "total": 45000},
        },
    )
    assert r.status_code == 200, r.text
    profile = await profile_of(suite, idpb.IDENTIFIER_TYPE_USER_ID, user)
    target = f"127.0.0.1:{suite.specs['loyalty'].env['CXLOOP_LOYALTY_GRPC_PORT']}"

    async def points() -> tuple[int, int] | None:
        async with grpc.aio.insecure_channel(target) as ch:
            try:
                a = await lpb_grpc.LoyaltyServiceStub(ch).GetAccount(
                    lpb.GetAccountRequest(customer_id=profile.customer_id), timeout=5
                )
            except grpc.aio.AioRpcError:
                return None  # still starting
        return (a.available_points, a.pending_points)

    await eventually(lambda: _equals(points, (0, 450)), timeout=60)
    refund = {"order_id": order, "currency": "KRW", "total": 22500}
    r = post(suite, "/v1/track", {"userId": user, "event": "Order Refunded", "properties": refund})
    assert r.status_code == 200, r.text
    await eventually(lambda: _equals(points, (0, 225)), timeout=60)


async def test_events_posted_to_the_gateway_appear_in_an_analytics_funnel(suite: Suite) -> None:
    from cxloop.analytics.v1 import analytics_service_pb2 as apb
    from cxloop.analytics.v1 import analytics_service_pb2_grpc as apb_grpc

    user = f"user-{uid()}"
    steps = [f"Viewed {uid()}", f"Bought {uid()}"]
    for name, channel in zip(steps, ["web", "store"], strict=True):
        r = post(
            suite,
            "/v1/track",
            {"userId": user, "event": name, "messageId": uid(), "context": {"channel": channel}},
        )
        assert r.status_code == 200, r.text
    target = f"127.0.0.1:{suite.specs['analytics'].env['CXLOOP_ANALYTICS_GRPC_PORT']}"

    async def converted() -> bool:
        async with grpc.aio.insecure_channel(target) as ch:
            try:
                got = await apb_grpc.AnalyticsServiceStub(ch).Funnel(
                    apb.FunnelRequest(
                        steps=[apb.FunnelStep(event=s) for s in steps],
                        conversion_window_seconds=3600,
                    ),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as exc:  # steps not known yet
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                return False
        return [s.customers for s in got.steps] == [1, 1]

    assert await eventually(converted, timeout=30, interval=0.2)


@pytest.mark.timeout(400)  # feedback answers reviews once its text model is trained
async def test_cxloop_demo_seeds_the_running_suite_through_its_public_apis(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cxloop demo` (issue #17) against the running suite: every customer
    signed up, every event accepted, consent, reviews and survey answers
    stored; the loop shows in loyalty (a demo buyer has points); a second run
    adds no customer (idempotent)."""
    import json as _json

    from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
    from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lpb_grpc
    from typer.testing import CliRunner

    from cxloop_cli.demo_shop import make_shop
    from cxloop_cli.main import app as cli

    for name, spec in suite.specs.items():
        port = spec.env.get(f"CXLOOP_{name.upper()}_GRPC_PORT")
        if port:
            monkeypatch.setenv(f"CXLOOP_{name.upper()}_GRPC_TARGET", f"127.0.0.1:{port}")
    args = ["demo", "--customers", "25", "--days", "60", "--seed", "3", "--json"]
    args += ["--gateway-url", suite.gateway_url]
    first = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert first.exit_code == 0, first.output
    report = _json.loads(first.output.strip().splitlines()[-1])
    shop = make_shop(25, 60, 3)
    assert report["problems"] == {}, report
    assert report["customers"] == 25
    assert report["counts"]["events accepted"] == len(shop.events)
    assert report["counts"]["consent choices"] == sum(len(p.consents) for p in shop.people)
    assert report["counts"]["reviews"] == len(shop.reviews)
    assert report["counts"]["survey responses"] == len(shop.nps)
    # The purchases reached loyalty through gateway → identity → loyalty.
    buyer = next(e["userId"] for e in shop.events if e.get("event") == "Order Completed")
    profile = await profile_of(suite, idpb.IDENTIFIER_TYPE_USER_ID, buyer)
    target = f"127.0.0.1:{suite.specs['loyalty'].env['CXLOOP_LOYALTY_GRPC_PORT']}"

    async def has_points() -> bool:
        async with grpc.aio.insecure_channel(target) as ch:
            try:
                a = await lpb_grpc.LoyaltyServiceStub(ch).GetAccount(
                    lpb.GetAccountRequest(customer_id=profile.customer_id), timeout=5
                )
            except grpc.aio.AioRpcError:
                return False
        return a.available_points + a.pending_points > 0

    await eventually(has_points, timeout=60)
    # The console API, wired into the running gateway: a key made with the
    # CLI, the 360 read with `cxloop customer` by email.
    monkeypatch.setenv("CXLOOP_NATS_URL", infra.nats_url())
    made = await asyncio.to_thread(
        CliRunner().invoke, cli, ["keys", "create", "--name", "e2e", "--role", "agent", "--json"]
    )
    assert made.exit_code == 0, made.output
    key = _json.loads(made.output)["key"]
    buyer_email = next(p.email for p in shop.people if p.user_id == buyer)
    read = ["customer", buyer_email, "--reason", "e2e", "--key", key, "--json"]
    read += ["--gateway-url", suite.gateway_url]

    async def the_360() -> dict[str, object] | None:
        r = await asyncio.to_thread(CliRunner().invoke, cli, read)
        return _json.loads(r.output) if r.exit_code == 0 else None

    c360 = await eventually(the_360, timeout=30)  # the gateway's key watch catches up
    assert c360["customerId"] == profile.customer_id
    points = c360["loyalty"]
    assert isinstance(points, dict)
    assert int(points["availablePoints"]) + int(points["pendingPoints"]) > 0
    assert c360["consent"] is not None and c360["complete"] in (True, False)
    # The 360's recent journey (analytics) of a shopper who allows analytics.
    shopper = next(
        p
        for p in shop.people
        if p.consents.get("analytics")
        and any(e.get("userId") == p.user_id and e.get("event") for e in shop.events)
    )
    read_shopper = ["customer", shopper.email, "--reason", "e2e", "--key", key, "--json"]
    read_shopper += ["--gateway-url", suite.gateway_url]

    async def journey() -> dict[str, Any] | None:
        r = await asyncio.to_thread(CliRunner().invoke, cli, read_shopper)
        out = _json.loads(r.output) if r.exit_code == 0 else None
        return out["journey"] if out and out.get("journey") else None

    j = await eventually(journey, timeout=60)
    tracked = {
        e["event"] for e in shop.events if e.get("userId") == shopper.user_id and e.get("event")
    }
    assert int(j["totalEvents"]) >= len(j["events"]) > 0
    assert {e["event"] for e in j["events"]} & tracked
    stamps = [e["occurredAt"] for e in j["events"]]
    assert stamps == sorted(stamps, reverse=True)
    again = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert again.exit_code == 0, again.output
    second = _json.loads(again.output.strip().splitlines()[-1])
    assert second["customers"] == 25 and second["problems"] == {}
