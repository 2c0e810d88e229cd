"""How a process authenticates to NATS and encrypts the connection, and how
many replicas its streams get — from ``CXLOOP_NATS_*`` variables, for every
NATS client of the suite (services, their relay processes, the CLI).

One authentication method at a time (the server accepts one per user):

=============================== ============================================
``CXLOOP_NATS_USER`` + ``_PASSWORD`` user and password
``CXLOOP_NATS_TOKEN``           a token (``authorization { token: … }``)
``CXLOOP_NATS_CREDS``           a ``.creds`` file (JWT + NKey seed;
                                decentralised auth, NGS/Synadia, nsc)
``CXLOOP_NATS_NKEY_SEED``       a file holding an NKey seed (``SU…``)
=============================== ============================================

TLS: ``CXLOOP_NATS_TLS_CA`` (CA bundle that signed the server's certificate;
setting it, or using a ``tls://`` URL, turns TLS on), and for servers that
verify clients (``verify: true``) ``CXLOOP_NATS_TLS_CERT`` + ``_KEY``;
``CXLOOP_NATS_TLS_HOSTNAME`` when the certificate names another host than
the URL. Credentials inside the URL (``nats://user:pass@host``) work too.

``CXLOOP_NATS_STREAM_REPLICAS``: replicas of the streams a service creates
(1 by default; 3 on a 3-node JetStream cluster, as the production overlay
sets). An existing stream keeps the replicas it has unless this is set —
an operator's ``nats stream edit --replicas`` is never silently undone.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxloop_libs.config import ConfigError

_FILES = {
    "creds_file": "CXLOOP_NATS_CREDS",
    "nkey_seed_file": "CXLOOP_NATS_NKEY_SEED",
    "tls_ca_file": "CXLOOP_NATS_TLS_CA",
    "tls_cert_file": "CXLOOP_NATS_TLS_CERT",
    "tls_key_file": "CXLOOP_NATS_TLS_KEY",
}


@dataclass(frozen=True, slots=True)
class NatsConnectionSettings:
    user: str = ""
    password: str = ""
    token: str = ""
    creds_file: str = ""
    nkey_seed_file: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_hostname: str = ""
    # None: not configured — create streams with 1, leave existing ones alone.
    stream_replicas: int | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, who: str = "nats"
    ) -> NatsConnectionSettings:
        """Read and check the variables; a ConfigError names each bad one."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        problems: list[str] = []
        values: dict[str, Any] = {
            "user": get("CXLOOP_NATS_USER"),
            "password": env.get("CXLOOP_NATS_PASSWORD", ""),
            "token": get("CXLOOP_NATS_TOKEN"),
            "tls_hostname": get("CXLOOP_NATS_TLS_HOSTNAME"),
        }
        for field, var in _FILES.items():
            path = get(var)
            if path and not Path(path).is_file():
                problems.append(f"{var}: no such file: {path}")
            values[field] = path
        methods = [
            n
            for n, on in (
                ("CXLOOP_NATS_USER", values["user"]),
                ("CXLOOP_NATS_TOKEN", values["token"]),
                ("CXLOOP_NATS_CREDS", values["creds_file"]),
                ("CXLOOP_NATS_NKEY_SEED", values["nkey_seed_file"]),
            )
            if on
        ]
        if len(methods) > 1:
            problems.append(
                f"{', '.join(methods)}: set one NATS authentication method, not several"
            )
        if values["user"] and not values["password"]:
            problems.append("CXLOOP_NATS_PASSWORD: required with CXLOOP_NATS_USER")
        if bool(values["tls_cert_file"]) != bool(values["tls_key_file"]):
            problems.append("CXLOOP_NATS_TLS_CERT and CXLOOP_NATS_TLS_KEY: set both or neither")
        replicas = get("CXLOOP_NATS_STREAM_REPLICAS")
        if replicas:
            try:
                n = int(replicas)
            except ValueError:
                n = 0
            if not 1 <= n <= 5:
                problems.append("CXLOOP_NATS_STREAM_REPLICAS: a whole number from 1 to 5")
            values["stream_replicas"] = n
        if problems:
            raise ConfigError(who, problems)
        return cls(**values)

    @property
    def tls_on(self) -> bool:
        return bool(self.tls_ca_file or self.tls_cert_file)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca_file or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_cert_file:
            ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return ctx

    def connect_options(self, servers: list[str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` (auth and TLS only)."""
        opts: dict[str, Any] = {}
        if self.user:
            opts["user"], opts["password"] = self.user, self.password
        elif self.token:
            opts["token"] = self.token
        elif self.creds_file:
            opts["user_credentials"] = self.creds_file
        elif self.nkey_seed_file:
            opts["nkeys_seed"] = self.nkey_seed_file
        tls_url = any(s.strip().startswith("tls://") for s in servers or [])
        if self.tls_on or tls_url:
            opts["tls"] = self.ssl_context()
            if self.tls_hostname:
                opts["tls_hostname"] = self.tls_hostname
        return opts


def nats_connect_options(url: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``servers`` plus auth and TLS for a one-off ``nats.connect(**…)`` (CLI, tools)."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    return {"servers": servers, **NatsConnectionSettings.from_env(environ).connect_options(servers)}
