"""Wires the personalization service. Its capabilities come with their own issue; until
then it boots, serves gRPC health and reflection, provisions its stream, and
answers UNIMPLEMENTED for every PersonalizationService RPC."""

from __future__ import annotations

from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc

from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from personalization.config import PersonalizationSettings


async def bootstrap(settings: PersonalizationSettings | None = None) -> ServiceRuntime:
    settings = settings or PersonalizationSettings.from_env()
    runtime = base_runtime(settings)
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        # The generated base servicer answers UNIMPLEMENTED: an honest contract.
        [
            (
                pb_grpc.add_PersonalizationServiceServicer_to_server,
                pb_grpc.PersonalizationServiceServicer(),
            )
        ],
        [pb.DESCRIPTOR.services_by_name["PersonalizationService"].full_name],
    )
    return runtime
