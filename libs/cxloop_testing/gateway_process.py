"""The real gateway as its own process (`python -m gateway`) against a real
nats-server: what hostile clients, SDKs and faults meet (tests/hostile)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
from cxloop.gateway.v1 import events_pb2

from cxloop_cli.probes import free_port
from cxloop_cli.supervisor import ProcessSpec, Supervisor
from cxloop_testing.infra import EmbeddedNats

WRITE_KEY = "hostile-key"
SOURCE = "hostile"
PRIVACY_TOKEN = "hostile-privacy-token"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


@dataclass
class RunningGateway:
    url: str
    nats: EmbeddedNats
    supervisor: Supervisor
    log: Path

    def logs(self) -> str:
        """Everything the gateway logged so far (its log file)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.supervisor.get("gateway").returncode is None

    def healthy(self) -> bool:
        r = httpx.get(f"{self.url}/readyz", timeout=5)
        return self.alive() and r.status_code == 200


def gateway_env(nats_url: str, http_port: int, **extra: str) -> dict[str, str]:
    return {
        "CXLOOP_ENV": "production",
        "CXLOOP_PII_HASH_KEY": "hostile-test-hash-key-0123456789abcdef",
        "CXLOOP_NATS_URL": nats_url,
        "CXLOOP_GATEWAY_HTTP_PORT": str(http_port),
        "CXLOOP_GATEWAY_METRICS_PORT": str(free_port()),
        "CXLOOP_GATEWAY_WRITE_KEYS": f"{WRITE_KEY}={SOURCE}",
        "CXLOOP_GATEWAY_READINESS_SERVICES": "",
        "CXLOOP_GATEWAY_ENFORCE_ANALYTICS": "false",
        "CXLOOP_GATEWAY_PRIVACY_TOKENS": PRIVACY_TOKEN,
        "CXLOOP_LOG_LEVEL": "DEBUG",
        # A stalled NATS is answered 503 after 1 s, so SDK retry tests are quick.
        "CXLOOP_GATEWAY_PUBLISH_TIMEOUT_S": "1",
        "OTEL_SDK_DISABLED": "true",
        **extra,
    }


def start_gateway(tmp: Path, nats_server: EmbeddedNats, **extra: str) -> tuple[Supervisor, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200

    sup = Supervisor(log_dir=tmp / "logs", output=None, stop_timeout=5)
    sup.start(
        ProcessSpec(
            name="gateway",
            argv=[sys.executable, "-m", "gateway"],
            env=gateway_env(nats_server.url, port, **extra),
            ready_check=ready,
        )
    )
    sup.wait_ready(timeout=60)
    return sup, url


async def stored_events(nats_url: str) -> list[events_pb2.InteractionRecorded]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("GATEWAY")
        out = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            m = events_pb2.InteractionRecorded()
            m.ParseFromString((await js.get_msg("GATEWAY", seq)).data or b"")
            out.append(m)
        return out
    finally:
        await nc.close()


@contextmanager
def nats_paused(server: EmbeddedNats) -> Iterator[None]:
    """SIGSTOP the nats-server (a stall: connections stay open, nothing
    answers) and SIGCONT it on leaving, whatever happens."""
    server.pause()
    try:
        yield
    finally:
        server.resume()
