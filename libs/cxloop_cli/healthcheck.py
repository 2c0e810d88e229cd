"""`python -m cxloop_cli.healthcheck`: the image's HEALTHCHECK.

Finds which service the container runs (``python -m <service>`` as PID 1, or
``CXLOOP_SERVICE``) and asks it: the gateway's ``/healthz`` over HTTP, a gRPC
service's ``grpc.health.v1`` Check (TLS per ``CXLOOP_GRPC_TLS_*``). Exit 0
when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from cxloop_libs.config import GATEWAY_HTTP_PORT, GRPC_PORTS


def running_service(environ: Mapping[str, str], cmdline: list[str]) -> str | None:
    if "-m" in cmdline[:-1]:
        return cmdline[cmdline.index("-m") + 1]
    return environ.get("CXLOOP_SERVICE") or None


def _setting(environ: Mapping[str, str], service: str, field: str) -> str | None:
    return environ.get(f"CXLOOP_{service.upper()}_{field}") or environ.get(f"CXLOOP_{field}")


def check(service: str, environ: Mapping[str, str]) -> tuple[bool, str]:
    from cxloop_cli.probes import grpc_health, http_ok

    if service == "gateway":
        port = environ.get("CXLOOP_GATEWAY_HTTP_PORT", str(GATEWAY_HTTP_PORT))
        result = http_ok(f"http://127.0.0.1:{port}/healthz", timeout=3)
    else:
        port = _setting(environ, service, "GRPC_PORT") or str(GRPC_PORTS.get(service, 0))
        result = grpc_health(f"127.0.0.1:{port}", timeout=3)
    return result.up, f"{service}: {result.detail}"


def main() -> int:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
        cmdline = [p.decode() for p in raw.split(b"\0") if p]
    except OSError:
        cmdline = []
    service = running_service(os.environ, cmdline)
    if not service:
        print("cannot tell which service runs here (set CXLOOP_SERVICE)")
        return 1
    up, detail = check(service, os.environ)
    print(detail)
    return 0 if up else 1


if __name__ == "__main__":
    sys.exit(main())
