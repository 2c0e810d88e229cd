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
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(infra, "_nats_url", None)
    monkeypatch.setattr(infra, "port_open", lambda host, port, timeout=0.3: port == 4222)
    monkeypatch.setattr(infra, "_jetstream_ok", jetstream_ok)
    assert infra.nats_url() == "nats://127.0.0.1:4222"
    assert asked == ["nats://127.0.0.1:4222"]


def test_each_parallel_worker_starts_its_own_nats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest-xdist the tests of one worker reset the cxloop streams
    while another's run: each worker gets a server of its own, even when the
    environment names one (it would be shared by all of them)."""
    started: list[infra.EmbeddedNats] = []
    real_start = infra.start_embedded_nats

    def start(*args: object, **kwargs: object) -> infra.EmbeddedNats:
        server = real_start(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    monkeypatch.setenv("CXLOOP_TEST_NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setattr(infra, "_nats_url", None)
    monkeypatch.setattr(infra, "start_embedded_nats", start)
    try:
        url = infra.nats_url()
        assert [s.url for s in started] == [url]
        assert infra.run_sync(infra._jetstream_ok(url))
        assert infra.nats_url() == url  # once per worker, not per test
    finally:
        for server in started:
            server.stop()


@pytest.mark.parametrize("worker_count", ["1", ""])
def test_a_single_worker_keeps_the_environments_nats(
    monkeypatch: pytest.MonkeyPatch, worker_count: str
) -> None:
    monkeypatch.setenv("CXLOOP_TEST_NATS_URL", "nats://127.0.0.1:1")
    if worker_count:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", worker_count)
    else:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(infra, "_nats_url", None)
    assert infra.nats_url() == "nats://127.0.0.1:1"


async def test_eventually_retries_transient_errors_and_raises_others() -> None:
    import grpc
    import nats.errors

    from cxloop_testing.infra import eventually

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    class Invalid(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.INVALID_ARGUMENT

    errors: list[BaseException] = [
        Unavailable(),
        nats.errors.TimeoutError(),
        TimeoutError(),
        AssertionError("not yet"),
    ]

    def check() -> str:
        if errors:
            raise errors.pop(0)
        return "done"

    assert await eventually(check, timeout=5, interval=0.001) == "done"

    calls = 0

    def invalid() -> bool:
        nonlocal calls
        calls += 1
        raise Invalid()

    with pytest.raises(Invalid):
        await eventually(invalid, timeout=5, interval=0.001)
    assert calls == 1  # not retried: a real error fails at once

    def never() -> bool:
        raise Unavailable()

    with pytest.raises(AssertionError, match="Unavailable"):
        await eventually(never, timeout=0.05, interval=0.001)
