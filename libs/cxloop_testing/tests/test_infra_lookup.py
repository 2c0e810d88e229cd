"""The test-infrastructure lookup of NATS works from inside a running event
loop: `python -m bench.run consent` asks for it from async code while a NATS
answers on 127.0.0.1:4222 and CXLOOP_TEST_NATS_URL is unset (it crashed with
"asyncio.run() cannot be called from a running event loop")."""

from __future__ import annotations

import asyncio

import pytest

from cxloop_testing import infra


async def _answer(value: str) -> str:
    await asyncio.sleep(0)
    return value


def test_run_sync_without_a_loop() -> None:
    assert infra.run_sync(_answer("plain")) == "plain"


async def test_run_sync_inside_a_running_loop() -> None:
    assert infra.run_sync(_answer("nested")) == "nested"


async def test_nats_lookup_from_async_code_finds_the_local_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def jetstream_ok(url: str) -> bool:
        asked.append(url)
        return True

    monkeypatch.delenv("CXLOOP_TEST_NATS_URL", raising=False)
    monkeypatch.setattr(infra, "_nats_url", None)
    monkeypatch.setattr(infra, "port_open", lambda host, port, timeout=0.3: port == 4222)
    monkeypatch.setattr(infra, "_jetstream_ok", jetstream_ok)
    assert infra.nats_url() == "nats://127.0.0.1:4222"
    assert asked == ["nats://127.0.0.1:4222"]
