"""Consent's use cases: record a decision (ledger row, projection, signed
receipt and events in one transaction), check, read preferences, publish a
notice version."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cxloop.consent.v1 import events_pb2 as epb
from google.protobuf.message import Message
from opentelemetry import trace
from sqlmodel import Session

from consent.adapters.repository import ConsentRepository
from consent.adapters.tables import RecordRow
from consent.domain.ledger import (
    ConsentRecord,
    PurposeState,
    RecordRequest,
    SubjectConsent,
    decide,
    require_customer_id,
)
from consent.domain.purposes import Catalogue, Notice, ThirdPartyProvision
from consent.domain.receipt import Controller, receipt_claims
from consent.domain.signals import GPC_PURPOSES
from consent.service_layer import messages
from consent.service_layer.preferences import stage_committed_state
from consent.service_layer.receipt_keys import ReceiptKeys
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.receipts import ReceiptSigner
from cxloop_libs.consent.rules import Decision, Reason
from cxloop_libs.consent.state_bucket import customer_key, purpose_key, state_subject
from cxloop_libs.errors import FailedPrecondition, InvalidArgument, Unavailable
from cxloop_libs.messaging import EventKind, OutboxWriter
from cxloop_libs.messaging import catalog as ev

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.consent")

_EVENT_NS = uuid.UUID("0b6f4f0e-8e55-4b0c-a3c9-5b1f6f1c2d11")
MAX_BATCH = 1000


def derived_event_id(cause: str, what: str) -> str:
    """Same cause, same id: a replayed write cannot emit a second copy."""
    return str(uuid.uuid5(_EVENT_NS, f"{cause}/{what}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConsentOutbox(OutboxWriter):
    """The outbox, plus staging of the latest state into the CONSENT_STATE
    bucket (a KV put is a publish on ``$KV.<bucket>.<key>``)."""

    def stage_state(self, kind: EventKind, message: Message, *, key: str, event_id: str) -> None:
        # The relay publishes rows in id order on one connection, so the
        # bucket's last value for a key is the newest staged; the version in
        # the message guards live consumers against anything else.
        self.stage(kind, message, event_id=event_id, nats_subject=state_subject(key))
        if kind == ev.CONSENT_CHANGED and self.session is not None:
            # The service's own view applies it once this transaction commits.
            assert isinstance(message, epb.ConsentChanged)
            stage_committed_state(self.session, message)


@dataclass(frozen=True, slots=True)
class Recorded:
    record_id: str
    receipt_jws: str
    recorded_at: datetime
    version: int
    replayed: bool = False
    # The event published for the change, for the service's own view.
    changed: epb.ConsentChanged | None = None
    gpc_conflict: bool = False


@dataclass(frozen=True, slots=True)
class Appended:
    message: epb.ConsentChanged
    receipts: dict[str, str]


@dataclass(frozen=True, slots=True)
class CheckResult:
    customer_id: str
    reason: Reason
    state: PurposeState | None
    # False for an id the ledger never saw: the verdict is the purpose's default.
    known: bool = True


class ConsentHandlers:
    def __init__(
        self,
        signer: ReceiptSigner | ReceiptKeys,
        *,
        controller: Controller,
        jurisdiction: str = "KR",
        issuer: str = "urn:cxloop:consent",
        clock: Callable[[], datetime] = utcnow,
        gpc_purposes: Sequence[str] = GPC_PURPOSES,
    ) -> None:
        self.signer = signer
        self.gpc_purposes = tuple(gpc_purposes)
        self.controller = controller
        self.jurisdiction = jurisdiction
        self.issuer = issuer
        self.clock = clock
        self._catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            raise Unavailable("consent catalogue is not loaded yet")
        return self._catalogue

    @property
    def is_ready(self) -> bool:
        return self._catalogue is not None

    def catalogue_in(self, session: Session) -> Catalogue:
        """The catalogue, loaded through ``session`` if it is not yet (event
        consumers may start before the loader has run)."""
        return self._catalogue or self.load_catalogue(session)

    # -- catalogue --------------------------------------------------------------
    def load_catalogue(self, session: Session) -> Catalogue:
        self._catalogue = ConsentRepository(session).load_catalogue()
        return self._catalogue

    def announce_catalogue(self, session: Session) -> int:
        """Put every purpose's rule into the state bucket, so a projection
        that starts before any notice change still knows the legal bases."""
        catalogue = self.load_catalogue(session)
        outbox = ConsentOutbox(session)
        for p in catalogue:
            msg = messages.notice_published(p)
            outbox.stage_state(
                ev.NOTICE_PUBLISHED,
                msg,
                key=purpose_key(p.key),
                event_id=derived_event_id(f"{p.key}/{p.current.version}", "announce"),
            )
        return outbox.flush()

    def publish_notice(
        self,
        session: Session,
        purpose_key_: str,
        *,
        text_ko: str,
        text_en: str,
        substantive: bool,
        third_party: ThirdPartyProvision | None = None,
    ) -> Notice:
        """A new notice version; a substantive one makes earlier grants of the
        purpose need re-consent, everywhere, through one event."""
        catalogue = ConsentRepository(session).load_catalogue()
        purpose = catalogue.require(purpose_key_)
        revised, notice = purpose.revise(
            text_ko=text_ko,
            text_en=text_en,
            substantive=substantive,
            now=self.clock(),
            third_party=third_party,
        )
        ConsentRepository(session).insert_notice(notice)
        outbox = ConsentOutbox(session)
        msg = messages.notice_published(revised)
        event_id = derived_event_id(f"{revised.key}/{notice.version}", "published")
        outbox.stage(ev.NOTICE_PUBLISHED, msg, event_id=event_id)
        outbox.stage_state(
            ev.NOTICE_PUBLISHED, msg, key=purpose_key(revised.key), event_id=event_id + "/state"
        )
        outbox.flush()
        session.flush()
        self._catalogue = catalogue.with_purpose(revised)
        return notice

    # -- ledger -----------------------------------------------------------------
    def record(self, session: Session, req: RecordRequest) -> Recorded:
        """Append one decision; everything or nothing is written."""
        now = self.clock()
        catalogue = self.catalogue
        record = decide(catalogue, req, now=now)  # refuses before any write
        repo = ConsentRepository(session)
        if record.idempotency_key:
            earlier = repo.find_idempotent(record.customer_id, record.idempotency_key)
            if earlier is not None:
                return self._replayed(earlier, record)
        if (
            record.decision is Decision.GRANTED
            and record.purpose in self.gpc_purposes
            and repo.has_gpc(record.customer_id)
        ):
            # An explicit choice against a GPC signal stands, flagged as such.
            record = replace(record, gpc_conflict=True)
        with tracer.start_as_current_span(
            "consent.record",
            attributes={"cxloop.customer_id": record.customer_id, "cxloop.purpose": record.purpose},
        ):
            if record.idempotency_key:
                # A retry with the same key may have committed while we waited
                # for the customer's lock (taken first thing in append).
                repo.lock_subject_row(record.customer_id, now)
                earlier = repo.find_idempotent(record.customer_id, record.idempotency_key)
                if earlier is not None:
                    return self._replayed(earlier, record)
            subject, changed = self.append(session, record.customer_id, [record], now=now)
        return Recorded(
            record.record_id,
            changed.receipts[record.record_id],
            record.recorded_at,
            subject.version,
            changed=changed.message,
            gpc_conflict=record.gpc_conflict,
        )

    def append(
        self,
        session: Session,
        customer_id: str,
        records: Sequence[ConsentRecord],
        *,
        now: datetime,
        clear: Sequence[str] = (),
    ) -> tuple[SubjectConsent, Appended]:
        """Append records of one customer (and clear purposes) as one change:
        one version step, one receipt per record, one ``consent changed``."""
        catalogue = self.catalogue_in(session)
        repo = ConsentRepository(session)
        version = repo.lock_subject(customer_id, now)
        states = dict(repo.subject(customer_id).states)
        receipts: dict[str, str] = {}
        for record in records:
            receipt = self.signer.sign(
                receipt_claims(
                    record,
                    catalogue.require(record.purpose),
                    controller=self.controller,
                    jurisdiction=self.jurisdiction,
                    issuer=self.issuer,
                )
            )
            receipts[record.record_id] = receipt
            repo.insert_record(record, receipt)
            states[record.purpose] = PurposeState.of(record)
            repo.upsert_state(customer_id, states[record.purpose])
        for purpose in clear:
            states.pop(purpose, None)
            repo.delete_state(customer_id, purpose)
        subject = SubjectConsent(customer_id, version, states)
        changed = [r.purpose for r in records] + list(clear)
        cause = (
            records[-1].record_id
            if records
            else derived_event_id(f"{customer_id}/{version}", "cleared")
        )
        msg = self._stage_changed(
            session, subject, catalogue, changed_purpose=",".join(changed), cause=cause
        )
        return subject, Appended(msg, receipts)

    def _replayed(self, earlier: RecordRow, asked: ConsentRecord) -> Recorded:
        if earlier.purpose != asked.purpose or earlier.decision != asked.decision.value:
            raise FailedPrecondition(
                "idempotency_key was used for a different decision of this customer"
            )
        recorded_at = earlier.recorded_at
        if recorded_at.tzinfo is None:
            recorded_at = recorded_at.replace(tzinfo=UTC)
        return Recorded(
            earlier.record_id,
            earlier.receipt_jws,
            recorded_at,
            0,
            replayed=True,
            gpc_conflict=earlier.gpc_conflict,
        )

    def _stage_changed(
        self,
        session: Session,
        subject: SubjectConsent,
        catalogue: Catalogue,
        *,
        changed_purpose: str,
        cause: str,
    ) -> epb.ConsentChanged:
        msg = messages.consent_changed(
            subject, catalogue, changed_purpose=changed_purpose, record_id=cause
        )
        outbox = ConsentOutbox(session)
        outbox.stage(
            ev.CONSENT_CHANGED,
            msg,
            subject=subject.customer_id,
            event_id=derived_event_id(cause, "changed"),
        )
        outbox.stage_state(
            ev.CONSENT_CHANGED,
            msg,
            key=customer_key(subject.customer_id),
            event_id=derived_event_id(cause, "state"),
        )
        outbox.flush()
        return msg

    # -- queries ----------------------------------------------------------------
    def check(
        self, session: Session, customer_ids: Sequence[str], purpose: str
    ) -> list[CheckResult]:
        catalogue = self.catalogue
        self.validate_check(customer_ids, purpose)
        subjects = ConsentRepository(session).subjects(customer_ids)
        now = self.clock()
        return [
            CheckResult(
                cid,
                subjects[cid].verdict(catalogue, purpose, now),
                subjects[cid].states.get(purpose),
                known=subjects[cid].version > 0,
            )
            for cid in customer_ids
        ]

    def check_local(
        self, view: ConsentProjection, customer_ids: Sequence[str], purpose: str
    ) -> list[tuple[str, Reason, int]]:
        """CheckBatch from the in-memory view: (customer, reason, notice version)."""
        self.validate_check(customer_ids, purpose)
        return [
            (cid, view.verdict(cid, purpose), view.notice_version_of(cid, purpose))
            for cid in customer_ids
        ]

    def validate_check(self, customer_ids: Sequence[str], purpose: str) -> None:
        self.catalogue.require(purpose)
        if not customer_ids:
            raise InvalidArgument("customer_ids", "at least one customer id is required")
        if len(customer_ids) > MAX_BATCH:
            raise InvalidArgument("customer_ids", f"at most {MAX_BATCH} per call")
        for n, cid in enumerate(customer_ids):
            require_customer_id(cid, field=f"customer_ids[{n}]")

    def preferences(self, session: Session, customer_id: str) -> SubjectConsent:
        require_customer_id(customer_id)
        return ConsentRepository(session).subject(customer_id)

    def load_view(self, session: Session, view: ConsentProjection, *, page: int = 2000) -> int:
        """Fill the service's own view from the ledger projection (the
        authority), so CheckBatch is right even before NATS answers."""
        catalogue = self.catalogue
        for p in catalogue:
            view.apply_notice(messages.notice_published(p))
        repo = ConsentRepository(session)
        n, after = 0, ""
        while True:
            ids = repo.customer_ids_after(after, page)
            if not ids:
                return n
            for subject in repo.subjects(ids).values():
                view.apply_consent_changed(
                    messages.consent_changed(subject, catalogue, changed_purpose="", record_id="")
                )
            n += len(ids)
            after = ids[-1]
