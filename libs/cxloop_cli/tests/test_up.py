"""`cxloop up` end to end, with stand-in service modules that shadow the real ones.

The stand-ins answer gRPC health (or /readyz for the gateway) on the ports `up`
hands them, and record the environment they were started with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cxloop_cli.probes import free_port, port_free
from cxloop_cli.suite import START_ORDER

FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, json, os, signal, sys, threading
    from concurrent import futures

    NAME = {name!r}
    seen = {{k: v for k, v in os.environ.items() if k.startswith(("CXLOOP_", "OTEL_"))}}
    print("env " + json.dumps(seen, sort_keys=True))
    if os.environ.get("FAKE_CRASH") == NAME:
        print("cannot open database", file=sys.stderr)
        sys.exit(3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if NAME == "gateway":
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path in ("/healthz", "/readyz") else 404)
                self.end_headers()
            def log_message(self, *args):
                pass
        port = int(os.environ["CXLOOP_GATEWAY_HTTP_PORT"])
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    else:
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        server = grpc.server(futures.ThreadPoolExecutor(2))
        checker = health.HealthServicer()
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        port = int(os.environ["CXLOOP_" + NAME.upper() + "_GRPC_PORT"])
        server.add_insecure_port(f"127.0.0.1:{{port}}")
        server.start()
    print(f"serving on {{port}}", flush=True)
    if os.environ.get("FAKE_CRASH_AFTER_READY") == NAME:
        # With FAKE_CRASH_MARKER only the first run crashes; without, every run.
        marker = os.environ.get("FAKE_CRASH_MARKER")
        if not marker or not os.path.exists(marker):
            if marker:
                open(marker, "w").close()
            stop.wait(0.5)
            print("boom", file=sys.stderr, flush=True)
            os._exit(3)
    stop.wait()
    print("bye", flush=True)
    """
)


@pytest.fixture
def fake_services(tmp_path: Path) -> Path:
    root = tmp_path / "fakes"
    for name in START_ORDER:
        pkg = root / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "__main__.py").write_text(FAKE_SERVICE.format(name=name))
    return root


def up_env(fakes: Path, services: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    ports: dict[str, int] = {}
    env = dict(os.environ)
    # PYTHONPATH comes before the .pth import roots, so the fakes shadow services/.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fakes), env.get("PYTHONPATH")]))
    env.pop("CXLOOP_NATS_URL", None)
    for name in services:
        ports[name] = free_port()
        var = (
            "CXLOOP_GATEWAY_HTTP_PORT" if name == "gateway" else f"CXLOOP_{name.upper()}_GRPC_PORT"
        )
        env[var] = str(ports[name])
        env[f"CXLOOP_{name.upper()}_METRICS_PORT"] = str(free_port())
    env["CXLOOP_EMBEDDED_NATS_PORT"] = str(free_port())
    env["CXLOOP_EMBEDDED_NATS_MONITOR_PORT"] = str(free_port())
    env["COLUMNS"] = "250"
    return env, ports


def start_up(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cxloop_cli.main", "up", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"{marker!r} not seen; output:\n{''.join(seen)}")


@pytest.mark.integration
def test_up_starts_the_suite_and_stops_it_on_sigterm(tmp_path: Path, fake_services: Path) -> None:
    services = ["identity", "gateway"]
    env, ports = up_env(fake_services, services)
    data_dir = tmp_path / "data"
    proc = start_up(["--only", "gateway,identity", "--data-dir", str(data_dir)], env)
    try:
        out = read_until(proc, "Write key (development only): dev", timeout=60)
        rest = read_until(proc, "Ctrl-C stops everything", timeout=5)
        status = subprocess.run(
            [sys.executable, "-m", "cxloop_cli.main", "status"],
            env={
                **env,
                "CXLOOP_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
                "CXLOOP_NATS_MONITOR_URL": (
                    f"http://127.0.0.1:{env['CXLOOP_EMBEDDED_NATS_MONITOR_PORT']}"
                ),
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        tail, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, tail

    assert "[identity] serving on" in out and "[gateway] serving on" in out
    assert f"grpc 127.0.0.1:{ports['identity']}" in out
    assert f"http://127.0.0.1:{ports['gateway']}/v1/track" in rest
    # Only identity and the gateway run, so status reports the others down.
    assert status.returncode == 1, status.stdout
    rows = {line.split()[1]: line for line in status.stdout.splitlines() if line.startswith("│")}
    assert "SERVING" in rows["identity"] and " up " in rows["identity"]
    assert "HTTP 200" in rows["gateway"]
    assert "JetStream on, 0 streams" in rows["nats"]
    assert " down " in rows["consent"]
    assert "[gateway] bye" in tail and "[identity] bye" in tail
    assert tail.index("[gateway] bye") < tail.index("[identity] bye")
    assert all(port_free("127.0.0.1", p) for p in ports.values())

    seen = json.loads((data_dir / "logs" / "identity.log").read_text().splitlines()[0][4:])
    assert seen["CXLOOP_ENV"] == "development"
    assert seen["CXLOOP_NATS_URL"] == f"nats://127.0.0.1:{env['CXLOOP_EMBEDDED_NATS_PORT']}"
    assert seen["CXLOOP_DATA_DIR"] == str(data_dir)
    assert seen["CXLOOP_DEV_WRITE_KEY"] == "dev"
    assert seen["OTEL_SERVICE_NAME"] == "identity"
    assert seen["CXLOOP_IDENTITY_DATABASE_URL"] == f"sqlite:///{data_dir}/identity.db"
    gateway_seen = json.loads((data_dir / "logs" / "gateway.log").read_text().splitlines()[0][4:])
    assert gateway_seen["CXLOOP_IDENTITY_GRPC_PORT"] == str(ports["identity"])
    assert gateway_seen["CXLOOP_GATEWAY_READINESS_SERVICES"] == "identity"
    assert (data_dir / "nats" / "jetstream").is_dir()


@pytest.mark.integration
def test_up_exits_1_when_a_service_dies_during_startup(tmp_path: Path, fake_services: Path) -> None:
    services = ["identity", "consent", "gateway"]
    env, ports = up_env(fake_services, services)
    env["FAKE_CRASH"] = "consent"
    proc = start_up(["--only", ",".join(services), "--data-dir", str(tmp_path / "d")], env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "consent exited with code 3" in out
    assert "cannot open database" in out
    assert all(port_free("127.0.0.1", p) for p in ports.values())


def test_up_refuses_a_taken_port_and_names_the_variable(
    tmp_path: Path, fake_services: Path
) -> None:
    import socket

    env, _ = up_env(fake_services, ["identity"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        env["CXLOOP_IDENTITY_GRPC_PORT"] = str(holder.getsockname()[1])
        proc = start_up(["--only", "identity", "--data-dir", str(tmp_path / "d")], env)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "CXLOOP_IDENTITY_GRPC_PORT" in out


def test_up_rejects_unknown_service_names(tmp_path: Path) -> None:
    proc = start_up(["--only", "identity,billing", "--data-dir", str(tmp_path)], dict(os.environ))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "billing" in out


@pytest.mark.integration
def test_a_second_signal_kills_fast_and_leaves_no_process(
    tmp_path: Path, fake_services: Path
) -> None:
    services = ["identity", "gateway"]
    env, ports = up_env(fake_services, services)
    proc = start_up(["--only", "identity,gateway", "--data-dir", str(tmp_path / "d")], env)
    try:
        read_until(proc, "Ctrl-C stops everything", timeout=60)
    finally:
        # What a supervisor that signals the whole group, or an impatient user, does.
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Stopped." in out
    monitor = int(env["CXLOOP_EMBEDDED_NATS_MONITOR_PORT"])
    assert all(port_free("127.0.0.1", p) for p in [*ports.values(), monitor])


@pytest.mark.integration
def test_up_restarts_a_crashed_service_and_keeps_the_rest_running(
    tmp_path: Path, fake_services: Path
) -> None:
    """Issue 10 item 7: one crashed service no longer stops the suite."""
    services = ["identity", "gateway"]
    env, ports = up_env(fake_services, services)
    env["FAKE_CRASH_AFTER_READY"] = "identity"
    env["FAKE_CRASH_MARKER"] = str(tmp_path / "crashed-once")
    env["CXLOOP_UP_RESTART_BACKOFF_S"] = "0.2"
    proc = start_up(["--only", "identity,gateway", "--data-dir", str(tmp_path / "d")], env)
    try:
        read_until(proc, "Ctrl-C stops everything", timeout=60)
        out = read_until(proc, "identity exited with code 3; restarting in 0.2 s", timeout=30)
        out += read_until(proc, "[identity] serving on", timeout=30)
        assert proc.poll() is None  # still up
    finally:
        proc.send_signal(signal.SIGTERM)
        tail, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + tail
    assert "Restarted identity" in out
    assert "[gateway] bye" in tail and "[identity] bye" in tail
    assert all(port_free("127.0.0.1", p) for p in ports.values())


@pytest.mark.integration
def test_up_gives_up_on_a_service_that_keeps_crashing(tmp_path: Path, fake_services: Path) -> None:
    services = ["identity", "gateway"]
    env, ports = up_env(fake_services, services)
    env["FAKE_CRASH_AFTER_READY"] = "identity"
    env["CXLOOP_UP_RESTART_BACKOFF_S"] = "0.1"
    env["CXLOOP_UP_MAX_CRASHES"] = "3"
    proc = start_up(["--only", "identity,gateway", "--data-dir", str(tmp_path / "d")], env)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1, out
    assert out.count("identity exited with code 3; restarting") == 2
    assert "identity crashed 3 times within 60 s; giving up." in out
    assert "boom" in out
    assert all(port_free("127.0.0.1", p) for p in ports.values())
