"""The supervisor with real subprocesses: tiny Python scripts, and the real nats-server."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from cxloop_cli.embedded_nats import EmbeddedNatsError, start_embedded_nats
from cxloop_cli.probes import free_port, http_ready, port_free
from cxloop_cli.supervisor import (
    ProcessExitedError,
    ProcessSpec,
    ReadinessTimeoutError,
    Supervisor,
)
from cxloop_testing.infra import free_ports

# Serves 200 on FAKE_PORT, logs to stdout and stderr, exits 0 on SIGTERM.
FAKE_HTTP_SERVICE = textwrap.dedent(
    """
    import http.server, os, signal, sys

    port = int(os.environ["FAKE_PORT"])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on {port}")
    print("warming up", file=sys.stderr)
    server.serve_forever()
    """
)


def fake_service(name: str, port: int) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-c", FAKE_HTTP_SERVICE],
        env={"FAKE_PORT": str(port)},
        ready_check=http_ready(f"http://127.0.0.1:{port}/"),
    )


def connect_refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_two_services_become_ready_and_stop_cleanly(tmp_path: Path) -> None:
    ports = dict(zip(("alpha", "beta"), free_ports(2), strict=True))
    sup = Supervisor(log_dir=tmp_path / "logs", output=None)
    procs = [sup.start(fake_service(name, port)) for name, port in ports.items()]
    try:
        sup.wait_ready(timeout=15)
        for port in ports.values():
            assert httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).text == "ok"
    finally:
        codes = sup.stop_all(timeout=5)

    assert codes == {"beta": 0, "alpha": 0}
    assert list(codes) == ["beta", "alpha"], "stopped in reverse start order"
    assert all(p.popen.poll() is not None for p in procs)
    for port in ports.values():
        assert connect_refused(port)
        assert port_free("127.0.0.1", port)


def test_early_exit_fails_wait_ready_naming_the_process(tmp_path: Path) -> None:
    sup = Supervisor(log_dir=tmp_path / "logs", output=None)
    sup.start(
        ProcessSpec(
            name="broken",
            argv=[sys.executable, "-c", "import sys; print('no database'); sys.exit(3)"],
            ready_check=lambda: False,
        )
    )
    try:
        with pytest.raises(ProcessExitedError) as info:
            sup.wait_ready(timeout=15)
    finally:
        sup.stop_all(timeout=1)
    assert info.value.name == "broken"
    assert info.value.returncode == 3
    assert "broken" in str(info.value)
    assert "no database" in info.value.last_lines


def test_output_is_prefixed_on_console_and_written_to_log_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    with Supervisor(log_dir=tmp_path / "logs") as sup:
        sup.start(fake_service("alpha", port))
        sup.wait_ready(timeout=15)
        deadline = time.monotonic() + 5
        while len(sup.last_lines("alpha")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    out = capsys.readouterr().out
    assert f"[alpha] listening on {port}\n" in out
    assert "[alpha] warming up\n" in out
    # The file is the service's own log, unprefixed, stdout and stderr together.
    logged = (tmp_path / "logs" / "alpha.log").read_text().splitlines()
    assert f"listening on {port}" in logged
    assert "warming up" in logged


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('stubborn', flush=True); time.sleep(60)"
    )
    sup = Supervisor(output=None, stop_timeout=0.5)
    proc = sup.start(ProcessSpec(name="stubborn", argv=[sys.executable, "-c", script]))
    deadline = time.monotonic() + 5
    while not sup.last_lines("stubborn") and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert sup.stop("stubborn") == -9
    assert time.monotonic() - started < 5
    assert proc.popen.poll() is not None


def test_readiness_timeout_names_the_pending_process() -> None:
    sup = Supervisor(output=None)
    sup.start(
        ProcessSpec(name="sleepy", argv=[sys.executable, "-c", "import time; time.sleep(30)"])
    )
    try:
        with pytest.raises(ReadinessTimeoutError) as info:
            sup.wait_ready({"sleepy": lambda: False}, timeout=0.5)
    finally:
        sup.stop_all(timeout=2)
    assert list(info.value.pending) == ["sleepy"]
    assert "sleepy" in str(info.value)


def test_env_is_injected_over_the_inherited_environment(tmp_path: Path) -> None:
    script = "import os; print(os.environ['CXLOOP_TEST_VALUE'], os.environ.get('PATH') is not None)"
    sup = Supervisor(log_dir=tmp_path, output=None)
    proc = sup.start(
        ProcessSpec(
            name="env", argv=[sys.executable, "-c", script], env={"CXLOOP_TEST_VALUE": "42"}
        )
    )
    proc.popen.wait(timeout=10)
    sup.stop_all()
    assert (tmp_path / "env.log").read_text() == "42 True\n"


@pytest.mark.integration
def test_embedded_nats_starts_with_jetstream_and_stops(tmp_path: Path) -> None:
    port, monitor_port = free_ports(2)
    nats = start_embedded_nats(tmp_path, port, monitor_port)
    try:
        assert nats.url == f"nats://127.0.0.1:{port}"
        health = httpx.get(f"{nats.monitor_url}/healthz?js-enabled-only=true", trust_env=False)
        assert health.status_code == 200
        jsz = httpx.get(f"{nats.monitor_url}/jsz", trust_env=False).json()
        assert not jsz.get("disabled", False)
        assert jsz["config"]["store_dir"].startswith(str(tmp_path / "nats"))
        assert not connect_refused(port)
    finally:
        code = nats.stop()
    assert code == 0
    assert connect_refused(port)
    assert connect_refused(monitor_port)
    assert "Server is ready" in (tmp_path / "logs" / "nats.log").read_text()


def test_embedded_nats_reports_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(EmbeddedNatsError) as info:
            start_embedded_nats(tmp_path, taken, free_port())
    message = str(info.value)
    assert f"127.0.0.1:{taken}" in message
    assert "CXLOOP_EMBEDDED_NATS_PORT" in message
    assert "CXLOOP_NATS_URL" in message
