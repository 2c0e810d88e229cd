"""Shared benchmark plumbing: infrastructure, the suite as subprocesses,
results files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxloop_cli.suite import plan_suite, suite_specs
from cxloop_cli.supervisor import Supervisor
from cxloop_testing import infra

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """The machine a result was measured on, with its load when the result
    was written (the benchmark itself counts: 2-4 on 2 cores is a benchmark
    alone, more means other work shared the machine) and, when set,
    ``CXLOOP_BENCH_NOTE`` (e.g. "busy machine: helpers ran tests")."""
    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15m": [round(x, 2) for x in os.getloadavg()],
    }
    note = os.environ.get("CXLOOP_BENCH_NOTE")
    if note:
        out["note"] = note
    return out


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        **data,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1]


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (a
    service's outbox relay runs as a child), read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


@dataclass
class RunningSuite:
    supervisor: Supervisor
    gateway_url: str
    identity_target: str
    nats_url: str
    database: str
    consent_target: str = ""
    # Every gRPC service's address, by name.
    targets: dict[str, str] = field(default_factory=dict)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each service (with its children): the
        difference over a measured phase divided by its requests is CPU per
        request, which a busy machine changes far less than latency."""
        return {p.name: _tree_cpu_seconds(p.pid) for p in self.supervisor.processes}


@contextlib.contextmanager
def running_suite(
    services: list[str], *, extra_env: dict[str, str] | None = None, reset: bool = True
) -> Iterator[RunningSuite]:
    nats_url = infra.nats_url()
    if reset:
        asyncio.run(infra.reset_streams(nats_url))
    if "gateway" in services and "consent" not in services:
        # The gateway is ready once consent's state is loaded (docs/adr/0036):
        # without consent on a fresh NATS it would wait forever.
        services = ["consent", *services]
    data_dir = Path(tempfile.mkdtemp(prefix="cxloop-bench-"))
    environ: dict[str, str] = {"CXLOOP_GATEWAY_HTTP_PORT": str(infra.free_port())}
    for name in services:
        environ[f"CXLOOP_{name.upper()}_METRICS_PORT"] = "0"
        if name != "gateway":
            environ[f"CXLOOP_{name.upper()}_GRPC_PORT"] = str(infra.free_port())
    environ["CXLOOP_LOG_LEVEL"] = "WARNING"
    # As deployed (deploy/compose, deploy/k8s): on PostgreSQL the outbox
    # relay runs in a child process (docs/adr/0023-relay-process.md).
    environ["CXLOOP_OUTBOX_RELAY"] = "process"
    with contextlib.ExitStack() as stack:
        admin = infra.postgres_admin_url()
        database = "sqlite"
        if admin is not None:
            environ["CXLOOP_IDENTITY_DATABASE_URL"] = stack.enter_context(
                infra.fresh_postgres_database(admin)
            )
            database = "postgresql"
        plans = plan_suite(data_dir, services, environ)
        specs = suite_specs(plans, data_dir, nats_url, extra_env={**environ, **(extra_env or {})})
        sup = Supervisor(log_dir=data_dir / "logs", output=None)
        stack.callback(sup.stop_all)
        for spec in specs:
            sup.start(spec)
        sup.wait_ready(timeout=90)
        by_name = {p.name: p for p in plans}
        yield RunningSuite(
            supervisor=sup,
            gateway_url=by_name["gateway"].address if "gateway" in by_name else "",
            identity_target=by_name["identity"].address if "identity" in by_name else "",
            nats_url=nats_url,
            database=database,
            consent_target=by_name["consent"].address if "consent" in by_name else "",
            targets={p.name: p.address for p in plans if p.name != "gateway"},
        )
