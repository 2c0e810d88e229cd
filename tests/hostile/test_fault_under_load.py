"""Faults under steady load (issue 10, "Prove it"): identity and the gateway
as real processes on a nats-server this test owns; while a loader posts
batches through the gateway, identity is SIGKILLed (and restarted) and NATS
is paused (SIGSTOP) for 10 s. No answer is a 5xx other than 503; the loader
retries each 503 with the same messageIds, as SDKs do; at the end every
accepted event is applied by identity exactly once (interaction counts)."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_cli.suite import plan_suite, suite_specs
from cxloop_cli.supervisor import Supervisor
from cxloop_testing.gateway_process import nats_paused
from cxloop_testing.infra import eventually, free_port, start_embedded_nats

pytestmark = pytest.mark.integration

USERS = [f"fault-user-{i}" for i in range(8)]
BATCH = 4
STALL_S = 10.0


class Loader(threading.Thread):
    """Posts a batch every 50 ms; a 503 (or a refused connection) is retried
    with the same messageIds before anything new is sent."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.accepted: Counter[str] = Counter()  # user -> events accepted
        self.statuses: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self.pending: list[dict[str, object]] | None = None
        self.n = 0

    def next_batch(self) -> list[dict[str, object]]:
        batch = []
        for _ in range(BATCH):
            user = USERS[self.n % len(USERS)]
            batch.append(
                {"type": "track", "userId": user, "event": "Load", "messageId": f"f-{self.n}"}
            )
            self.n += 1
        return batch

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=("dev", ""), timeout=15) as http:
            while not (self.stop.is_set() and self.pending is None):
                batch = self.pending or self.next_batch()
                try:
                    r = http.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError:
                    self.pending = batch
                    time.sleep(0.2)
                    continue
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    body = r.json()
                    if body["accepted"] != len(batch):
                        self.unexpected.append(r.text)
                    self.accepted.update(str(e["userId"]) for e in batch)
                    self.pending = None
                elif r.status_code == 503:
                    self.pending = batch
                    time.sleep(float(r.headers.get("Retry-After", "1")) / 4)
                else:
                    self.unexpected.append(f"{r.status_code} {r.text[:300]}")
                    self.pending = None
                time.sleep(0.05)


async def interaction_count(target: str, user: str) -> int:
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.IdentityServiceStub(ch)
        found = await stub.LookupByIdentifier(
            pb.LookupByIdentifierRequest(
                identifier=idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user)
            ),
            timeout=5,
        )
        p = await stub.GetProfile(pb.GetProfileRequest(customer_id=found.customer_id), timeout=5)
        return int(p.profile.interaction_count)


async def caught_up(url: str) -> bool:
    nc = await nats.connect(url)
    try:
        consumers = await nc.jetstream().consumers_info("GATEWAY")
        return bool(consumers) and all(
            c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers
        )
    finally:
        await nc.close()


@pytest.mark.timeout(240)
def test_identity_killed_and_nats_paused_under_load() -> None:
    server = start_embedded_nats()
    data_dir = Path(tempfile.mkdtemp(prefix="cxloop-fault-"))
    environ = {
        "CXLOOP_GATEWAY_HTTP_PORT": str(free_port()),
        "CXLOOP_IDENTITY_GRPC_PORT": str(free_port()),
        "CXLOOP_GATEWAY_METRICS_PORT": "0",
        "CXLOOP_IDENTITY_METRICS_PORT": "0",
    }
    plans = plan_suite(data_dir, ["identity", "gateway"], environ)
    extra = {
        **environ,
        "CXLOOP_GATEWAY_PUBLISH_TIMEOUT_S": "1",
        "CXLOOP_GATEWAY_ENFORCE_ANALYTICS": "false",
    }
    specs = {s.name: s for s in suite_specs(plans, data_dir, server.url, extra_env=extra)}
    by_name = {p.name: p for p in plans}
    sup = Supervisor(log_dir=data_dir / "logs", output=None, stop_timeout=5)
    loader = Loader(by_name["gateway"].address)
    try:
        for name in ("identity", "gateway"):
            sup.start(specs[name])
        sup.wait_ready(timeout=90)
        loader.start()
        time.sleep(2)
        os.kill(sup.get("identity").pid, signal.SIGKILL)
        time.sleep(2)
        sup.get("identity").stopping = True  # it was killed on purpose
        sup.start(specs["identity"])
        sup.wait_ready({"identity": specs["identity"].ready_check}, timeout=60)  # type: ignore[dict-item]
        with nats_paused(server):
            time.sleep(STALL_S)
        time.sleep(3)
        loader.stop.set()
        loader.join(timeout=60)
        assert not loader.is_alive(), "the loader could not finish its retries"
        assert loader.unexpected == []
        assert set(loader.statuses) <= {200, 503}, loader.statuses
        assert loader.statuses[503] >= 1, "the stall was never seen"
        assert sup.get("gateway").returncode is None, "the gateway died"

        asyncio.run(eventually(lambda: caught_up(server.url), timeout=90))
        target = by_name["identity"].address
        counts = {u: asyncio.run(interaction_count(target, u)) for u in USERS}
        assert counts == {u: loader.accepted[u] for u in USERS}
    finally:
        loader.stop.set()
        sup.stop_all()
        server.stop()
