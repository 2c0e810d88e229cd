"""No raw PII at rest (issue 10 item 5): seeded emails, phone numbers and a
resident registration number travel in properties, names, URLs and traits
through the real gateway (HTTP), a real nats-server this test owns and the
real identity service (SQLite); afterwards every stream file, every log line
and identity's database are searched for them. Nothing may be found."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_testing.infra import EmbeddedNats, eventually, start_embedded_nats
from gateway.bootstrap import SOURCE, create_gateway_app
from gateway.config import GatewaySettings
from identity.bootstrap import bootstrap as identity_bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration

WRITE_KEY = "pii-key"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
EMAIL = "seed.kim.8831@example.com"
OTHER_EMAIL = "seed.lee.4471@example.org"
PHONE = "010-8831-2299"
INTL_PHONE = "+44 20 7946 0958"
RRN = "880101-1234567"
# What must never be at rest, in every spelling a sender used.
SEEDS = [
    EMAIL,
    OTHER_EMAIL,
    "seed.lee.4471%40example.org",
    PHONE,
    "01088312299",
    "8831-2299",
    "7946 0958",
    RRN,
    "1234567",
    "seed.kim",
    "seed.lee",
]


@pytest.fixture
def own_nats() -> Iterator[EmbeddedNats]:
    server = start_embedded_nats()
    try:
        yield server
    finally:
        server.stop()


def found_in(path: Path) -> list[str]:
    hits = []
    for f in path.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            hits += [f"{f.name}: {s}" for s in SEEDS if s.encode() in data]
    return hits


async def test_seeded_pii_is_nowhere_at_rest(
    own_nats: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "identity.db"
    identity = await identity_bootstrap(
        IdentitySettings(
            env="test",
            nats_url=own_nats.url,
            database_url=f"sqlite:///{db}",
            grpc_port=0,
            metrics_port=0,
        )
    )
    await identity.start()
    settings = GatewaySettings.from_env(
        {
            "CXLOOP_ENV": "test",
            "CXLOOP_NATS_URL": own_nats.url,
            "CXLOOP_GATEWAY_WRITE_KEYS": f"{WRITE_KEY}=pii",
            "CXLOOP_GATEWAY_READINESS_SERVICES": "",
        }
    )
    bus = NatsBus(own_nats.url, name="gateway-pii", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    app = create_gateway_app(settings, bus, EventPublisher(bus, source=SOURCE))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as c:
            batch = [
                {
                    "type": "identify",
                    "userId": "u-pii-1",
                    "messageId": "p-1",
                    "traits": {"email": EMAIL, "phone": PHONE, "bio": f"RRN {RRN}"},
                    "context": {"page": {"url": f"https://s.kr/?email={EMAIL}"}},
                },
                {
                    "type": "track",
                    "userId": "u-pii-1",
                    "messageId": "p-2",
                    "event": f"Callback requested {PHONE}",
                    "properties": {
                        "note": f"call me at {INTL_PHONE} or {OTHER_EMAIL}",
                        "url": "https://s.kr/c?email=seed.lee.4471%40example.org",
                        "form": {"rrn": RRN, "tel": "01088312299"},
                    },
                },
                {
                    "type": "page",
                    "anonymousId": "a-pii-1",
                    "messageId": "p-3",
                    "name": f"Profile of {EMAIL}",
                    "properties": {"title": f"{OTHER_EMAIL}'s orders"},
                },
                # Rejected events are reported without their values, too.
                {"type": "identify", "userId": "u-pii-2", "traits": {"email": "seed.kim@"}},
            ]
            r = await c.post("/v1/batch", json={"batch": batch}, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] == 3
            assert not [s for s in SEEDS if s in r.text]

        async def identity_caught_up() -> bool:
            nc = await nats.connect(own_nats.url)
            try:
                js = nc.jetstream()
                consumers = await js.consumers_info("GATEWAY")
                return bool(consumers) and all(
                    ci.num_pending == 0 and ci.num_ack_pending == 0 for ci in consumers
                )
            finally:
                await nc.close()

        await eventually(identity_caught_up, timeout=30)
    finally:
        await bus.close()
        await identity.stop()

    assert db.exists() and db.stat().st_size > 0
    assert found_in(Path(own_nats.store)) == []
    assert found_in(tmp_path) == []
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert logs  # the services did log
    assert [s for s in SEEDS if s in logs] == []
