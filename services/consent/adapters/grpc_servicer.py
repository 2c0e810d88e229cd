"""gRPC edge of the consent service: translate, call a handler, translate back."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from consent.domain.ledger import Proof, RecordRequest
from consent.service_layer import messages
from consent.service_layer.handlers import ConsentHandlers, Recorded
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.proof import ProofHasher
from cxloop_libs.consent.rules import Decision
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, Unavailable


def _when(t: Timestamp, has: bool) -> datetime | None:
    return t.ToDatetime(UTC) if has else None


class ConsentServicer(pb_grpc.ConsentServiceServicer):
    def __init__(
        self,
        db: Database,
        handlers: ConsentHandlers,
        hasher: ProofHasher,
        *,
        is_ready: Callable[[], bool],
        after_commit: Callable[[], None],
        view: ConsentProjection | None = None,
        view_ready: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.hasher = hasher
        self.is_ready = is_ready
        self.after_commit = after_commit
        # The service's own in-memory view: CheckBatch answers from it once it
        # is loaded (a database round trip per batch cannot hold 10 ms p99).
        self.view = view
        self.view_ready = view_ready

    def _require_ready(self) -> None:
        if not self.is_ready() or not self.handlers.is_ready:
            raise Unavailable("consent database is not ready yet")

    async def Check(
        self, request: pb.CheckRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        self._require_ready()
        cid, purpose = request.customer_id, request.purpose
        (result,) = await self.db.in_transaction(lambda s: self.handlers.check(s, [cid], purpose))
        resp = pb.CheckResponse(allowed=result.reason.allows, reason=int(result.reason))
        if result.state is not None:
            resp.notice_version = str(result.state.notice_version)
            resp.decided_at.CopyFrom(messages.ts(result.state.decided_at))
        return resp

    async def CheckBatch(
        self, request: pb.CheckBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckBatchResponse:
        self._require_ready()
        ids, purpose = list(request.customer_ids), request.purpose
        if self.view is not None and self.view_ready():
            local = self.handlers.check_local(self.view, ids, purpose)
            return pb.CheckBatchResponse(
                verdicts=[
                    pb.ConsentVerdict(
                        customer_id=cid,
                        allowed=reason.allows,
                        reason=int(reason),
                        notice_version=str(version) if version else "",
                    )
                    for cid, reason, version in local
                ]
            )
        results = await self.db.in_transaction(lambda s: self.handlers.check(s, ids, purpose))
        return pb.CheckBatchResponse(
            verdicts=[
                pb.ConsentVerdict(
                    customer_id=r.customer_id,
                    allowed=r.reason.allows,
                    reason=int(r.reason),
                    notice_version=str(r.state.notice_version) if r.state else "",
                )
                for r in results
            ]
        )

    def _proof(self, p: pb.ConsentProof) -> Proof:
        if p.ip_address and p.ip_hash:
            raise InvalidArgument("proof.ip_address", "send the address or its hash, not both")
        if p.user_agent and p.user_agent_hash:
            raise InvalidArgument("proof.user_agent", "send the user agent or its hash, not both")
        return Proof(
            ip_hash=self.hasher.ip(p.ip_address) if p.ip_address else p.ip_hash,
            user_agent_hash=self.hasher.user_agent(p.user_agent)
            if p.user_agent
            else p.user_agent_hash,
            actor=p.actor,
        )

    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordConsentResponse:
        req = RecordRequest(
            customer_id=request.customer_id,
            purpose=request.purpose,
            decision=Decision.from_proto(request.decision),
            notice_version=request.notice_version,
            channel=messages.CHANNEL_FROM_PROTO.get(request.channel),
            proof=self._proof(request.proof),
            decided_at=_when(request.decided_at, request.HasField("decided_at")),
            expires_at=_when(request.expires_at, request.HasField("expires_at")),
            idempotency_key=request.idempotency_key,
        )
        self._require_ready()
        # A concurrent retry with the same idempotency key that commits first
        # makes ours hit the unique key; in_transaction re-runs it, and the
        # re-run answers with the record that won.
        recorded: Recorded = await self.db.in_transaction(lambda s: self.handlers.record(s, req))
        if not recorded.replayed:
            self.after_commit()
            if self.view is not None and recorded.changed is not None:
                self.view.apply_consent_changed(recorded.changed)
        return pb.RecordConsentResponse(
            record_id=recorded.record_id,
            receipt_jws=recorded.receipt_jws,
            recorded_at=messages.ts(recorded.recorded_at),
            conflicts_with_gpc=recorded.gpc_conflict,
        )

    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPreferencesResponse:
        self._require_ready()
        cid = request.customer_id
        subject = await self.db.in_transaction(lambda s: self.handlers.preferences(s, cid))
        catalogue = self.handlers.catalogue
        decided = {s.purpose: s for s in messages.subject_states(subject, catalogue)}
        return pb.GetPreferencesResponse(
            customer_id=cid,
            purposes=[
                decided.get(key) or events_pb2.PurposeState(purpose=key) for key in catalogue.keys()
            ],
        )

    async def ListPurposes(
        self, request: pb.ListPurposesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPurposesResponse:
        self._require_ready()
        return pb.ListPurposesResponse(
            purposes=[messages.purpose(p) for p in self.handlers.catalogue]
        )

    async def GetReceiptKeys(
        self, request: pb.GetReceiptKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReceiptKeysResponse:
        return pb.GetReceiptKeysResponse(jwks_json=json.dumps(self.handlers.signer.jwks()))
