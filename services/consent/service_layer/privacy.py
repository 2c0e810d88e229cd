"""Privacy (data-subject) requests as a saga, and consent's own part in them.

Open → (verify) → ``<kind> requested`` to every registered participant →
their answers (``privacy_request.answered`` on each participant's stream) →
completed when all answered; a sweep escalates a request whose participants
stay silent past the answer timeout and flags a request past its due date.
Every state change and the event reporting it commit together (outbox).
docs/adr/0014-privacy-request-saga.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as epb
from google.protobuf.message import Message
from sqlmodel import Session

from consent.adapters.known_subjects import is_known
from consent.adapters.privacy_repository import PrivacyRepository
from consent.adapters.repository import ConsentRepository
from consent.adapters.tables import GpcSignalRow, RecordRow, StateRow
from consent.domain.ledger import SubjectConsent
from consent.domain.privacy import (
    DEFAULT_JURISDICTION,
    Answer,
    AnswerState,
    Escalation,
    Jurisdiction,
    PrivacyRequest,
    RequestStatus,
    Verification,
    open_request,
)
from consent.service_layer import messages
from consent.service_layer.handlers import ConsentHandlers, ConsentOutbox, derived_event_id
from cxloop_libs.consent.state_bucket import customer_key
from cxloop_libs.errors import InvalidArgument, NotFound
from cxloop_libs.messaging import ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import PrivacyAnswer, RequestKind

log = logging.getLogger(__name__)

ANSWERS_CONSUMER = "consent-privacy-answers"
PARTICIPANT = "consent"

JURISDICTION_TO_PROTO = {
    Jurisdiction.GDPR: epb.JURISDICTION_GDPR,
    Jurisdiction.PIPA: epb.JURISDICTION_PIPA,
    Jurisdiction.CCPA: epb.JURISDICTION_CCPA,
}
JURISDICTION_FROM_PROTO = {int(v): k for k, v in JURISDICTION_TO_PROTO.items()}
ESCALATION_TO_PROTO = {
    Escalation.PARTICIPANTS_SILENT: epb.PRIVACY_ESCALATION_REASON_PARTICIPANTS_SILENT,
    Escalation.OVERDUE: epb.PRIVACY_ESCALATION_REASON_OVERDUE,
    Escalation.PARTICIPANT_FAILED: epb.PRIVACY_ESCALATION_REASON_PARTICIPANT_FAILED,
}
_OUTCOME = {
    epb.PRIVACY_ANSWER_OUTCOME_DONE: AnswerState.DONE,
    epb.PRIVACY_ANSWER_OUTCOME_FAILED: AnswerState.FAILED,
    epb.PRIVACY_ANSWER_OUTCOME_NOT_APPLICABLE: AnswerState.NOT_APPLICABLE,
}
_WORK = {
    RequestKind.ERASURE: (ev.ERASURE_REQUESTED, epb.ErasureRequested),
    RequestKind.ACCESS: (ev.ACCESS_REQUESTED, epb.AccessRequested),
    RequestKind.RECTIFICATION: (ev.RECTIFICATION_REQUESTED, epb.RectificationRequested),
    RequestKind.RESTRICTION: (ev.RESTRICTION_REQUESTED, epb.RestrictionRequested),
}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


class PrivacyRequests:
    def __init__(
        self,
        handlers: ConsentHandlers,
        participants: list[str],
        *,
        answer_timeout: timedelta,
        default_jurisdiction: str = "KR",
        clock: Callable[[], datetime] | None = None,
        require_known_subject: bool = True,
    ) -> None:
        self.require_known_subject = require_known_subject
        self.handlers = handlers
        self.participants = sorted(set(participants))
        self.answer_timeout = answer_timeout
        self.default_jurisdiction = DEFAULT_JURISDICTION.get(default_jurisdiction.upper())
        self.clock = clock or handlers.clock

    # -- commands ---------------------------------------------------------------
    def open(
        self,
        session: Session,
        *,
        customer_id: str,
        kind: RequestKind | None,
        jurisdiction: Jurisdiction | None,
        verification: Verification,
        verification_method: str = "",
        actor: str = "",
    ) -> tuple[PrivacyRequest, bool]:
        """The request and whether it is new: an open request of the same
        kind for the customer is answered instead of a second one."""
        now = self.clock()
        request = open_request(
            customer_id=customer_id,
            kind=kind,
            jurisdiction=jurisdiction or self.default_jurisdiction,
            verification=verification,
            verification_method=verification_method,
            actor=actor,
            participants=self.participants,
            now=now,
        )
        if self.require_known_subject and not is_known(session, request.customer_id):
            # Nothing is written: no request row, no event to any participant.
            raise NotFound(
                f"customer_id: no service knows customer {request.customer_id[:64]!r} "
                "(identity never announced it and consent has no record of it)"
            )
        repo = PrivacyRepository(session)
        earlier = repo.find_open(request.customer_id, request.kind)
        if earlier is not None:
            return earlier, False
        repo.insert(request)
        outbox = ConsentOutbox(session)
        opened = epb.PrivacyRequestOpened(
            request_id=request.request_id,
            customer_id=request.customer_id,
            kind=request.kind.to_proto(),
            jurisdiction=JURISDICTION_TO_PROTO[request.jurisdiction],
            opened_at=messages.ts(request.opened_at),
            due_at=messages.ts(request.due_at),
        )
        self._stage(outbox, ev.PRIVACY_REQUEST_OPENED, opened, request, "opened")
        if request.status is RequestStatus.IN_PROGRESS:
            self._send(outbox, request)
        outbox.flush()
        return request, True

    def _stage(
        self, outbox: ConsentOutbox, kind: Any, msg: Message, r: PrivacyRequest, what: str
    ) -> None:
        outbox.stage(
            kind, msg, subject=r.customer_id, event_id=derived_event_id(r.request_id, what)
        )

    def _send(self, outbox: ConsentOutbox, r: PrivacyRequest) -> None:
        kind, message_type = _WORK[r.kind]
        msg = message_type(
            request_id=r.request_id, customer_id=r.customer_id, due_at=messages.ts(r.due_at)
        )
        self._stage(outbox, kind, msg, r, "requested")

    def _require(self, repo: PrivacyRepository, request_id: str) -> PrivacyRequest:
        if not request_id:
            raise InvalidArgument("request_id", "must not be empty")
        request = repo.get(request_id, lock=True)
        if request is None:
            raise NotFound(f"no privacy request {request_id[:64]!r}")
        return request

    def verify(
        self, session: Session, request_id: str, verification: Verification | None, method: str
    ) -> PrivacyRequest:
        if verification not in (Verification.VERIFIED, Verification.FAILED):
            raise InvalidArgument("verification_status", "must be VERIFIED or FAILED")
        repo = PrivacyRepository(session)
        request = self._require(repo, request_id)
        now = self.clock()
        if verification is Verification.VERIFIED:
            request = request.verified(method, now)
            outbox = ConsentOutbox(session)
            self._send(outbox, request)
            outbox.flush()
        else:
            request = request.rejected(method, now)
        repo.save(request)
        return request

    def extend(self, session: Session, request_id: str, reason: str) -> PrivacyRequest:
        repo = PrivacyRepository(session)
        request = self._require(repo, request_id).extend(reason, self.clock())
        repo.save(request)
        return request

    def status(self, session: Session, request_id: str) -> PrivacyRequest:
        if not request_id:
            raise InvalidArgument("request_id", "must not be empty")
        request = PrivacyRepository(session).get(request_id)
        if request is None:
            raise NotFound(f"no privacy request {request_id[:64]!r}")
        return request

    # -- the saga's events ------------------------------------------------------
    def on_answers(self, session: Session, events: list[ReceivedEvent]) -> None:
        repo = PrivacyRepository(session)
        outbox = ConsentOutbox(session)
        now = self.clock()
        for e in events:
            msg = e.message()
            if not isinstance(msg, epb.PrivacyRequestAnswered):
                continue
            request = repo.get(msg.request_id, lock=True)
            if request is None or msg.participant not in request.answers:
                log.warning(
                    "privacy answer for an unknown request or participant",
                    extra={"participant": msg.participant, "ce_id": e.id},
                )
                continue
            answer = Answer(
                participant=msg.participant,
                state=_OUTCOME.get(msg.outcome, AnswerState.FAILED),
                answered_at=msg.answered_at.ToDatetime(UTC) if msg.HasField("answered_at") else now,
                categories=tuple(msg.categories),
                row_counts={k: int(v) for k, v in msg.row_counts.items()},
                detail=msg.detail[:500],
                export_json=msg.export_json,
            )
            before = request
            request = request.answered(answer)
            if request is before:
                continue  # answered already
            if request.completes():
                request = request.completed(now)
                done = epb.PrivacyRequestCompleted(
                    request_id=request.request_id,
                    customer_id=request.customer_id,
                    kind=request.kind.to_proto(),
                    closed_at=messages.ts(now),
                    participants=sorted(request.answers),
                    records_affected=sum(a.records_affected for a in request.answers.values()),
                )
                self._stage(outbox, ev.PRIVACY_REQUEST_COMPLETED, done, request, "completed")
            elif answer.state is AnswerState.FAILED and request.status.is_open:
                request = self._escalate(outbox, request, Escalation.PARTICIPANT_FAILED, now)
            unchanged = request.status is before.status
            repo.save(request, only_answer=msg.participant if unchanged else None)
        outbox.flush()

    def _escalate(
        self, outbox: ConsentOutbox, r: PrivacyRequest, why: Escalation, now: datetime
    ) -> PrivacyRequest:
        if why is Escalation.OVERDUE:
            r = replace(r, overdue_at=now)
        else:
            r = r.escalated(why, now)
        alert = epb.PrivacyRequestEscalated(
            request_id=r.request_id,
            customer_id=r.customer_id,
            kind=r.kind.to_proto(),
            reason=ESCALATION_TO_PROTO[why],
            missing_participants=r.missing,
            due_at=messages.ts(r.due_at),
            escalated_at=messages.ts(now),
        )
        self._stage(outbox, ev.PRIVACY_REQUEST_ESCALATED, alert, r, f"escalated/{why.value}")
        log.warning(
            "privacy request escalated",
            extra={"request_id": r.request_id, "reason": why.value, "missing": r.missing},
        )
        return r

    def sweep(self, session: Session) -> int:
        """Escalate silent participants, flag overdue requests; how many changed."""
        repo = PrivacyRepository(session)
        outbox = ConsentOutbox(session)
        now = self.clock()
        changed = 0
        for candidate in repo.open_requests():
            if not (
                candidate.silent_too_long(now, self.answer_timeout) or candidate.newly_overdue(now)
            ):
                continue
            # Locked and read again: an answer may have committed meanwhile.
            r = repo.get(candidate.request_id, lock=True)
            if r is None:
                continue
            before = r
            if r.silent_too_long(now, self.answer_timeout):
                r = self._escalate(outbox, r, Escalation.PARTICIPANTS_SILENT, now)
            if r.newly_overdue(now):
                r = self._escalate(outbox, r, Escalation.OVERDUE, now)
            if r is not before:
                repo.save(r)
                changed += 1
        outbox.flush()
        return changed

    # -- consent as a participant ---------------------------------------------
    def answer_as_participant(
        self, session: Session | None, customer_id: str, kind: RequestKind
    ) -> PrivacyAnswer:
        """Consent's own data: the ledger, its projection and GPC markers."""
        assert session is not None
        if kind is RequestKind.ERASURE:
            return self._erase(session, customer_id)
        if kind is RequestKind.ACCESS:
            return self._export(session, customer_id)
        # Ledger entries record what the customer decided: nothing to correct
        # (a new decision is the correction); restriction is honoured by the
        # services that process data, with the consent they already check.
        return PrivacyAnswer(["consent_records"], {}, detail=f"{kind.value}: nothing to change")

    def _erase(self, session: Session, customer_id: str) -> PrivacyAnswer:
        repo = ConsentRepository(session)
        now = self.clock()
        known = repo.subjects([customer_id])[customer_id].version > 0
        # An unknown subject gets no version row (nothing to forget either).
        version = repo.lock_subject(customer_id, now) if known else 0
        counts: dict[str, int] = {}
        for name, row in (
            ("consent_records", RecordRow),
            ("consent_state", StateRow),
            ("gpc_signal", GpcSignalRow),
        ):
            table: sa.Table = row.__table__  # type: ignore[union-attr]
            result: Any = session.execute(
                sa.delete(table).where(table.c.customer_id == customer_id)
            )
            counts[name] = int(result.rowcount)
        counts["access_bundles"] = PrivacyRepository(session).drop_bundles_of(customer_id)
        if not known:
            return PrivacyAnswer(sorted(counts), counts)
        # Every projection forgets the customer: an empty state one version up.
        # The version counter row stays (no personal data beyond the id), so a
        # later event for the same id can never be taken for an older one.
        empty = messages.consent_changed(
            SubjectConsent(customer_id, version),
            self.handlers.catalogue_in(session),
            changed_purpose="",
            record_id="",
        )
        outbox = ConsentOutbox(session)
        cause = f"erased/{customer_id}/{version}"
        outbox.stage(
            ev.CONSENT_CHANGED,
            empty,
            subject=customer_id,
            event_id=derived_event_id(cause, "changed"),
        )
        outbox.stage_state(
            ev.CONSENT_CHANGED,
            empty,
            key=customer_key(customer_id),
            event_id=derived_event_id(cause, "state"),
        )
        outbox.flush()
        return PrivacyAnswer(sorted(counts), counts)

    def _export(self, session: Session, customer_id: str) -> PrivacyAnswer:
        history = ConsentRepository(session).history(customer_id)
        subject = ConsentRepository(session).subject(customer_id)
        gpc = session.execute(
            sa.select(GpcSignalRow.__table__).where(  # type: ignore[attr-defined]
                GpcSignalRow.__table__.c.customer_id == customer_id  # type: ignore[attr-defined]
            )
        ).first()
        data = {
            "consent_records": [
                {
                    "record_id": r.record_id,
                    "purpose": r.purpose,
                    "decision": r.decision.value,
                    "notice_version": r.notice_version,
                    "channel": r.channel.value,
                    "decided_at": _iso(r.decided_at),
                    "recorded_at": _iso(r.recorded_at),
                    "expires_at": _iso(r.expires_at),
                    "actor": r.proof.actor,
                    "ip_hash": r.proof.ip_hash,
                    "user_agent_hash": r.proof.user_agent_hash,
                    "conflicts_with_gpc": r.gpc_conflict,
                    "derived_from": r.derived_from,
                }
                for r in history
            ],
            "consent_state": [
                {
                    "purpose": s.purpose,
                    "decision": s.decision.value,
                    "notice_version": s.notice_version,
                    "decided_at": _iso(s.decided_at),
                    "expires_at": _iso(s.expires_at),
                }
                for s in subject.states.values()
            ],
            "gpc_signal": (
                {"first_seen_at": _iso(gpc.first_seen_at), "last_seen_at": _iso(gpc.last_seen_at)}
                if gpc
                else None
            ),
        }
        counts = {
            "consent_records": len(history),
            "consent_state": len(subject.states),
            "gpc_signal": 1 if gpc else 0,
        }
        return PrivacyAnswer(sorted(counts), counts, export_json=json.dumps(data, sort_keys=True))


__all__ = ["ANSWERS_CONSUMER", "PARTICIPANT", "PrivacyRequests"]
