"""Wires the feedback service. Its capabilities come with their own issue; until
then it boots, serves gRPC health and reflection, provisions its stream, and
answers UNIMPLEMENTED for every FeedbackService RPC."""

from __future__ import annotations

from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc

from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from feedback.config import FeedbackSettings


async def bootstrap(settings: FeedbackSettings | None = None) -> ServiceRuntime:
    settings = settings or FeedbackSettings.from_env()
    runtime = base_runtime(settings)
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        # The generated base servicer answers UNIMPLEMENTED: an honest contract.
        [(pb_grpc.add_FeedbackServiceServicer_to_server, pb_grpc.FeedbackServiceServicer())],
        [pb.DESCRIPTOR.services_by_name["FeedbackService"].full_name],
    )
    return runtime
