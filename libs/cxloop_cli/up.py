"""`cxloop up`: the whole suite on one machine, in development mode."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cxloop_cli.embedded_nats import (
    NATS_PROCESS_NAME,
    EmbeddedNats,
    EmbeddedNatsError,
    start_embedded_nats,
)
from cxloop_cli.probes import port_free
from cxloop_cli.restarts import RestartPolicy
from cxloop_cli.suite import ServicePlan, plan_suite, suite_specs
from cxloop_cli.supervisor import (
    ProcessExitedError,
    ReadinessTimeoutError,
    Supervisor,
    SupervisorError,
)
from cxloop_libs.config import SERVICES_WITH_DATABASE

STYLES = ("cyan", "green", "magenta", "yellow", "blue", "bright_red", "bright_cyan")


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    services: list[str]
    nats_url: str | None
    nats_port: int
    nats_monitor_port: int
    write_key: str
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    # A child that crashes after start-up is restarted (cxloop_cli.restarts).
    restart_backoff_s: float = 1.0
    max_crashes: int = 5


class _ConsoleSink:
    """Prints child output as ``[name] line`` with one colour per process."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.styles: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, name: str, line: str) -> None:
        with self.lock:
            style = self.styles.setdefault(name, STYLES[len(self.styles) % len(STYLES)])
            text = Text.assemble((f"[{name}] ", style), line)
            self.console.print(text, soft_wrap=True, highlight=False)


def _port_conflicts(plans: list[ServicePlan]) -> list[str]:
    problems = []
    for p in plans:
        kind, var = (
            ("HTTP", "CXLOOP_GATEWAY_HTTP_PORT")
            if p.is_gateway
            else ("gRPC", f"CXLOOP_{p.name.upper()}_GRPC_PORT")
        )
        ports = [(p.port, kind, var)]
        if p.metrics_port:
            ports.append((p.metrics_port, "metrics", f"CXLOOP_{p.name.upper()}_METRICS_PORT"))
        for port, what, env_var in ports:
            if not port_free(p.host, port):
                problems.append(
                    f"{p.name} {what} port {p.host}:{port} is already in use; "
                    f"stop what holds it or set {env_var}"
                )
    return problems


class _ShutdownSignals:
    """Ctrl-C and SIGTERM share one path: the first interrupts the main thread,
    any later one (a second Ctrl-C, or a group-wide signal delivered twice)
    only cuts the grace periods short, so the stop sequence itself is never
    interrupted and no child is left orphaned."""

    def __init__(self, supervisor: Supervisor, console: Console) -> None:
        self.supervisor = supervisor
        self.console = console
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt
        self.console.print("[yellow]Killing the remaining processes now.[/]")
        self.supervisor.force()

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _summary(
    console: Console, sup: Supervisor, plans: list[ServicePlan], nats: EmbeddedNats | None
) -> None:
    table = Table(title="cxloop (development)", title_justify="left")
    for col in ("service", "pid", "address", "metrics port"):
        table.add_column(col, no_wrap=True)
    table.add_column("database", overflow="fold")
    if nats is not None:
        monitor_port = nats.monitor_url.rsplit(":", 1)[-1]
        table.add_row(
            NATS_PROCESS_NAME,
            str(nats.pid),
            nats.url,
            f"{monitor_port} (monitor)",
            f"jetstream {nats.store_dir}",
        )
    for p in plans:
        metrics = str(p.metrics_port) if p.metrics_port else "-"
        table.add_row(
            p.name,
            str(sup.get(p.name).pid),
            p.address_label,
            metrics,
            p.database_url if p.name in SERVICES_WITH_DATABASE else "—",
        )
    console.print(table)


def _next_steps(console: Console, plans: list[ServicePlan], write_key: str, logs: Path) -> None:
    console.print(f"Write key (development only): [bold]{write_key}[/]", highlight=False)
    gateway = next((p for p in plans if p.is_gateway), None)
    if gateway is not None:
        body = '{"userId":"u1","event":"Signed Up"}'
        console.print("Try:", highlight=False)
        console.print(
            Text(
                f"  curl -u {write_key}: -H 'content-type: application/json' "
                f"-d '{body}' {gateway.address}/v1/track"
            ),
            soft_wrap=True,
        )
    console.print(f"Logs: {logs}/<service>.log · Ctrl-C stops everything.", highlight=False)


def _report_exit(console: Console, sup: Supervisor, exc: ProcessExitedError) -> None:
    console.print(f"[bold red]{exc.name} exited with code {exc.returncode}.[/] Last log lines:")
    for line in exc.last_lines[-20:]:
        console.print(Text(f"  {line}"), soft_wrap=True)
    log_path = sup.get(exc.name).log_path
    if log_path is not None:
        console.print(f"Full log: {log_path}", highlight=False)


def _report_timeout(console: Console, sup: Supervisor, exc: ReadinessTimeoutError) -> None:
    console.print(f"[bold red]{exc}[/]")
    for name in exc.pending:
        console.print(f"Last log lines of {name}:")
        for line in sup.last_lines(name, 10):
            console.print(Text(f"  {line}"), soft_wrap=True)


def _watch(console: Console, sup: Supervisor, policy: RestartPolicy) -> None:
    """Until Ctrl-C: restart every child that crashes, with back-off; raise
    ProcessExitedError for one that keeps crashing (then `up` stops all)."""
    due: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for proc in sup.exited():
            if proc.name in due:
                continue
            code = proc.returncode if proc.returncode is not None else -1
            delay = policy.crashed(proc.name, now)
            if delay is None:
                console.print(
                    f"[bold red]{proc.name} crashed {policy.crashes(proc.name)} times within "
                    f"{policy.window_s:.0f} s; giving up.[/]",
                    highlight=False,
                )
                raise ProcessExitedError(proc.name, code, sup.last_lines(proc.name))
            console.print(
                f"[yellow]{proc.name} exited with code {code}; restarting in {delay:g} s "
                f"(crash {policy.crashes(proc.name)} of {policy.max_crashes}).[/]",
                highlight=False,
            )
            due[proc.name] = now + delay
        for name, when in list(due.items()):
            if when <= now:
                del due[name]
                restarted = sup.restart(name)
                console.print(f"Restarted {name} (pid {restarted.pid}).", highlight=False)
        time.sleep(0.1 if due else 0.5)


def run_up(opts: UpOptions, console: Console, environ: Mapping[str, str] | None = None) -> int:
    """Start NATS (unless given one) and the services, wait for them, block until
    Ctrl-C / SIGTERM, stop everything. Returns the process exit code."""
    env = os.environ if environ is None else environ
    err = Console(stderr=True)
    data_dir = opts.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    plans = plan_suite(data_dir, opts.services, env)
    conflicts = _port_conflicts(plans)
    if conflicts:
        for line in conflicts:
            err.print(f"[red]error:[/] {line}", highlight=False)
        return 1

    sup = Supervisor(log_dir=logs, output=_ConsoleSink(console), stop_timeout=opts.stop_timeout)
    code = 0
    nats: EmbeddedNats | None = None
    signals = _ShutdownSignals(sup, console)
    with signals.installed():
        try:
            nats_url = opts.nats_url
            if nats_url is None:
                console.print(
                    f"Starting embedded NATS on 127.0.0.1:{opts.nats_port}", highlight=False
                )
                nats = start_embedded_nats(
                    data_dir, opts.nats_port, opts.nats_monitor_port, supervisor=sup
                )
                nats_url = nats.url
            for spec in suite_specs(plans, data_dir, nats_url, opts.write_key):
                sup.start(spec)
            sup.wait_ready(timeout=opts.ready_timeout)
            _summary(console, sup, plans, nats)
            if nats is None:
                console.print(f"NATS: {nats_url} (external)", highlight=False)
            _next_steps(console, plans, opts.write_key, logs)
            _watch(
                console, sup, RestartPolicy(opts.restart_backoff_s, max_crashes=opts.max_crashes)
            )
        except KeyboardInterrupt:
            code = 0
        except ProcessExitedError as exc:
            signals.stopping = True
            _report_exit(err, sup, exc)
            code = 1
        except ReadinessTimeoutError as exc:
            signals.stopping = True
            _report_timeout(err, sup, exc)
            code = 1
        except (EmbeddedNatsError, SupervisorError) as exc:
            signals.stopping = True
            err.print(f"[red]error:[/] {exc}", highlight=False)
            code = 1
        finally:
            signals.stopping = True
            if sup.processes:
                console.print("Stopping (press Ctrl-C again to kill)…")
                sup.stop_all()
                console.print("Stopped.")
    return code
