"""Wires the consent service. Its capabilities come with their own issue; until
then it boots, serves gRPC health and reflection, provisions its stream, and
answers UNIMPLEMENTED for every ConsentService RPC."""

from __future__ import annotations

from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc

from consent.config import ConsentSettings
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.runtime import ServiceRuntime, base_runtime


async def bootstrap(settings: ConsentSettings | None = None) -> ServiceRuntime:
    settings = settings or ConsentSettings.from_env()
    runtime = base_runtime(settings)
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        # The generated base servicer answers UNIMPLEMENTED: an honest contract.
        [(pb_grpc.add_ConsentServiceServicer_to_server, pb_grpc.ConsentServiceServicer())],
        [pb.DESCRIPTOR.services_by_name["ConsentService"].full_name],
    )
    return runtime
