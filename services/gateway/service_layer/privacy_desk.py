"""Privacy (data-subject) requests taken over HTTP and handed to consent.

The gateway is only the front desk: it finds the customer (by customer id,
or by an identifier such as an email through identity's
``LookupByIdentifier``), then opens the request with consent's
``OpenPrivacyRequest`` and reads it back with ``GetPrivacyRequestStatus``.
Consent runs the saga (docs/adr/0014). Every call has a deadline; a service
that cannot answer makes the request ``Unavailable`` (HTTP 503), a customer
identity does not know ``NotFound`` (404), a field consent refuses
``InvalidRequest`` naming it (400).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from cxloop.common.v1 import identifier_pb2
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cpb_grpc
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as ipb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_libs.errors import NotFound, Unavailable
from cxloop_libs.pii import IdType, InvalidIdentifier
from cxloop_libs.pii.normalize import normalize_identifier
from gateway.domain.errors import FieldProblem, InvalidRequest

KINDS: dict[str, cev.PrivacyRequestKind.ValueType] = {
    "access": cev.PRIVACY_REQUEST_KIND_ACCESS,
    "erasure": cev.PRIVACY_REQUEST_KIND_ERASURE,
    "rectification": cev.PRIVACY_REQUEST_KIND_RECTIFICATION,
    "restriction": cev.PRIVACY_REQUEST_KIND_RESTRICTION,
}
JURISDICTIONS: dict[str, cev.Jurisdiction.ValueType] = {
    "gdpr": cev.JURISDICTION_GDPR,
    "pipa": cev.JURISDICTION_PIPA,
    "ccpa": cev.JURISDICTION_CCPA,
}
VERIFICATIONS: dict[str, cpb.VerificationStatus.ValueType] = {
    "pending": cpb.VERIFICATION_STATUS_PENDING,
    "verified": cpb.VERIFICATION_STATUS_VERIFIED,
}
# Consent's field names (INVALID_ARGUMENT's cx-field) -> the HTTP body's.
_FIELDS = {
    "customer_id": "subject.customerId",
    "kind": "type",
    "jurisdiction": "jurisdiction",
    "verification_status": "verificationStatus",
    "verification_method": "verificationMethod",
    "actor": "actor",
    "request_id": "requestId",
}


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a request is about: a customer id, or one identifier."""

    customer_id: str | None = None
    id_type: IdType | None = None
    value: str | None = None
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class NewPrivacyRequest:
    kind: str
    subject: Subject
    jurisdiction: str | None = None
    verification_status: str = "pending"
    verification_method: str = ""
    actor: str = ""


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _iso(ts: Timestamp, present: bool = True) -> str | None:
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime().isoformat() + "Z"


def _rpc_error(exc: grpc.aio.AioRpcError, service: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field = dict(exc.trailing_metadata() or ()).get("cx-field", "")
        details = exc.details() or "invalid"
        reason = details.split(": ", 1)[1] if ": " in details else details
        return InvalidRequest.one(_FIELDS.get(str(field), str(field) or "body"), reason)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(exc.details() or "not found")
    return Unavailable(f"{service} cannot answer now ({code.name}); retry shortly")


class PrivacyDesk:
    def __init__(
        self,
        consent: grpc.aio.Channel,
        identity: grpc.aio.Channel,
        *,
        deadline_s: float,
        default_region: str = "KR",
    ) -> None:
        self._consent = cpb_grpc.ConsentServiceStub(consent)
        self._identity = ipb_grpc.IdentityServiceStub(identity)
        self._deadline = deadline_s
        self._region = default_region

    async def customer_of(self, subject: Subject) -> str:
        """The customer id the subject names, as identity knows it (a
        customer merged away answers with the survivor). NotFound if unknown."""
        try:
            if subject.customer_id is not None:
                profile = await self._identity.GetProfile(
                    ipb.GetProfileRequest(customer_id=subject.customer_id),
                    timeout=self._deadline,
                )
                return str(profile.profile.customer_id)
            assert subject.id_type is not None and subject.value is not None
            found = await self._identity.LookupByIdentifier(
                ipb.LookupByIdentifierRequest(
                    identifier=identifier_pb2.Identifier(
                        type=subject.id_type.to_proto(),
                        value=subject.value,
                        namespace=subject.namespace,
                    )
                ),
                timeout=self._deadline,
            )
            return str(found.customer_id)
        except grpc.aio.AioRpcError as exc:
            err = _rpc_error(exc, "identity")
            if isinstance(err, NotFound):
                raise NotFound("no customer matches the subject") from None
            if isinstance(err, InvalidRequest):
                raise InvalidRequest.one("subject", err.problems[0].reason) from None
            raise err from None

    def check_subject(self, subject: Subject) -> None:
        """Refuse an identifier that cannot be one (before asking identity)."""
        if subject.id_type is None or subject.value is None:
            return
        try:
            normalize_identifier(
                subject.id_type,
                subject.value,
                subject.namespace,
                field="subject.identifier.value",
                default_region=self._region,
            )
        except InvalidIdentifier as exc:
            field = exc.field.replace("value.namespace", "namespace")
            raise InvalidRequest([FieldProblem(field, exc.reason)]) from None

    async def open(self, request: NewPrivacyRequest) -> dict[str, Any]:
        self.check_subject(request.subject)
        customer_id = await self.customer_of(request.subject)
        try:
            r = await self._consent.OpenPrivacyRequest(
                cpb.OpenPrivacyRequestRequest(
                    customer_id=customer_id,
                    kind=KINDS[request.kind],
                    jurisdiction=JURISDICTIONS[request.jurisdiction]
                    if request.jurisdiction
                    else cev.JURISDICTION_UNSPECIFIED,
                    verification_status=VERIFICATIONS[request.verification_status],
                    verification_method=request.verification_method,
                    actor=request.actor,
                ),
                timeout=self._deadline,
            )
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, "consent") from None
        return {
            "requestId": r.request_id,
            "customerId": customer_id,
            "type": request.kind,
            "status": _name(cpb.PrivacyRequestStatus, r.status, "PRIVACY_REQUEST_STATUS_"),
            "openedAt": _iso(r.opened_at, r.HasField("opened_at")),
            "dueAt": _iso(r.due_at, r.HasField("due_at")),
        }

    async def status(self, request_id: str) -> dict[str, Any]:
        try:
            r = await self._consent.GetPrivacyRequestStatus(
                cpb.GetPrivacyRequestStatusRequest(request_id=request_id),
                timeout=self._deadline,
            )
        except grpc.aio.AioRpcError as exc:
            err = _rpc_error(exc, "consent")
            if isinstance(err, NotFound):
                raise NotFound("no privacy request with this id") from None
            raise err from None
        bundle: Any = None
        if r.access_bundle_json:
            try:
                bundle = json.loads(r.access_bundle_json)
            except ValueError:
                bundle = r.access_bundle_json
        escalation = (
            _name(cev.PrivacyEscalationReason, r.escalation_reason, "PRIVACY_ESCALATION_REASON_")
            if r.escalation_reason
            else None
        )
        return {
            "requestId": r.request_id,
            "customerId": r.customer_id,
            "type": _name(cev.PrivacyRequestKind, r.kind, "PRIVACY_REQUEST_KIND_"),
            "jurisdiction": _name(cev.Jurisdiction, r.jurisdiction, "JURISDICTION_"),
            "status": _name(cpb.PrivacyRequestStatus, r.status, "PRIVACY_REQUEST_STATUS_"),
            "verificationStatus": _name(
                cpb.VerificationStatus, r.verification_status, "VERIFICATION_STATUS_"
            ),
            "openedAt": _iso(r.opened_at, r.HasField("opened_at")),
            "dueAt": _iso(r.due_at, r.HasField("due_at")),
            "closedAt": _iso(r.closed_at, r.HasField("closed_at")),
            "overdue": r.overdue,
            "extended": r.extended,
            "extensionReason": r.extension_reason or None,
            "escalationReason": escalation,
            "participants": [
                {
                    "participant": p.participant,
                    "state": _name(cpb.ParticipantState, p.state, "PARTICIPANT_STATE_"),
                    "answeredAt": _iso(p.answered_at, p.HasField("answered_at")),
                    "recordsAffected": p.records_affected,
                    "categories": list(p.categories),
                    "rowCounts": dict(p.row_counts),
                    "detail": p.detail or None,
                }
                for p in r.participants
            ],
            "accessBundle": bundle,
        }
