"""Settings, write keys, readiness and the wiring in bootstrap (no network)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cxloop_libs.config import ConfigError
from gateway.adapters.readiness import SuiteReadiness
from gateway.bootstrap import bootstrap
from gateway.config import GatewaySettings
from gateway.domain.write_keys import WriteKeys, parse_write_keys

PROD = {"CXLOOP_ENV": "production", "CXLOOP_PII_HASH_KEY": "a-production-hash-key-0123"}


def test_parse_write_keys() -> None:
    assert parse_write_keys(" k1=web , k2=app,k3 ,") == {"k1": "web", "k2": "app", "k3": "default"}
    with pytest.raises(ValueError):
        parse_write_keys("=web")
    with pytest.raises(ValueError):
        parse_write_keys("k1=web shop")


def test_write_keys_lookup_and_repr() -> None:
    keys = WriteKeys({"secret-1": "web"})
    assert keys.source_for("secret-1") == "web"
    assert keys.source_for("secret-2") is None
    assert "secret" not in repr(keys)


def test_production_without_write_keys_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        GatewaySettings.from_env(PROD)
    assert "CXLOOP_GATEWAY_WRITE_KEYS" in str(info.value)


def test_dev_key_only_in_development() -> None:
    prod = GatewaySettings.from_env({**PROD, "CXLOOP_GATEWAY_WRITE_KEYS": "k1=web"})
    assert prod.accepted_write_keys().source_for("dev") is None
    assert prod.accepted_write_keys().source_for("k1") == "web"
    dev = GatewaySettings.from_env({"CXLOOP_ENV": "development", "CXLOOP_DEV_WRITE_KEY": "local"})
    assert dev.accepted_write_keys().source_for("local") == "dev"
    assert dev.accepted_write_keys().source_for("dev") is None


def test_settings_from_env() -> None:
    s = GatewaySettings.from_env(
        {
            "CXLOOP_ENV": "development",
            "CXLOOP_GATEWAY_HTTP_PORT": "18080",
            "CXLOOP_GATEWAY_MAX_BATCH_EVENTS": "100",
            "CXLOOP_GATEWAY_READINESS_SERVICES": "identity, consent",
        }
    )
    assert (s.http_host, s.http_port, s.max_batch_events) == ("127.0.0.1", 18080, 100)
    assert s.readiness_targets == ["identity", "consent"]
    with pytest.raises(ConfigError):
        GatewaySettings.from_env(
            {"CXLOOP_ENV": "development", "CXLOOP_GATEWAY_READINESS_SERVICES": "billing"}
        )


async def test_readiness_runs_checks_and_reports_failures() -> None:
    asked: list[str] = []

    async def check(target: str) -> bool:
        asked.append(target)
        if target == "boom:1":
            raise RuntimeError("probe crashed")
        return target == "up:1"

    stalled = False

    async def jetstream() -> bool:
        if stalled:
            await asyncio.sleep(10)  # a paused server: no answer, no error
        return True

    probe = SuiteReadiness(
        lambda: True,
        {"identity": "up:1", "consent": "down:1", "loyalty": "boom:1"},
        check=check,
        jetstream=jetstream,
        local={"consent_state": lambda: True},
    )
    assert await probe.checks() == {"nats": True, "jetstream": True, "consent_state": True}
    assert await probe.dependencies() == {
        "identity": True,
        "consent": False,
        "loyalty": False,
    }
    assert sorted(asked) == ["boom:1", "down:1", "up:1"]
    stalled = True
    assert (await probe.checks())["jetstream"] is False


async def test_bootstrap_in_development_logs_the_dev_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = GatewaySettings.from_env(
        {"CXLOOP_ENV": "development", "CXLOOP_GATEWAY_METRICS_PORT": "0"}
    )
    with caplog.at_level(logging.INFO, logger="gateway.bootstrap"):
        runtime = await bootstrap(settings)
    assert "gateway accepting write key 'dev' (development mode only)" in caplog.messages
    assert runtime.db is None and runtime.relay is None and runtime.consumers == []
    # The HTTP server, consent enforcement (projection, profile events, the
    # loader), the privacy-request participant (adapters/privacy.py) and retention.
    enforcing = len(runtime.extra_tasks)
    assert runtime.enforcement is not None  # type: ignore[attr-defined]
    off = await bootstrap(settings.model_copy(update={"enforce_analytics": False}))
    assert off.enforcement is None  # type: ignore[attr-defined]
    assert len(off.extra_tasks) == enforcing - 3
    await off.bus.close()
    # Never started, so nothing to stop but the (idle) bus.
    await runtime.bus.close()


async def test_other_domains_routers_are_included_with_the_error_shape() -> None:
    import httpx
    from fastapi import APIRouter

    from cxloop_libs.errors import Unavailable
    from gateway.adapters.http import create_app
    from gateway.domain.write_keys import WriteKeys
    from gateway.tests.unit.fakes import FakeReadiness

    router = APIRouter()

    @router.get("/v1/loyalty/ping")
    async def ping() -> dict[str, str]:
        raise Unavailable("loyalty cannot answer now")

    app = create_app(
        ingest=None,  # type: ignore[arg-type]
        write_keys=WriteKeys({}),
        readiness=FakeReadiness(),
        routers=[router],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as c:
        r = await c.get("/v1/loyalty/ping")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert r.json()["code"] == "unavailable"
