"""Wires the loyalty service. Its capabilities come with their own issue; until
then it boots, serves gRPC health and reflection, provisions its stream, and
answers UNIMPLEMENTED for every LoyaltyService RPC."""

from __future__ import annotations

from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc

from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from loyalty.config import LoyaltySettings


async def bootstrap(settings: LoyaltySettings | None = None) -> ServiceRuntime:
    settings = settings or LoyaltySettings.from_env()
    runtime = base_runtime(settings)
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        # The generated base servicer answers UNIMPLEMENTED: an honest contract.
        [(pb_grpc.add_LoyaltyServiceServicer_to_server, pb_grpc.LoyaltyServiceServicer())],
        [pb.DESCRIPTOR.services_by_name["LoyaltyService"].full_name],
    )
    return runtime
