"""`cxloop status`: one probe per component, answered in about a second."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cxloop_cli.probes import ProbeResult, grpc_health, http_ok, nats_jetstream
from cxloop_cli.suite import GATEWAY, START_ORDER, plan_service


@dataclass(frozen=True)
class ComponentStatus:
    component: str
    target: str
    result: ProbeResult


def grpc_target(service: str, environ: Mapping[str, str]) -> str:
    override = environ.get(f"CXLOOP_{service.upper()}_GRPC_TARGET")
    if override:
        return override
    return plan_service(service, Path("."), environ).address


def collect_status(
    gateway_url: str,
    nats_monitor_url: str,
    environ: Mapping[str, str] | None = None,
    timeout: float = 1.0,
) -> list[ComponentStatus]:
    env = os.environ if environ is None else environ
    probes: list[tuple[str, str, Callable[[], ProbeResult]]] = []
    probes.append(("nats", nats_monitor_url, lambda: nats_jetstream(nats_monitor_url, timeout)))
    for name in START_ORDER:
        if name == GATEWAY:
            continue
        target = grpc_target(name, env)
        probes.append((name, target, partial(grpc_health, target, timeout)))
    readyz = f"{gateway_url.rstrip('/')}/readyz"
    probes.append((GATEWAY, readyz, lambda: http_ok(readyz, timeout)))
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = [(c, t, pool.submit(fn)) for c, t, fn in probes]
        return [ComponentStatus(c, t, f.result()) for c, t, f in futures]


def render_status(console: Console, rows: list[ComponentStatus]) -> None:
    table = Table(title="cxloop status", title_justify="left")
    for col in ("component", "target", "state", "detail"):
        table.add_column(col)
    for row in rows:
        state = "[green]up[/]" if row.result.up else "[red]down[/]"
        table.add_row(row.component, row.target, state, row.result.detail)
    console.print(table)


def render_backlogs(console: Console, rows: list[dict[str, object]] | None) -> None:
    if rows is None:
        console.print("consumers: NATS unreachable (set --nats-url / CXLOOP_NATS_URL)")
        return
    table = Table(title="consumers", title_justify="left")
    for col in (
        "service",
        "consumer",
        "stream",
        "pending",
        "unacked",
        "redelivered",
        "dead letters",
    ):
        table.add_column(col)
    for r in rows:
        dead = int(str(r["dead_letters"]))
        table.add_row(
            str(r["service"]),
            str(r["consumer"]),
            str(r["stream"]),
            f"{int(str(r['pending'])):,}",
            str(r["unacknowledged"]),
            str(r["redelivered"]),
            f"[red]{dead}[/]" if dead else "0",
        )
    console.print(table)
