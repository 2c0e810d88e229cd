"""gRPC edge of the retention policy (``cxloop.consent.v1.RetentionService``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import grpc
from cxloop.consent.v1 import retention_service_pb2 as pb
from cxloop.consent.v1 import retention_service_pb2_grpc as pb_grpc

from consent.service_layer.handlers import ConsentHandlers
from consent.service_layer.retention import RetentionPolicies
from cxloop_libs.audit.actor import actor_from_metadata
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, Unavailable


class RetentionServicer(pb_grpc.RetentionServiceServicer):
    def __init__(
        self,
        db: Database,
        policies: RetentionPolicies,
        handlers: ConsentHandlers,
        *,
        is_ready: Callable[[], bool],
        after_commit: Callable[[], None],
        token_names: Mapping[str, str],
    ) -> None:
        self.db = db
        self.policies = policies
        self.handlers = handlers
        self.is_ready = is_ready
        self.after_commit = after_commit
        self.token_names = token_names

    def _require_ready(self) -> None:
        if not self.is_ready() or not self.handlers.is_ready:
            raise Unavailable("consent database is not ready yet")

    async def GetRetentionPolicy(
        self, request: pb.GetRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRetentionPolicyResponse:
        self._require_ready()
        policy = await self.db.in_transaction(self.policies.current)
        return pb.GetRetentionPolicyResponse(policy=policy.to_proto())

    async def SetRetentionPolicy(
        self, request: pb.SetRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetRetentionPolicyResponse:
        if not request.category_days and not request.purpose_days:
            raise InvalidArgument("category_days", "name at least one period to change")
        if len(request.actor) > 100:
            raise InvalidArgument("actor", "at most 100 characters")
        self._require_ready()
        caller = actor_from_metadata(context.invocation_metadata(), self.token_names).name
        actor = request.actor or caller
        categories, purposes = dict(request.category_days), dict(request.purpose_days)
        known = frozenset(self.handlers.catalogue.keys())
        policy = await self.db.in_transaction(
            lambda s: self.policies.change(
                s, categories, purposes, known_purposes=known, actor=actor
            )
        )
        self.after_commit()
        return pb.SetRetentionPolicyResponse(policy=policy.to_proto())
