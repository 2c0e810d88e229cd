"""gRPC bootstrap shared by every service: ``GrpcServer`` for serving,
``client_channel`` and ``health_check`` for calling.

Named ``grpcx`` so it never shadows the ``grpc`` package.
"""

from cxloop_libs.grpcx.client import (
    DEFAULT_DEADLINE_S,
    bearer_token_interceptors,
    client_channel,
    health_check,
)
from cxloop_libs.grpcx.interceptors import CxServerInterceptor, status_of
from cxloop_libs.grpcx.server import (
    DEFAULT_UNAUTHENTICATED_METHODS,
    GrpcServer,
    grpc_server_from_settings,
)

__all__ = [
    "DEFAULT_DEADLINE_S",
    "DEFAULT_UNAUTHENTICATED_METHODS",
    "CxServerInterceptor",
    "GrpcServer",
    "bearer_token_interceptors",
    "client_channel",
    "grpc_server_from_settings",
    "health_check",
    "status_of",
]
