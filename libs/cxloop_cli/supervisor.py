"""Start, watch and stop a set of local processes: the suite in `cxloop up` and in tests.

Each child gets its own session so a Ctrl-C in the terminal reaches only the
supervisor, which then stops children in reverse start order (gateway before the
services, services before NATS) instead of all of them dying at once mid-request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

ReadyCheck = Callable[[], bool]
"""Returns True once the process serves; may raise, which counts as not ready yet."""

OutputSink = Callable[[str, str], None]
"""Receives (process name, one line of its output without the newline)."""

TAIL_LINES = 40


class SupervisorError(Exception):
    """Base class of the errors a supervisor reports."""


class ProcessExitedError(SupervisorError):
    """A supervised process ended while it was expected to run."""

    def __init__(self, name: str, returncode: int, last_lines: Sequence[str]) -> None:
        self.name = name
        self.returncode = returncode
        self.last_lines = list(last_lines)
        super().__init__(f"{name} exited with code {returncode}")


class ReadinessTimeoutError(SupervisorError):
    """Some processes did not become ready in time."""

    def __init__(self, pending: Mapping[str, str], timeout: float) -> None:
        self.pending = dict(pending)
        details = "; ".join(f"{n} ({why})" if why else n for n, why in self.pending.items())
        super().__init__(f"not ready after {timeout:.0f} s: {details}")


@dataclass(frozen=True)
class ProcessSpec:
    """What to run. ``env`` is laid over the supervisor's environment unless
    ``inherit_env`` is False, so tests can inject ports and URLs per process."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_check: ReadyCheck | None = None
    cwd: Path | None = None
    inherit_env: bool = True


@dataclass
class SupervisedProcess:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    readers: list[threading.Thread] = field(default_factory=list)
    log_file: IO[str] | None = None
    log_lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()


_console_lock = threading.Lock()


def print_prefixed(name: str, line: str, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    with _console_lock:
        out.write(f"[{name}] {line}\n")
        out.flush()


class Supervisor:
    """Owns child processes: pipes their output, checks readiness, stops them in order.

    Output lines go to ``output`` prefixed with ``[name] `` (by default) and, when
    ``log_dir`` is set, unprefixed to ``<log_dir>/<name>.log`` so each file stays
    the service's own JSON log, readable with ``jq``.
    """

    def __init__(
        self,
        log_dir: Path | None = None,
        output: OutputSink | None = print_prefixed,
        stop_timeout: float = 10.0,
    ) -> None:
        self.log_dir = log_dir
        self.output = output
        self.stop_timeout = stop_timeout
        self._procs: dict[str, SupervisedProcess] = {}
        self._force = threading.Event()

    # -- starting ------------------------------------------------------------

    def start(self, spec: ProcessSpec) -> SupervisedProcess:
        existing = self._procs.get(spec.name)
        if existing is not None and existing.returncode is None:
            raise SupervisorError(f"{spec.name} is already running (pid {existing.pid})")
        env = dict(os.environ) if spec.inherit_env else {}
        # Children write to a pipe; without this Python buffers their logs in 8 KiB blocks.
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(spec.env)
        log_path: Path | None = None
        log_file: IO[str] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{spec.name}.log"
            log_file = log_path.open("a", encoding="utf-8")
        try:
            popen = subprocess.Popen(
                list(spec.argv),
                env=env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            if log_file is not None:
                log_file.close()
            raise SupervisorError(f"cannot start {spec.name} ({spec.argv[0]}): {exc}") from exc
        # Registered before anything else can fail, so stop_all() always reaches it.
        proc = SupervisedProcess(spec=spec, popen=popen, log_path=log_path, log_file=log_file)
        self._procs[spec.name] = proc
        for pipe in (popen.stdout, popen.stderr):
            assert pipe is not None
            reader = threading.Thread(
                target=self._pump, args=(proc, pipe), name=f"{spec.name}-output", daemon=True
            )
            reader.start()
            proc.readers.append(reader)
        return proc

    def _pump(self, proc: SupervisedProcess, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with proc.log_lock:
                    proc.tail.append(line)
                    if proc.log_file is not None:
                        proc.log_file.write(line + "\n")
                        proc.log_file.flush()
                if self.output is not None:
                    self.output(proc.name, line)

    # -- looking -------------------------------------------------------------

    @property
    def processes(self) -> list[SupervisedProcess]:
        return list(self._procs.values())

    def get(self, name: str) -> SupervisedProcess:
        return self._procs[name]

    def last_lines(self, name: str, n: int = 20) -> list[str]:
        proc = self._procs[name]
        with proc.log_lock:
            return list(proc.tail)[-n:]

    def check_alive(self) -> None:
        """Raise ProcessExitedError for the first process that ended without being stopped."""
        for proc in self._procs.values():
            code = proc.returncode
            if code is not None and not proc.stopping:
                self._drain(proc)
                raise ProcessExitedError(proc.name, code, self.last_lines(proc.name))

    def exited(self) -> list[SupervisedProcess]:
        """Processes that ended without being stopped (crashed), output drained."""
        out = []
        for proc in self._procs.values():
            if proc.returncode is not None and not proc.stopping:
                self._drain(proc)
                out.append(proc)
        return out

    def restart(self, name: str) -> SupervisedProcess:
        """Start an ended process again with the same spec (and log file)."""
        proc = self._procs[name]
        if proc.returncode is None:
            raise SupervisorError(f"{name} is still running (pid {proc.pid})")
        self._drain(proc)
        return self.start(proc.spec)

    def wait_ready(
        self,
        checks: Mapping[str, ReadyCheck] | None = None,
        timeout: float = 60.0,
        interval: float = 0.1,
    ) -> None:
        """Block until every check passes. ``checks`` defaults to each started
        spec's ``ready_check``. Fails fast when any supervised process exits."""
        if checks is None:
            checks = {
                p.name: p.spec.ready_check for p in self._procs.values() if p.spec.ready_check
            }
        pending = dict(checks)
        why: dict[str, str] = dict.fromkeys(pending, "")
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            for name, check in list(pending.items()):
                try:
                    ok = check()
                except Exception as exc:
                    ok = False
                    why[name] = str(exc) or type(exc).__name__
                else:
                    if not ok:
                        why[name] = "not ready"
                if ok:
                    del pending[name]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ReadinessTimeoutError({n: why[n] for n in pending}, timeout)
            time.sleep(interval)

    # -- stopping ------------------------------------------------------------

    def force(self) -> None:
        """Skip the remaining grace periods: a second Ctrl-C means kill now."""
        self._force.set()

    def stop(self, name: str, timeout: float | None = None) -> int | None:
        """SIGTERM, wait up to ``timeout`` (default ``stop_timeout``), then SIGKILL the group."""
        proc = self._procs[name]
        proc.stopping = True
        timeout = self.stop_timeout if timeout is None else timeout
        if proc.returncode is None:
            try:
                proc.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while proc.returncode is None and time.monotonic() < deadline:
                if self._force.is_set():
                    break
                try:
                    proc.popen.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
        if proc.returncode is None:
            self._kill_group(proc)
            proc.popen.wait()
        else:
            # The leader is gone; make sure nothing it spawned outlives it.
            self._kill_group(proc)
        self._drain(proc)
        return proc.returncode

    def stop_all(self, timeout: float | None = None) -> dict[str, int | None]:
        """Stop every process, last started first. Returns each exit code."""
        codes: dict[str, int | None] = {}
        for name in reversed(list(self._procs)):
            codes[name] = self.stop(name, timeout)
        return codes

    def _kill_group(self, proc: SupervisedProcess) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _drain(self, proc: SupervisedProcess) -> None:
        for reader in proc.readers:
            reader.join(timeout=2.0)
        with proc.log_lock:
            if proc.log_file is not None and not any(r.is_alive() for r in proc.readers):
                proc.log_file.close()
                proc.log_file = None

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
