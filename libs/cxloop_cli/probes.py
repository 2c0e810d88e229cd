"""Health probes shared by `cxloop up` (readiness) and `cxloop status` (one-off report)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cxloop_cli.supervisor import ReadyCheck


@dataclass(frozen=True)
class ProbeResult:
    up: bool
    detail: str


def grpc_health(target: str, timeout: float = 1.0, service: str = "") -> ProbeResult:
    """grpc.health.v1 Check; up only when the answer is SERVING."""
    # A developer's http_proxy must not capture calls to 127.0.0.1.
    from cxloop_libs.grpcx.tls import ClientTls

    tls = ClientTls.from_env()
    options = [("grpc.enable_http_proxy", 0), *(tls.options() if tls else ())]
    channel = (
        grpc.secure_channel(target, tls.credentials(), options=options)
        if tls
        else grpc.insecure_channel(target, options=options)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            name = code.name if code is not None else "error"
            return ProbeResult(False, name)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return ProbeResult(reply.status == health_pb2.HealthCheckResponse.SERVING, status)


def http_get(url: str, timeout: float = 1.0) -> httpx.Response:
    # trust_env=False: a developer's HTTP(S)_PROXY must not capture calls to 127.0.0.1.
    return httpx.get(url, timeout=timeout, trust_env=False)


def http_ok(url: str, timeout: float = 1.0) -> ProbeResult:
    try:
        resp = http_get(url, timeout)
    except httpx.HTTPError as exc:
        return ProbeResult(False, type(exc).__name__)
    return ProbeResult(resp.status_code == 200, f"HTTP {resp.status_code}")


def nats_jetstream(monitor_url: str, timeout: float = 1.0) -> ProbeResult:
    """Monitoring /healthz with JetStream required, plus the stream count from /jsz."""
    base = monitor_url.rstrip("/")
    health = http_ok(f"{base}/healthz?js-enabled-only=true", timeout)
    if not health.up:
        return health
    try:
        jsz: dict[str, Any] = http_get(f"{base}/jsz", timeout).json()
    except (httpx.HTTPError, ValueError) as exc:
        return ProbeResult(False, f"/jsz: {type(exc).__name__}")
    if jsz.get("disabled"):
        return ProbeResult(False, "JetStream disabled")
    return ProbeResult(True, f"JetStream on, {jsz.get('streams', 0)} streams")


def grpc_ready(target: str) -> ReadyCheck:
    return lambda: grpc_health(target).up


def http_ready(url: str) -> ReadyCheck:
    return lambda: http_ok(url).up


def nats_ready(monitor_url: str) -> ReadyCheck:
    return lambda: http_ok(f"{monitor_url.rstrip('/')}/healthz?js-enabled-only=true").up


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel has just handed out; for tests that must not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port
