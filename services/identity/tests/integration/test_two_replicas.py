"""Two identity replicas on one database (issue 14): a record written
through one reaches the other's real-time candidate index by identity's own
events, and an erasure empties both replicas' memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.domain.matching.model import HouseholdRules
from identity.service_layer.realtime import CandidateIndex
from identity.tests.unit.test_matching_korean_names import typical_model

pytestmark = pytest.mark.integration

HOME = {"street": "마포구 월드컵북로 12길 34", "city": "서울", "postcode": "03971"}


@asynccontextmanager
async def replica(
    nats_url: str, database_url: str, model_file: Path
) -> AsyncIterator[tuple[ServiceRuntime, pb_grpc.IdentityServiceStub]]:
    settings = IdentitySettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        match_model=str(model_file),
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    try:
        assert runtime.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            yield runtime, pb_grpc.IdentityServiceStub(ch)
    finally:
        await runtime.stop()


def index_of(runtime: ServiceRuntime) -> CandidateIndex:
    index = runtime.candidate_index  # type: ignore[attr-defined]
    assert isinstance(index, CandidateIndex)
    return index


def sign_up(email: str, **traits: str) -> pb.ResolveRequest:
    return pb.ResolveRequest(
        identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_EMAIL, value=email)],
        source="web",
        traits={**HOME, **traits},
    )


async def test_a_record_and_its_erasure_reach_the_other_replica(
    clean_nats: str, database_url: str, tmp_path: Path
) -> None:
    model_file = tmp_path / "match-model.json"
    model = replace(typical_model(), household=HouseholdRules(scope="all"))
    model_file.write_text(json.dumps(model.to_dict()))
    async with AsyncExitStack() as stack:
        a, stub_a = await stack.enter_async_context(replica(clean_nats, database_url, model_file))
        b, stub_b = await stack.enter_async_context(replica(clean_nats, database_url, model_file))
        await eventually(lambda: index_of(a).loaded.is_set() and index_of(b).loaded.is_set())

        # Written through A ...
        first = await stub_a.Resolve(
            sign_up("yoonseo@example.com", full_name="조윤서", date_of_birth="1992-04-03"),
            timeout=10,
        )
        # ... a candidate in B's memory, by event.
        await eventually(lambda: len(index_of(b)) == 1, timeout=10)
        # So B links the same woman signing up again with another email.
        second = await stub_b.Resolve(
            sign_up("cho.yoonseo@example.com", full_name="Yoonseo Cho", date_of_birth="920403"),
            timeout=10,
        )
        assert second.customer_id == first.customer_id
        await eventually(lambda: len(index_of(a)) == 2, timeout=10)

        # An erasure (consent's request, whichever replica answers it)
        # leaves neither replica holding her raw values.
        bus = NatsBus(clean_nats, name="consent-test", streams=[stream_for("consent")])
        await bus.connect(10)
        stack.push_async_callback(bus.close)
        await EventPublisher(bus, source="/test").publish_many(
            [
                PendingEvent.of(
                    ev.ERASURE_REQUESTED,
                    consent_events.ErasureRequested(
                        request_id="r-14", customer_id=first.customer_id
                    ),
                )
            ]
        )
        await eventually(lambda: len(index_of(a)) == 0 and len(index_of(b)) == 0, timeout=10)
