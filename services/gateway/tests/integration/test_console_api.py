"""The console API against real services: API keys made with `cxloop keys`
in the gateway's NATS bucket, roles, reasons, the customer 360 from a real
identity and loyalty service (consent's address answers nothing, so its part
is reported missing), audit entries on the gateway's stream, a revocation
reaching a second gateway process's key registry, and a per-key rate limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lpb_grpc
from fastapi import FastAPI
from typer.testing import CliRunner

from cxloop_cli.main import app as cli
from cxloop_libs.apikeys import KeyRegistry, KeyStore
from cxloop_libs.audit.stream import read_audit_entries
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_testing.infra import eventually, free_port
from gateway.adapters.console_audit import StreamAudit
from gateway.adapters.customer_parts import grpc_customer360
from gateway.entrypoints.console_api import add_console_routes
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings
from loyalty.bootstrap import bootstrap as loyalty_bootstrap
from loyalty.config import LoyaltySettings

pytestmark = pytest.mark.integration
REASON = {"X-Cxloop-Reason": "ticket 4711"}


async def _cli(*args: str) -> dict[str, Any] | list[Any]:
    # The command runs its own event loop: off this one, as a person runs it.
    r = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--json"])
    assert r.exit_code == 0, r.output
    out: dict[str, Any] | list[Any] = json.loads(r.output)
    return out


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def suite(
    clean_nats: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    monkeypatch.setenv("CXLOOP_NATS_URL", clean_nats)
    identity = await identity_bootstrap(
        IdentitySettings(
            env="test", nats_url=clean_nats, database_url=postgres_url, grpc_port=0, metrics_port=0
        )
    )
    loyalty = await loyalty_bootstrap(
        LoyaltySettings(
            env="test",
            nats_url=clean_nats,
            database_url=f"sqlite:///{tmp_path / 'loyalty.db'}",
            grpc_port=0,
            metrics_port=0,
        )
    )
    for rt in (identity, loyalty):
        await rt.start()
        await rt.db_ready.wait()
    assert identity.grpc_server is not None and loyalty.grpc_server is not None
    bus = NatsBus(clean_nats, name="gateway-test", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    ich = grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}")
    lch = grpc.aio.insecure_channel(f"127.0.0.1:{loyalty.grpc_server.port}")
    dead = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")  # consent is down
    registry = KeyRegistry(KeyStore(lambda: bus.js))
    watcher = asyncio.create_task(registry.run())
    audit = StreamAudit(EventPublisher(bus, source="/cxloop/gateway"))
    now = [0.0]
    api = FastAPI()
    add_console_routes(
        api,
        registry,
        grpc_customer360({"identity": ich, "loyalty": lch, "consent": dead}, deadline_s=2.0),
        audit.publish,
        audit.entry,
        clock=lambda: now[0],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://gw") as c:
        yield {
            "http": c,
            "registry": registry,
            "bus": bus,
            "nats": clean_nats,
            "identity": ipb_grpc.IdentityServiceStub(ich),
            "loyalty": lpb_grpc.LoyaltyServiceStub(lch),
            "clock": now,
        }
    await registry.stop()
    watcher.cancel()
    for ch in (ich, lch, dead):
        await ch.close()
    await bus.close()
    await loyalty.stop()
    await identity.stop()


async def _customer_with_points(s: dict[str, Any]) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    r = await s["identity"].Resolve(
        ipb.ResolveRequest(
            identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value=email)],
            source="test",
        ),
        timeout=5,
    )
    req = lpb.PostPurchaseRequest(
        customer_id=r.customer_id,
        order_id=f"o-{uuid.uuid4().hex[:6]}",
        currency_code="KRW",
        idempotency_key=uuid.uuid4().hex,
        lines=[lpb.PurchaseLine(quantity=1, unit_price_minor_units=100000)],
    )
    req.purchased_at.FromDatetime(datetime.now(UTC) - timedelta(days=30))

    async def posted() -> bool:
        try:  # the rule set loads just after start
            await s["loyalty"].PostPurchase(req, timeout=5)
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(posted, timeout=10)
    return r.customer_id, email


async def test_keys_roles_reasons_partial_360_audit_and_revocation(suite: dict[str, Any]) -> None:
    http: httpx.AsyncClient = suite["http"]
    agent = await _cli("keys", "create", "--name", "desk agent 7", "--role", "agent")
    marketer = await _cli("keys", "create", "--name", "campaigns", "--role", "marketer")
    assert isinstance(agent, dict) and isinstance(marketer, dict)
    listed = await _cli("keys", "list")
    assert {k["key_id"] for k in listed} >= {agent["keyId"], marketer["keyId"]}
    assert all("secret_sha256" not in k and agent["key"] not in json.dumps(k) for k in listed)
    await asyncio.wait_for(suite["registry"].ready.wait(), 10)
    await eventually(lambda: agent["keyId"] in suite["registry"].keys, timeout=5)
    await eventually(lambda: marketer["keyId"] in suite["registry"].keys, timeout=5)

    cid, email = await _customer_with_points(suite)
    # Who: no key, a malformed one, a forged secret for a real id, a role without the right.
    assert (await http.get(f"/v1/customers/{cid}", headers=REASON)).status_code == 401
    assert (
        await http.get(f"/v1/customers/{cid}", headers={**REASON, **_bearer("nope")})
    ).status_code == 401
    forged = f"cxk_{agent['keyId']}_{'A' * 43}"
    assert (
        await http.get(f"/v1/customers/{cid}", headers={**REASON, **_bearer(forged)})
    ).status_code == 401
    denied = await http.get(f"/v1/customers/{cid}", headers={**REASON, **_bearer(marketer["key"])})
    assert denied.status_code == 403 and "marketer" in denied.json()["message"]
    me = (await http.get("/v1/me", headers=_bearer(marketer["key"]))).json()
    assert me["role"] == "marketer" and "customer:read" not in me["permissions"]
    # Why: a read of personal data names its reason.
    no_reason = await http.get(f"/v1/customers/{cid}", headers=_bearer(agent["key"]))
    assert no_reason.status_code == 400
    assert no_reason.json()["fields"][0]["field"] == "X-Cxloop-Reason"

    r = await http.get(f"/v1/customers/{cid}", headers={**REASON, **_bearer(agent["key"])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customerId"] == cid and body["profile"]["customerId"] == cid
    assert body["loyalty"]["availablePoints"] == "1000"
    assert len(body["loyalty"]["history"]["entries"]) == 1
    # Consent is down: its part is named, the rest still answered.
    assert body["complete"] is False
    assert [m["part"] for m in body["missing"]] == ["consent"]
    assert body["consent"] is None

    found = await http.get(
        "/v1/customers",
        params={"email": email.upper()},
        headers={**REASON, **_bearer(agent["key"])},
    )
    assert found.status_code == 200 and found.json()["customerId"] == cid
    unknown = await http.get(
        "/v1/customers",
        params={"email": "nobody@example.com"},
        headers={**REASON, **_bearer(agent["key"])},
    )
    assert unknown.status_code == 404
    two = await http.get(
        "/v1/customers",
        params={"email": email, "phone": "01012345678"},
        headers={**REASON, **_bearer(agent["key"])},
    )
    assert two.status_code == 400

    # Audited on the gateway's stream: the key and the reason, about this customer.
    async def audited() -> bool:
        entries = await read_audit_entries(
            suite["bus"].js, services=["gateway"], subject=cid, timeout_s=1
        )
        return any(
            e.actor == f"gateway-key:{agent['keyId']}"
            and e.reason == "ticket 4711"
            and e.resource == "customer_360"
            for e in entries
        )

    await eventually(audited, timeout=10)

    # A second gateway process's registry learns of the revocation through NATS.
    other_bus = NatsBus(suite["nats"], name="gateway-test-2", streams=[])
    await other_bus.connect(timeout=10)
    replica = KeyRegistry(KeyStore(lambda: other_bus.js))
    task = asyncio.create_task(replica.run())
    try:
        await asyncio.wait_for(replica.ready.wait(), 10)
        assert replica.authenticate(agent["key"]) is not None
        revoked = await _cli("keys", "revoke", agent["keyId"])
        assert isinstance(revoked, dict) and revoked["active"] is False
        await eventually(lambda: replica.authenticate(agent["key"]) is None, timeout=5)
        await eventually(lambda: suite["registry"].authenticate(agent["key"]) is None, timeout=5)
        gone = await http.get(f"/v1/customers/{cid}", headers={**REASON, **_bearer(agent["key"])})
        assert gone.status_code == 401
    finally:
        await replica.stop()
        task.cancel()
        await other_bus.close()
    bad = await asyncio.to_thread(
        CliRunner().invoke, cli, ["keys", "create", "--name", "x", "--role", "boss"]
    )
    assert bad.exit_code == 1 and "--role" in bad.output


async def test_a_key_over_its_rate_is_told_when_to_come_back(suite: dict[str, Any]) -> None:
    created = await _cli("keys", "create", "--name", "script", "--role", "analyst", "--rate", "2")
    assert isinstance(created, dict)
    await eventually(lambda: created["keyId"] in suite["registry"].keys, timeout=10)
    http: httpx.AsyncClient = suite["http"]
    codes = [
        (await http.get("/v1/me", headers=_bearer(created["key"]))).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = await http.get("/v1/me", headers=_bearer(created["key"]))
    assert int(limited.headers["Retry-After"]) >= 1
    suite["clock"][0] += 1.0  # a second later the bucket has refilled
    assert (await http.get("/v1/me", headers=_bearer(created["key"]))).status_code == 200
