"""gRPC edge of the consent service: translate, call a handler, translate back."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import Session

from consent.domain.ledger import Proof, RecordRequest, require_customer_id
from consent.domain.privacy import AnswerState, PrivacyRequest, RequestStatus, Verification
from consent.domain.purposes import ThirdPartyProvision
from consent.service_layer import messages
from consent.service_layer.handlers import ConsentHandlers, Recorded
from consent.service_layer.preferences import ConsentView
from consent.service_layer.privacy import (
    ESCALATION_TO_PROTO,
    JURISDICTION_FROM_PROTO,
    JURISDICTION_TO_PROTO,
    PrivacyRequests,
)
from consent.service_layer.receipt_keys import ReceiptKeys
from cxloop_libs.audit import (
    ANONYMOUS,
    Action,
    Actor,
    AuditLog,
    AuditQuery,
    Outcome,
    page_token,
    parse_page_token,
)
from cxloop_libs.audit.log import DEFAULT_PAGE, MAX_PAGE
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.proof import ProofHasher
from cxloop_libs.consent.rules import Decision
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, PermissionDenied, Unavailable
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


T = TypeVar("T")
# What consent's audit entries are about.
PREFERENCES = "consent.preferences"
STATE = "consent.state"
PRIVACY_REQUEST = "consent.privacy_request"
NOTICE = "consent.notice"
RECEIPT_KEY = "consent.receipt_key"
AUDIT_LOG = "consent.audit_log"


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
        audit: AuditLog | None = None,
        receipt_keys: ReceiptKeys | None = None,
        admin_callers: frozenset[str] = frozenset(),
        auth_required: bool = False,
    ) -> None:
        self.privacy = privacy
        # Who read or changed consent data (docs/adr/0020-audit-log.md).
        self.audit = audit or AuditLog("consent", db=db, on_commit=after_commit)
        self.receipt_keys = receipt_keys
        self.admin_callers = admin_callers
        self.auth_required = auth_required
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

    def _audited(
        self,
        actor: Actor,
        action: Action,
        resource: str,
        fn: Callable[[Session], T],
        *,
        subject: str | Callable[[T], str] = "",
        fields: list[str] | tuple[str, ...] = (),
        operation: str,
    ) -> Callable[[Session], T]:
        return self.audit.audited(
            actor, action, resource, fn, subject=subject, fields=fields, operation=operation
        )

    def _require_admin(self, actor: Actor) -> None:
        """Notice publishing, key rotation and audit export: callers named in
        CXLOOP_CONSENT_ADMIN_CALLERS (any caller where auth is off)."""
        if actor.name in self.admin_callers:
            return
        if not self.auth_required and actor.name == ANONYMOUS:
            return
        if not self.admin_callers:
            raise PermissionDenied(
                "admin operation: no caller is allowed; name admin tokens in "
                "CXLOOP_CONSENT_ADMIN_CALLERS"
            )
        raise PermissionDenied(f"admin operation: caller {actor.name!r} is not an admin caller")

    async def Check(
        self, request: pb.CheckRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        actor = self.audit.actor(context)
        self._require_ready()
        cid, purpose = request.customer_id, request.purpose
        # The read, then its entry committed with concurrent reads' entries.
        (result,) = await self.audit.read(
            actor,
            Action.READ,
            STATE,
            lambda s: self.handlers.check(s, [cid], purpose),
            subject=cid,
            fields=[f"purpose:{purpose}"],
            operation="Check",
        )
        resp = pb.CheckResponse(
            allowed=result.reason.allows, reason=int(result.reason), known=result.known
        )
        if result.state is not None:
            resp.notice_version = str(result.state.notice_version)
            resp.decided_at.CopyFrom(messages.ts(result.state.decided_at))
        return resp

    async def CheckBatch(
        self, request: pb.CheckBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckBatchResponse:
        actor = self.audit.actor(context)
        self._require_ready()
        ids, purpose = list(request.customer_ids), request.purpose
        self.handlers.validate_check(ids, purpose)
        # One entry per call with the number of customers, not one per
        # customer, written in the background (docs/adr/0020-audit-log.md).
        self.audit.record_later(
            self.audit.entry(
                actor,
                Action.READ,
                STATE,
                fields=[f"purpose:{purpose}"],
                operation="CheckBatch",
                subject_count=len(ids),
            )
        )
        if self.view is not None and self.view_ready():
            view = self.view
            local = self.handlers.check_local(view, ids, purpose)
            return pb.CheckBatchResponse(
                verdicts=[
                    pb.ConsentVerdict(
                        customer_id=cid,
                        allowed=reason.allows,
                        reason=int(reason),
                        notice_version=str(version) if version else "",
                        known=view.version_of(cid) > 0,
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
                    known=r.known,
                )
                for r in results
            ]
        )

    def _proof(self, p: pb.ConsentProof, caller: Actor) -> Proof:
        if p.ip_address and p.ip_hash:
            raise InvalidArgument("proof.ip_address", "send the address or its hash, not both")
        if p.user_agent and p.user_agent_hash:
            raise InvalidArgument("proof.user_agent", "send the user agent or its hash, not both")
        return Proof(
            ip_hash=self.hasher.ip(p.ip_address) if p.ip_address else p.ip_hash,
            user_agent_hash=self.hasher.user_agent(p.user_agent)
            if p.user_agent
            else p.user_agent_hash,
            # The person a desk acts for (x-cxloop-actor) captured the decision.
            actor=p.actor or caller.on_behalf_of,
        )

    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordConsentResponse:
        actor = self.audit.actor(context)
        req = RecordRequest(
            customer_id=request.customer_id,
            purpose=request.purpose,
            decision=Decision.from_proto(request.decision),
            notice_version=request.notice_version,
            channel=messages.CHANNEL_FROM_PROTO.get(request.channel),
            proof=self._proof(request.proof, actor),
            decided_at=_when(request.decided_at, request.HasField("decided_at")),
            expires_at=_when(request.expires_at, request.HasField("expires_at")),
            idempotency_key=request.idempotency_key,
        )
        self._require_ready()
        # A concurrent retry with the same idempotency key that commits first
        # makes ours hit the unique key; in_transaction re-runs it, and the
        # re-run answers with the record that won. The audit entry commits
        # with the ledger row, or neither does.
        recorded: Recorded = await self.db.in_transaction(
            self._audited(
                actor,
                Action.CHANGE,
                PREFERENCES,
                lambda s: self.handlers.record(s, req),
                subject=req.customer_id,
                fields=[f"purpose:{req.purpose}"],
                operation="RecordConsent",
            )
        )
        self.after_commit()
        if not recorded.replayed and not isinstance(self.view, ConsentView):
            # A ConsentView already holds it (applied as the write committed).
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
        actor = self.audit.actor(context)
        self._require_ready()
        cid = request.customer_id

        catalogue = self.handlers.catalogue
        view = self.view
        if isinstance(view, ConsentView) and self.view_ready():
            # From memory: no transaction for a read (docs/adr/0310).
            require_customer_id(cid)
            version, states = view.preferences(cid, catalogue)
        else:
            subject = await self.db.in_transaction(lambda s: self.handlers.preferences(s, cid))
            version, states = subject.version, messages.subject_states(subject, catalogue)
        # Committed with the entries of concurrent reads, before the answer.
        await self.audit.commit(
            self.audit.entry(
                actor,
                Action.READ,
                PREFERENCES,
                subject=cid,
                fields=sorted(s.purpose for s in states),
                operation="GetPreferences",
                outcome=Outcome.OK if version else Outcome.NOT_FOUND,
            )
        )
        decided = {s.purpose: s for s in states}
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

    # -- admin ------------------------------------------------------------------
    async def ExportAuditLog(
        self, request: pb.ExportAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExportAuditLogResponse:
        actor = self.audit.actor(context)
        self._require_admin(actor)
        after = parse_page_token(request.page_token)
        size = request.page_size or DEFAULT_PAGE
        if size > MAX_PAGE:
            raise InvalidArgument("page_size", f"at most {MAX_PAGE}")
        action = None
        if request.action:
            action = Action.from_proto(request.action)
            if action is None:
                raise InvalidArgument("action", "unknown audit action")
        since = _when(request.since, request.HasField("since"))
        until = _when(request.until, request.HasField("until"))
        if since and until and until <= since:
            raise InvalidArgument("until", "must be after since")
        query = AuditQuery(
            subject=request.subject, actor=request.actor, since=since, until=until, action=action
        )
        self._require_ready()
        fields = [f"{k}:{v}" for k, v in (("subject", query.subject), ("actor", query.actor)) if v]
        page = await self.db.in_transaction(
            self._audited(
                actor,
                Action.EXPORT,
                AUDIT_LOG,
                lambda s: self.audit.page(s, query, after_id=after, limit=size + 1),
                subject=query.subject,
                fields=fields,
                operation="ExportAuditLog",
            )
        )
        self.after_commit()
        more = len(page) > size
        page = page[:size]
        return pb.ExportAuditLogResponse(
            entries=[e.to_proto() for _, e in page],
            next_page_token=page_token(page[-1][0]) if more and page else "",
        )

    async def PublishNotice(
        self, request: pb.PublishNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.PublishNoticeResponse:
        actor = self.audit.actor(context)
        self._require_admin(actor)
        third_party = None
        if request.HasField("third_party"):
            tp = request.third_party
            third_party = ThirdPartyProvision(
                recipient=tp.recipient,
                purpose=tp.purpose,
                items=tuple(tp.items),
                retention=tp.retention,
            )
        self._require_ready()
        # Unknown purposes answer INVALID_ARGUMENT naming "purpose" before any write.
        self.handlers.catalogue.require(request.purpose)
        await self.db.in_transaction(
            self._audited(
                actor,
                Action.CHANGE,
                NOTICE,
                lambda s: self.handlers.publish_notice(
                    s,
                    request.purpose,
                    text_ko=request.text_ko,
                    text_en=request.text_en,
                    substantive=request.substantive,
                    third_party=third_party,
                ),
                fields=[f"purpose:{request.purpose}"],
                operation="PublishNotice",
            )
        )
        self.after_commit()
        purpose = self.handlers.catalogue.require(request.purpose)
        if self.view is not None:
            self.view.apply_notice(messages.notice_published(purpose))
        return pb.PublishNoticeResponse(
            notice=messages.purpose(purpose).notice,
            reconsent_from_version=str(purpose.reconsent_from),
        )

    async def RotateReceiptKey(
        self, request: pb.RotateReceiptKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateReceiptKeyResponse:
        actor = self.audit.actor(context)
        self._require_admin(actor)
        self._require_ready()
        keys = self.receipt_keys
        if keys is None:
            raise Unavailable("receipt key rotation is not configured")
        signer = await self.db.in_transaction(
            self._audited(
                actor, Action.CHANGE, RECEIPT_KEY, keys.rotate, operation="RotateReceiptKey"
            )
        )
        self.after_commit()
        await self.db.in_transaction(keys.sync)
        return pb.RotateReceiptKeyResponse(
            kid=signer.kid, alg=signer.alg, jwks_json=json.dumps(keys.jwks())
        )

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
        actor = self.audit.actor(context)
        if request.actor and not actor.on_behalf_of:
            actor = Actor(actor.name, request.actor[:100], actor.reason)
        privacy = self._privacy()
        opened, _created = await self.db.in_transaction(
            self._audited(
                actor,
                Action.CHANGE,
                PRIVACY_REQUEST,
                lambda s: privacy.open(
                    s,
                    customer_id=request.customer_id,
                    kind=kind,
                    jurisdiction=jurisdiction,
                    verification=verification,
                    verification_method=request.verification_method,
                    actor=request.actor,
                ),
                subject=request.customer_id,
                fields=[f"kind:{kind.value}" if kind else "kind"],
                operation="OpenPrivacyRequest",
            )
        )
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
        actor = self.audit.actor(context)
        privacy = self._privacy()

        def read(s: Session) -> PrivacyRequest:
            found = privacy.status(s, request.request_id)
            # Handing out an access bundle is an export of the customer's data.
            self.audit.record(
                s,
                actor,
                Action.EXPORT if found.bundle_json else Action.READ,
                PRIVACY_REQUEST,
                subject=found.customer_id,
                fields=["access_bundle"] if found.bundle_json else ["status"],
                operation="GetPrivacyRequestStatus",
            )
            return found

        found = await self.db.in_transaction(read)
        self.after_commit()
        return privacy_status(found)

    async def VerifyPrivacyRequest(
        self, request: pb.VerifyPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyPrivacyRequestResponse:
        privacy = self._privacy()
        verification = VERIFICATION_FROM_PROTO.get(request.verification_status)
        actor = self.audit.actor(context)
        verified = await self.db.in_transaction(
            self._audited(
                actor,
                Action.CHANGE,
                PRIVACY_REQUEST,
                lambda s: privacy.verify(
                    s, request.request_id, verification, request.verification_method
                ),
                subject=lambda r: r.customer_id,
                fields=["verification_status"],
                operation="VerifyPrivacyRequest",
            )
        )
        self.after_commit()
        return pb.VerifyPrivacyRequestResponse(status=STATUS_TO_PROTO[verified.status])

    async def ExtendPrivacyRequest(
        self, request: pb.ExtendPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtendPrivacyRequestResponse:
        privacy = self._privacy()
        actor = self.audit.actor(context)
        extended = await self.db.in_transaction(
            self._audited(
                actor,
                Action.CHANGE,
                PRIVACY_REQUEST,
                lambda s: privacy.extend(s, request.request_id, request.reason),
                subject=lambda r: r.customer_id,
                fields=["due_at", "extension_reason"],
                operation="ExtendPrivacyRequest",
            )
        )
        self.after_commit()
        return pb.ExtendPrivacyRequestResponse(due_at=messages.ts(extended.due_at))
