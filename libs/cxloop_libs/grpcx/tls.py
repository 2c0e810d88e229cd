"""TLS for gRPC between services, optionally mutual.

Server (``ServiceSettings`` fields, so ``CXLOOP_<SERVICE>_…`` overrides work):

* ``CXLOOP_GRPC_TLS_CERT`` + ``CXLOOP_GRPC_TLS_KEY``: PEM files; the server
  then accepts TLS only.
* ``CXLOOP_GRPC_TLS_CLIENT_CA``: also require a client certificate signed by
  this CA (mutual TLS); a client without one is refused in the handshake.

Client (every ``client_channel`` and health probe reads them):

* ``CXLOOP_GRPC_TLS_CA``: CA bundle the servers' certificates are checked
  against; setting it turns TLS on for calls.
* ``CXLOOP_GRPC_TLS_CLIENT_CERT`` + ``CXLOOP_GRPC_TLS_CLIENT_KEY``: the
  certificate this process presents (for servers with a client CA).
* ``CXLOOP_GRPC_TLS_SERVER_NAME``: the name to expect in the server's
  certificate when it is not the target's host (tests, IP targets).

Bearer tokens stay on top of TLS: the certificate says which workload calls,
the token which caller (audit logs name it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


@dataclass(frozen=True, slots=True)
class ServerTls:
    cert_file: str
    key_file: str
    client_ca_file: str = ""

    @property
    def mutual(self) -> bool:
        return bool(self.client_ca_file)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(_read(self.key_file), _read(self.cert_file))],
            root_certificates=_read(self.client_ca_file) if self.client_ca_file else None,
            require_client_auth=self.mutual,
        )


def server_tls_problems(cert: str, key: str, client_ca: str) -> list[str]:
    """One line per bad TLS setting of a server, naming the variable."""
    problems = []
    if bool(cert) != bool(key):
        problems.append("CXLOOP_GRPC_TLS_CERT and CXLOOP_GRPC_TLS_KEY: set both or neither")
    if client_ca and not cert:
        problems.append("CXLOOP_GRPC_TLS_CLIENT_CA: needs CXLOOP_GRPC_TLS_CERT and _KEY")
    for var, path in (
        ("CXLOOP_GRPC_TLS_CERT", cert),
        ("CXLOOP_GRPC_TLS_KEY", key),
        ("CXLOOP_GRPC_TLS_CLIENT_CA", client_ca),
    ):
        if path and not Path(path).is_file():
            problems.append(f"{var}: no such file: {path}")
    return problems


@dataclass(frozen=True, slots=True)
class ClientTls:
    ca_file: str
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientTls | None:
        env = os.environ if environ is None else environ
        ca = env.get("CXLOOP_GRPC_TLS_CA", "").strip()
        if not ca:
            return None
        return cls(
            ca_file=ca,
            cert_file=env.get("CXLOOP_GRPC_TLS_CLIENT_CERT", "").strip(),
            key_file=env.get("CXLOOP_GRPC_TLS_CLIENT_KEY", "").strip(),
            server_name=env.get("CXLOOP_GRPC_TLS_SERVER_NAME", "").strip(),
        )

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file),
            private_key=_read(self.key_file) if self.key_file else None,
            certificate_chain=_read(self.cert_file) if self.cert_file else None,
        )

    def options(self) -> tuple[tuple[str, Any], ...]:
        if self.server_name:
            return (("grpc.ssl_target_name_override", self.server_name),)
        return ()
