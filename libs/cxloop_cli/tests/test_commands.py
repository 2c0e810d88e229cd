"""Every `cxloop` command against a fresh suite's NATS (issue 10 item 6):
an empty dead-letter stream is the normal state and must not crash
`dlq ls` (it asked for message 0); a dead letter then lists and replays;
audit export of an empty log; version. `up` and `status` are in test_up.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from cxloop_cli import main
from cxloop_cli.main import app
from cxloop_libs.messaging import stream_for
from cxloop_libs.messaging.streams import DEAD_LETTER, ensure_stream
from cxloop_testing.infra import EmbeddedNats, start_embedded_nats

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fresh_nats() -> Iterator[EmbeddedNats]:
    server = start_embedded_nats()
    try:
        yield server
    finally:
        server.stop()


def cxloop(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (a new interpreter per call costs seconds),
    200 columns wide: the CLI's console takes its width when it is imported,
    and a pytest-xdist worker has COLUMNS=80 in its environment then."""
    width = main.console._width
    main.console.width = 200
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    finally:
        main.console._width = width
    return subprocess.CompletedProcess(
        list(args), result.exit_code, result.stdout, result.stderr if result.stderr_bytes else ""
    )


async def _with_js(url: str, work):  # type: ignore[no-untyped-def]
    nc = await nats.connect(url)
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()


def test_dlq_ls_and_replay_on_a_fresh_suite(fresh_nats: EmbeddedNats) -> None:
    # No DEADLETTER stream at all yet.
    r = cxloop("dlq", "ls", "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stderr
    assert "dead letters (0)" in r.stdout
    # The stream exists (every service creates it) and is empty.
    asyncio.run(_with_js(fresh_nats.url, lambda js: ensure_stream(js, DEAD_LETTER)))
    r = cxloop("dlq", "ls", "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dead letters (0)" in r.stdout
    r = cxloop("dlq", "replay", "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 replayed" in r.stdout

    async def dead_letter(js):  # type: ignore[no-untyped-def]
        await js.publish(
            "dlq.identity-interactions",
            b"poison",
            headers={
                "cx-dlq-consumer": "identity-interactions",
                "cx-dlq-subject": "cx.gateway.interaction.recorded",
                "cx-dlq-reason": "DecodeError",
                "cx-dlq-deliveries": "5",
                "ce-id": "ev-1",
            },
        )

    asyncio.run(_with_js(fresh_nats.url, lambda js: ensure_stream(js, stream_for("gateway"))))
    asyncio.run(_with_js(fresh_nats.url, dead_letter))
    r = cxloop("dlq", "ls", "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dead letters (1)" in r.stdout and "identity-interactions" in r.stdout
    assert "DecodeError" in r.stdout
    r = cxloop("dlq", "replay", "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "replayed dead letter 1 → cx.gateway.interaction.recorded" in r.stdout
    r = cxloop("dlq", "ls", "--nats-url", fresh_nats.url)
    assert "dead letters (0)" in r.stdout


def test_audit_export_of_a_fresh_suite(fresh_nats: EmbeddedNats, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    r = cxloop("audit", "export", "--out", str(out), "--nats-url", fresh_nats.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 audit entries" in r.stdout
    assert out.read_text() == ""


def test_version_through_the_installed_entry_point() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cxloop_cli.main", "version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("cxloop ")


def test_dlq_ls_without_nats_is_a_clear_error_not_a_traceback() -> None:
    r = cxloop("dlq", "ls", "--nats-url", "nats://127.0.0.1:1")
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert "cannot reach NATS" in (r.stdout + r.stderr)


def test_status_reports_each_consumers_backlog_and_dead_letters(fresh_nats: EmbeddedNats) -> None:
    import json

    from nats.js.api import ConsumerConfig

    async def setup(js):  # type: ignore[no-untyped-def]
        await ensure_stream(js, stream_for("loyalty"))
        await ensure_stream(js, DEAD_LETTER)
        await js.add_consumer(
            "LOYALTY",
            ConsumerConfig(durable_name="feedback-loyalty", filter_subject="cx.loyalty.>"),
        )
        for i in range(3):
            await js.publish("cx.loyalty.points.earned", f"{i}".encode())
        for _ in range(2):
            await js.publish("dlq.feedback-loyalty.cx.loyalty.points.earned", b"poison")

    asyncio.run(_with_js(fresh_nats.url, setup))
    r = cxloop(
        "status",
        "--json",
        "--nats-url",
        fresh_nats.url,
        "--gateway-url",
        "http://127.0.0.1:9",
        "--nats-monitor-url",
        "http://127.0.0.1:9",
    )
    assert r.returncode == 1  # nothing but NATS runs: components are down
    consumers = {c["consumer"]: c for c in json.loads(r.stdout)["consumers"]}
    c = consumers["feedback-loyalty"]
    assert (c["service"], c["stream"], c["pending"], c["dead_letters"]) == (
        "feedback",
        "LOYALTY",
        3,
        2,
    )
    table = cxloop("status", "--nats-url", fresh_nats.url, "--gateway-url", "http://127.0.0.1:9")
    assert "feedback-loyalty" in table.stdout and "dead letters" in table.stdout
