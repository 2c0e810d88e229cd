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
from consent.domain.privacy import AnswerState, PrivacyRequest, RequestStatus, Verification
from consent.service_layer import messages
from consent.service_layer.handlers import ConsentHandlers, Recorded
from consent.service_layer.privacy import (
    ESCALATION_TO_PROTO,
    JURISDICTION_FROM_PROTO,
    JURISDICTION_TO_PROTO,
    PrivacyRequests,
)
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.proof import ProofHasher
from cxloop_libs.consent.rules import Decision
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, Unavailable
from cxloop_libs.privacy import RequestKind

STATUS_TO_PROTO = {
    RequestStatus.AWAITING_VERIFICATION: pb.PRIVACY_REQUEST_STATUS_AWAITING_VERIFICATION,
    RequestStatus.IN_PROGRESS: pb.PRIVACY_REQUEST_STATUS_IN_PROGRESS,
    RequestStatus.COMPLETED: pb.PRIVACY_REQUEST_STATUS_COMPLETED,
    RequestStatus.REJECTED: pb.PRIVACY_REQUEST_STATUS_REJECTED,
    RequestStatus.ESCALATED: pb.PRIVACY_REQUEST_STATUS_ESCALATED,
}
VERIFICATION_TO_PROTO = {
    Verification.PENDING: pb.VERIFICATION_STATUS_PENDING,
    Verification.VERIFIED: pb.VERIFICATION_STATUS_VERIFIED,
    Verification.FAILED: pb.VERIFICATION_STATUS_FAILED,
}
VERIFICATION_FROM_PROTO = {int(v): k for k, v in VERIFICATION_TO_PROTO.items()}
ANSWER_TO_PROTO = {
    AnswerState.PENDING: pb.PARTICIPANT_STATE_PENDING,
    AnswerState.DONE: pb.PARTICIPANT_STATE_DONE,
    AnswerState.FAILED: pb.PARTICIPANT_STATE_FAILED,
    AnswerState.NOT_APPLICABLE: pb.PARTICIPANT_STATE_NOT_APPLICABLE,
}


def privacy_status(r: PrivacyRequest) -> pb.GetPrivacyRequestStatusResponse:
    resp = pb.GetPrivacyRequestStatusResponse(
        request_id=r.request_id,
        customer_id=r.customer_id,
        kind=r.kind.to_proto(),
        jurisdiction=JURISDICTION_TO_PROTO[r.jurisdiction],
        status=STATUS_TO_PROTO[r.status],
        verification_status=VERIFICATION_TO_PROTO[r.verification],
        opened_at=messages.ts(r.opened_at),
        due_at=messages.ts(r.due_at),
        access_bundle_json=r.bundle_json,
        overdue=r.overdue_at is not None,
        extended=r.extended,
        extension_reason=r.extension_reason,
        escalation_reason=ESCALATION_TO_PROTO[r.escalation] if r.escalation else 0,
    )
    if r.closed_at is not None:
        resp.closed_at.CopyFrom(messages.ts(r.closed_at))
    for name, a in sorted(r.answers.items()):
        answer = pb.ParticipantAnswer(
            participant=name,
            state=ANSWER_TO_PROTO[a.state],
            records_affected=a.records_affected,
            detail=a.detail,
            categories=list(a.categories),
            row_counts=a.row_counts,
        )
        if a.answered_at is not None:
            answer.answered_at.CopyFrom(messages.ts(a.answered_at))
        resp.participants.append(answer)
    return resp


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
        privacy: PrivacyRequests | None = None,
    ) -> None:
        self.privacy = privacy
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

    # -- privacy requests -------------------------------------------------------
    def _privacy(self) -> PrivacyRequests:
        self._require_ready()
        if self.privacy is None:
            raise Unavailable("privacy requests are not configured")
        return self.privacy

    async def OpenPrivacyRequest(
        self, request: pb.OpenPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenPrivacyRequestResponse:
        kind = RequestKind.from_proto(request.kind)
        jurisdiction = JURISDICTION_FROM_PROTO.get(request.jurisdiction)
        if request.jurisdiction and jurisdiction is None:
            raise InvalidArgument("jurisdiction", "must be GDPR, PIPA or CCPA")
        verification = VERIFICATION_FROM_PROTO.get(
            request.verification_status, Verification.PENDING
        )
        privacy = self._privacy()
        opened, created = await self.db.in_transaction(
            lambda s: privacy.open(
                s,
                customer_id=request.customer_id,
                kind=kind,
                jurisdiction=jurisdiction,
                verification=verification,
                verification_method=request.verification_method,
                actor=request.actor,
            )
        )
        if created:
            self.after_commit()
        return pb.OpenPrivacyRequestResponse(
            request_id=opened.request_id,
            status=STATUS_TO_PROTO[opened.status],
            opened_at=messages.ts(opened.opened_at),
            due_at=messages.ts(opened.due_at),
        )

    async def GetPrivacyRequestStatus(
        self, request: pb.GetPrivacyRequestStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPrivacyRequestStatusResponse:
        privacy = self._privacy()
        found = await self.db.in_transaction(lambda s: privacy.status(s, request.request_id))
        return privacy_status(found)

    async def VerifyPrivacyRequest(
        self, request: pb.VerifyPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyPrivacyRequestResponse:
        privacy = self._privacy()
        verification = VERIFICATION_FROM_PROTO.get(request.verification_status)
        verified = await self.db.in_transaction(
            lambda s: privacy.verify(
                s, request.request_id, verification, request.verification_method
            )
        )
        self.after_commit()
        return pb.VerifyPrivacyRequestResponse(status=STATUS_TO_PROTO[verified.status])

    async def ExtendPrivacyRequest(
        self, request: pb.ExtendPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtendPrivacyRequestResponse:
        privacy = self._privacy()
        extended = await self.db.in_transaction(
            lambda s: privacy.extend(s, request.request_id, request.reason)
        )
        return pb.ExtendPrivacyRequestResponse(due_at=messages.ts(extended.due_at))
