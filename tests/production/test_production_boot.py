"""The suite in production mode, configured only by the deploy files.

Every cxloop process that docker compose, and then the production Kubernetes
overlay, declares is started as a process with ``CXLOOP_ENV=production`` and
the environment that file gives it — read from the file, not copied here —
against real PostgreSQL (a fresh database per service) and real NATS. Then a
smoke flow: a Segment batch through the gateway with a real write key, the
profile resolved, a consent recorded and checked over authenticated gRPC, an
erasure completed by every participant.

Only placement is changed, and only as a rewrite of what the file says:
hostnames of the compose network / cluster become this machine's addresses,
fixed ports become free ones (tests run in parallel), the database URLs point
at fresh databases, the OTLP endpoint at a stub collector. A variable the file
forgets is not added, so a service that needs it exits and the test fails
(that is how CXLOOP_MASTER_KEY missing from identity went unnoticed before).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cpb_grpc
from cxloop.consent.v1 import events_pb2 as cepb
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc

from cxloop_cli.probes import grpc_ready, http_ready
from cxloop_cli.suite import START_ORDER
from cxloop_cli.supervisor import ProcessSpec, Supervisor
from cxloop_libs.config import database_url_secret
from cxloop_libs.grpcx.client import client_channel
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_testing import deploy, infra
from cxloop_testing.certs import TestCA
from cxloop_testing.infra import eventually
from cxloop_testing.otlp import OtlpCollectorStub

# Seven processes started and migrated per boot; generous on a loaded CI machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SOURCES = ("compose", "k8s-prod")


def generated_secrets() -> dict[str, str]:
    """What an operator puts in deploy/compose/.env or the cxloop-secrets Secret."""
    token = secrets.token_hex(24)
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "CXLOOP_PII_HASH_KEY": secrets.token_hex(32),
        "CXLOOP_GRPC_TOKENS": f"cxloop:{token}",
        "CXLOOP_GRPC_CLIENT_TOKEN": token,
        "CXLOOP_GATEWAY_WRITE_KEYS": f"{secrets.token_hex(16)}=web",
        # On one line with literal \n, as deploy/README.md tells operators.
        "CXLOOP_CONSENT_SIGNING_KEY": pem.replace("\n", "\\n"),
        "CXLOOP_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "CXLOOP_NATS_PASSWORD": secrets.token_hex(16),
    }


def declared_env(source: str, values: dict[str, str]) -> dict[str, dict[str, str]]:
    if source == "compose":
        return deploy.compose_service_env(values)
    docs = deploy.kustomize(deploy.K8S_OVERLAYS / "prod")
    return deploy.k8s_service_env(docs, {**values, **k8s_database_urls(docs)})


def k8s_database_urls(docs: list[dict[str, object]]) -> dict[str, str]:
    """The Secret's database URLs as an operator would fill them (placeholders
    here; the rewrite points them at the test's databases)."""
    return {
        database_url_secret(s): f"postgresql://{s}:pw@pg-rw.cxloop.svc:5432/{s}"
        for s, _, _ in deploy.cxloop_containers(docs)  # type: ignore[arg-type]
    }


@dataclass
class Placement:
    """Where each process runs on this machine."""

    ports: dict[str, int]
    metrics: dict[str, int]
    nats_url: str
    nats_ca: str
    databases: dict[str, str]
    otlp: str
    data_dir: str

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}" if service in self.ports else "127.0.0.1:1"


def place(service: str, env: dict[str, str], p: Placement) -> dict[str, str]:
    """The file's environment with addresses rewritten for this machine; no
    variable dropped, only the ports this process binds added."""
    out = dict(env)
    for name, value in env.items():
        if name == "CXLOOP_NATS_URL":
            scheme = "tls" if value.startswith("tls://") else "nats"
            out[name] = ",".join(
                f"{scheme}://{u.split('://', 1)[1]}" for u in p.nats_url.split(",")
            )
        elif name == "CXLOOP_NATS_TLS_CA":
            out[name] = p.nats_ca
        elif name.endswith("_GRPC_TARGET"):
            peer = name.removeprefix("CXLOOP_").removesuffix("_GRPC_TARGET").lower()
            out[name] = p.target(peer)
        elif name.endswith("_DATABASE_URL"):
            assert value.startswith("postgresql"), f"{service}: {name} is not PostgreSQL: {value}"
            owner = name.removeprefix("CXLOOP_").removesuffix("_DATABASE_URL").lower()
            out[name] = p.databases[owner]
        elif name == "OTEL_EXPORTER_OTLP_ENDPOINT":
            out[name] = p.otlp
        elif name == "CXLOOP_DATA_DIR":
            out[name] = p.data_dir
        elif name in ("CXLOOP_GRPC_PORT", f"CXLOOP_{service.upper()}_GRPC_PORT"):
            out[name] = str(p.ports[service])
        elif name in ("CXLOOP_GATEWAY_HTTP_PORT",):
            out[name] = str(p.ports[service])
    prefix = f"CXLOOP_{service.upper()}_"
    if service == "gateway":
        out["CXLOOP_GATEWAY_HTTP_PORT"] = str(p.ports[service])
    else:
        out[prefix + "GRPC_PORT"] = str(p.ports[service])
    out[prefix + "METRICS_PORT"] = str(p.metrics[service])
    # What a container has besides its declared environment.
    out["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    out["HOME"] = p.data_dir
    return out


class NatsAsDeclared:
    """The NATS the declared environment expects: user/password when it sets
    CXLOOP_NATS_USER, TLS (a test CA) when it sets CXLOOP_NATS_TLS_CA or a
    tls:// URL, a 3-node JetStream cluster when CXLOOP_NATS_STREAM_REPLICAS > 1."""

    def __init__(self, declared: dict[str, dict[str, str]], workdir: Path) -> None:
        def one(name: str) -> str:
            values = {env.get(name, "") for env in declared.values()}
            assert len(values) == 1, f"services disagree on {name}: {sorted(values)}"
            return values.pop()

        self.user, self.password = one("CXLOOP_NATS_USER"), one("CXLOOP_NATS_PASSWORD")
        self.tls = bool(one("CXLOOP_NATS_TLS_CA")) or one("CXLOOP_NATS_URL").startswith("tls://")
        self.replicas = int(one("CXLOOP_NATS_STREAM_REPLICAS") or 1)
        self.ca_file = ""
        self.args: list[str] = []
        self.client_env: dict[str, str] = {}
        if self.user:
            self.args += ["--user", self.user, "--pass", self.password]
            self.client_env |= {
                "CXLOOP_NATS_USER": self.user,
                "CXLOOP_NATS_PASSWORD": self.password,
            }
        if self.tls:
            ca = TestCA(workdir / "nats-ca")
            cert = ca.issue("nats", hosts=("127.0.0.1", "localhost"))
            self.ca_file = str(ca.cert)
            self.args += ["--tls", "--tlscert", str(cert.cert), "--tlskey", str(cert.key)]
            self.client_env["CXLOOP_NATS_TLS_CA"] = self.ca_file
        self._stop: list[object] = []

    def start(self) -> str:
        if self.replicas > 1:
            cluster = infra.start_jetstream_cluster(
                self.replicas, args=tuple(self.args), client_env=self.client_env
            )
            self._stop.append(cluster)
            return cluster.url
        if not self.args:
            url = infra.nats_url()
            asyncio.run(infra.reset_streams(url))
            return url
        node = infra.start_embedded_nats(args=tuple(self.args))
        self._stop.append(node)
        return node.url

    def stop(self) -> None:
        for thing in self._stop:
            thing.stop()  # type: ignore[attr-defined]


@dataclass
class Suite:
    source: str
    values: dict[str, str]
    env: dict[str, dict[str, str]]
    gateway_url: str
    targets: dict[str, str]
    # The last log lines of a service, for failure messages.
    tail: Callable[[str], str]

    @property
    def write_key(self) -> str:
        return self.values["CXLOOP_GATEWAY_WRITE_KEYS"].split("=", 1)[0]

    @property
    def token(self) -> str:
        return self.values["CXLOOP_GRPC_CLIENT_TOKEN"]


@pytest.fixture(params=SOURCES)
def suite(request: pytest.FixtureRequest) -> Iterator[Suite]:
    source: str = request.param
    admin = infra.postgres_admin_url()
    if admin is None:
        if infra.in_ci():
            pytest.fail("PostgreSQL is required in CI")
        pytest.skip("production boot needs PostgreSQL")
    values = generated_secrets()
    declared = declared_env(source, values)
    assert {"gateway", "identity", "consent"} <= set(declared), sorted(declared)
    for service, env in declared.items():
        assert env.get("CXLOOP_ENV") == "production", f"{source}: {service} not in production mode"
    data_dir = tempfile.mkdtemp(prefix=f"cxloop-prod-{source}-")
    # A NATS as the file expects it: credentials, TLS, a cluster for
    # replicated streams — so a file that gets one of them wrong fails here.
    nats_server = NatsAsDeclared(declared, Path(data_dir))
    collector = OtlpCollectorStub().start()
    order = [s for s in START_ORDER if s in declared] + sorted(set(declared) - set(START_ORDER))
    order = [s for s in order if s != "gateway"] + ["gateway"]
    with contextlib.ExitStack() as stack:
        stack.callback(collector.stop)
        nats_url = nats_server.start()
        stack.callback(nats_server.stop)
        owners = {
            name.removeprefix("CXLOOP_").removesuffix("_DATABASE_URL").lower()
            for env in declared.values()
            for name in env
            if name.endswith("_DATABASE_URL")
        }
        databases = {
            o: stack.enter_context(infra.fresh_postgres_database(admin)) for o in sorted(owners)
        }
        names = sorted(declared)
        free = infra.free_ports(2 * len(names))
        placement = Placement(
            ports=dict(zip(names, free[: len(names)], strict=True)),
            metrics=dict(zip(names, free[len(names) :], strict=True)),
            nats_url=nats_url,
            nats_ca=nats_server.ca_file,
            databases=databases,
            otlp=collector.env()["OTEL_EXPORTER_OTLP_ENDPOINT"],
            data_dir=data_dir,
        )
        sup = Supervisor(log_dir=Path(data_dir) / "logs", output=None)
        stack.callback(sup.stop_all)
        checks = {}
        for service in order:
            env = place(service, declared[service], placement)
            target = placement.target(service)
            check = (
                http_ready(f"http://{target}/readyz")
                if service == "gateway"
                else grpc_ready(target)
            )
            checks[service] = check
            sup.start(
                ProcessSpec(
                    name=service,
                    argv=[sys.executable, "-m", service],
                    env=env,
                    ready_check=check,
                    inherit_env=False,
                )
            )
        try:
            sup.wait_ready(checks, timeout=240)
        except Exception as exc:
            logs = {s: "\n".join(sup.last_lines(s, 15)) for s in order if sup.last_lines(s, 15)}
            pytest.fail(f"{source}: the suite did not become ready: {exc}\n{logs}")
        yield Suite(
            source=source,
            values=values,
            env=declared,
            gateway_url=f"http://{placement.target('gateway')}",
            targets={s: placement.target(s) for s in declared},
            tail=lambda s: "\n".join(sup.last_lines(s, 30)),
        )


async def _retry_unavailable(call, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Health turns SERVING before a service's database is migrated; until
    then it answers UNAVAILABLE, and a client retries."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_production_suite_from_the_deploy_files_serves_the_smoke_flow(suite: Suite) -> None:
    hasher = IdentifierHasher(suite.values["CXLOOP_PII_HASH_KEY"].encode())
    user, email = f"u-{uuid.uuid4().hex[:10]}", f"Prod.{uuid.uuid4().hex[:8]}@Example.com"

    # 1. Segment batch through the gateway with the operator's write key.
    batch = {
        "batch": [
            {"type": "track", "userId": user, "event": "Signed Up", "messageId": uuid.uuid4().hex},
            {
                "type": "identify",
                "userId": user,
                "messageId": uuid.uuid4().hex,
                "traits": {"email": email},
            },
        ]
    }
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=10, trust_env=False) as http:
        refused = await http.post("/v1/batch", json=batch, auth=("dev", ""))
        assert refused.status_code == 401, "the development write key works in production"
        r = await http.post("/v1/batch", json=batch, auth=(suite.write_key, ""))
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 2

    # 2. The profile, resolved by identity, read over authenticated gRPC.
    async with client_channel(suite.targets["identity"], token=suite.token) as ich:
        identity = ipb_grpc.IdentityServiceStub(ich)
        async with grpc.aio.insecure_channel(suite.targets["identity"]) as anonymous:
            with pytest.raises(grpc.aio.AioRpcError) as no_token:
                await ipb_grpc.IdentityServiceStub(anonymous).LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user)
                    ),
                    timeout=5,
                )
            assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED

        async def linked() -> ipb.Profile | None:
            try:
                found = await identity.LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user)
                    ),
                    timeout=5,
                )
                got = await identity.GetProfile(
                    ipb.GetProfileRequest(customer_id=found.customer_id), timeout=5
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    return None
                raise
            hashes = {i.hash for i in got.profile.identifiers}
            return got.profile if hasher.hash(IdType.EMAIL, email) in hashes else None

        profile = await eventually(linked, timeout=60, interval=0.25)
        cid = profile.customer_id
        assert profile.interaction_count == 2

        # 3. A consent recorded and checked over authenticated gRPC.
        async with client_channel(suite.targets["consent"], token=suite.token) as cch:
            consent = cpb_grpc.ConsentServiceStub(cch)
            await _retry_unavailable(
                lambda: consent.RecordConsent(
                    cpb.RecordConsentRequest(
                        customer_id=cid,
                        purpose="marketing_email",
                        decision=cepb.CONSENT_DECISION_GRANTED,
                        notice_version="1",
                        channel=cepb.CONSENT_CHANNEL_WEB_FORM,
                    ),
                    timeout=5,
                )
            )
            check = await consent.Check(
                cpb.CheckRequest(customer_id=cid, purpose="marketing_email"), timeout=5
            )
            assert check.allowed and check.known

            # 4. An erasure, answered by every participant.
            opened = await consent.OpenPrivacyRequest(
                cpb.OpenPrivacyRequestRequest(
                    customer_id=cid,
                    kind=cepb.PRIVACY_REQUEST_KIND_ERASURE,
                    jurisdiction=cepb.JURISDICTION_GDPR,
                    verification_status=cpb.VERIFICATION_STATUS_VERIFIED,
                    verification_method="logged_in_session",
                ),
                timeout=5,
            )

            async def completed() -> cpb.GetPrivacyRequestStatusResponse | None:
                s = await consent.GetPrivacyRequestStatus(
                    cpb.GetPrivacyRequestStatusRequest(request_id=opened.request_id), timeout=5
                )
                if s.status == cpb.PRIVACY_REQUEST_STATUS_COMPLETED:
                    return s
                # Said when time runs out: who has not answered, and their logs.
                pending = [
                    p.participant
                    for p in s.participants
                    if p.state == cpb.PARTICIPANT_STATE_PENDING
                ]
                raise AssertionError(
                    f"not answered: {pending}\n"
                    + "\n".join(f"--- {p}:\n{suite.tail(p)}" for p in pending)
                )

            done = await eventually(completed, timeout=60, interval=0.25)
            participants = {p.participant for p in done.participants}
            assert {"consent", "identity", "gateway"} <= participants
            # Exactly the participants the deploy file names for consent,
            # each of them deployed and answering.
            named = suite.env["consent"].get("CXLOOP_CONSENT_PRIVACY_PARTICIPANTS")
            if named:
                expected = {n.strip() for n in named.split(",") if n.strip()}
                assert participants == expected, (participants, expected)
                assert expected <= set(suite.env), f"not deployed: {expected - set(suite.env)}"

        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await identity.LookupByIdentifier(
                ipb.LookupByIdentifierRequest(
                    identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user)
                ),
                timeout=5,
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
