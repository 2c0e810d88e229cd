"""SQL for the catalogue, the ledger and its projection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from consent.adapters.tables import (
    GpcSignalRow,
    NoticeRow,
    PurposeRow,
    RecordRow,
    StateRow,
    SubjectRow,
)
from consent.domain.ledger import Channel, ConsentRecord, Proof, PurposeState, SubjectConsent
from consent.domain.purposes import Catalogue, Notice, Purpose, ThirdPartyProvision
from cxloop_libs.consent.rules import Decision, LegalBasis

_SUBJECT: sa.Table = SubjectRow.__table__  # type: ignore[attr-defined]
_STATE: sa.Table = StateRow.__table__  # type: ignore[attr-defined]
_RECORD: sa.Table = RecordRow.__table__  # type: ignore[attr-defined]
_GPC: sa.Table = GpcSignalRow.__table__  # type: ignore[attr-defined]


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _insert(session: Session, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for the dialect in use."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _notice(row: NoticeRow) -> Notice:
    third = None
    if row.tp_recipient:
        third = ThirdPartyProvision(
            recipient=row.tp_recipient,
            purpose=row.tp_purpose or "",
            items=tuple(json.loads(row.tp_items or "[]")),
            retention=row.tp_retention or "",
        )
    published = _aware(row.published_at)
    assert published is not None
    return Notice(
        purpose=row.purpose,
        version=row.version,
        text_ko=row.text_ko,
        text_en=row.text_en,
        substantive=row.substantive,
        published_at=published,
        third_party=third,
    )


def _state(row: Any) -> PurposeState:
    decided = _aware(row.decided_at)
    assert decided is not None
    return PurposeState(
        purpose=row.purpose,
        decision=Decision(row.decision),
        notice_version=row.notice_version,
        channel=Channel(row.channel),
        decided_at=decided,
        expires_at=_aware(row.expires_at),
        record_id=row.record_id,
        gpc_conflict=bool(row.gpc_conflict),
    )


def _record(row: Any) -> ConsentRecord:
    decided, recorded = _aware(row.decided_at), _aware(row.recorded_at)
    assert decided is not None and recorded is not None
    return ConsentRecord(
        record_id=row.record_id,
        customer_id=row.customer_id,
        purpose=row.purpose,
        notice_version=row.notice_version,
        decision=Decision(row.decision),
        channel=Channel(row.channel),
        decided_at=decided,
        recorded_at=recorded,
        expires_at=_aware(row.expires_at),
        proof=Proof(row.ip_hash, row.user_agent_hash, row.actor),
        idempotency_key=row.idempotency_key or "",
        gpc_conflict=bool(row.gpc_conflict),
        derived_from=row.derived_from or "",
    )


class ConsentRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- catalogue ----------------------------------------------------------
    def load_catalogue(self) -> Catalogue:
        notices: dict[str, list[Notice]] = {}
        for n in self.s.exec(
            sa.select(NoticeRow).order_by(col(NoticeRow.purpose), col(NoticeRow.version))  # type: ignore[call-overload]
        ).scalars():
            notices.setdefault(n.purpose, []).append(_notice(n))
        purposes = [
            Purpose(
                key=p.key,
                legal_basis=LegalBasis(p.legal_basis),
                mandatory=p.mandatory,
                validity_days=p.validity_days,
                notices=tuple(notices.get(p.key, ())),
            )
            for p in self.s.exec(sa.select(PurposeRow)).scalars()  # type: ignore[call-overload]
        ]
        return Catalogue(purposes)

    def insert_notice(self, n: Notice) -> None:
        third = n.third_party
        self.s.execute(
            sa.insert(NoticeRow).values(
                purpose=n.purpose,
                version=n.version,
                text_ko=n.text_ko,
                text_en=n.text_en,
                substantive=n.substantive,
                published_at=n.published_at,
                tp_recipient=third.recipient if third else None,
                tp_purpose=third.purpose if third else None,
                tp_items=json.dumps(list(third.items)) if third else None,
                tp_retention=third.retention if third else None,
            )
        )

    # -- ledger ---------------------------------------------------------------
    def find_idempotent(self, customer_id: str, key: str) -> RecordRow | None:
        row: RecordRow | None = self.s.exec(
            sa.select(RecordRow).where(  # type: ignore[call-overload]
                col(RecordRow.customer_id) == customer_id, col(RecordRow.idempotency_key) == key
            )
        ).scalar_one_or_none()
        return row

    def lock_subject(self, customer_id: str, now: datetime) -> int:
        """Take the customer's row lock and return the next state version.

        Changes of one customer serialise here, so versions never repeat and
        the state read afterwards includes every earlier change.
        """
        self.s.execute(
            _insert(self.s, _SUBJECT)
            .values(customer_id=customer_id, version=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id"])
        )
        version: int = self.s.execute(
            sa.update(_SUBJECT)
            .where(_SUBJECT.c.customer_id == customer_id)
            .values(version=_SUBJECT.c.version + 1, updated_at=now)
            .returning(_SUBJECT.c.version)
        ).scalar_one()
        return version

    def lock_subject_row(self, customer_id: str, now: datetime) -> None:
        """Take the customer's row lock without a version step."""
        self.s.execute(
            _insert(self.s, _SUBJECT)
            .values(customer_id=customer_id, version=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id"])
        )
        self.s.execute(
            sa.update(_SUBJECT).where(_SUBJECT.c.customer_id == customer_id).values(updated_at=now)
        )

    def insert_record(self, r: ConsentRecord, receipt_jws: str) -> None:
        self.s.execute(
            sa.insert(RecordRow).values(
                record_id=r.record_id,
                customer_id=r.customer_id,
                purpose=r.purpose,
                notice_version=r.notice_version,
                decision=r.decision.value,
                channel=r.channel.value,
                decided_at=r.decided_at,
                recorded_at=r.recorded_at,
                expires_at=r.expires_at,
                ip_hash=r.proof.ip_hash,
                user_agent_hash=r.proof.user_agent_hash,
                actor=r.proof.actor,
                idempotency_key=r.idempotency_key or None,
                receipt_jws=receipt_jws,
                gpc_conflict=r.gpc_conflict,
                derived_from=r.derived_from,
            )
        )

    def upsert_state(self, customer_id: str, st: PurposeState) -> None:
        values = {
            "decision": st.decision.value,
            "notice_version": st.notice_version,
            "channel": st.channel.value,
            "decided_at": st.decided_at,
            "expires_at": st.expires_at,
            "record_id": st.record_id,
            "gpc_conflict": st.gpc_conflict,
        }
        self.s.execute(
            _insert(self.s, _STATE)
            .values(customer_id=customer_id, purpose=st.purpose, **values)
            .on_conflict_do_update(index_elements=["customer_id", "purpose"], set_=values)
        )

    def delete_state(self, customer_id: str, purpose: str) -> None:
        self.s.execute(
            sa.delete(_STATE).where(
                _STATE.c.customer_id == customer_id, _STATE.c.purpose == purpose
            )
        )

    def history(self, customer_id: str) -> list[ConsentRecord]:
        """The customer's ledger, oldest first."""
        rows = self.s.execute(
            sa.select(_RECORD)
            .where(_RECORD.c.customer_id == customer_id)
            .order_by(_RECORD.c.recorded_at, _RECORD.c.record_id)
        )
        return [_record(r) for r in rows]

    # -- GPC signals ---------------------------------------------------------
    def mark_gpc(self, customer_id: str, now: datetime, event_id: str) -> None:
        self.s.execute(
            _insert(self.s, _GPC)
            .values(customer_id=customer_id, first_seen_at=now, last_seen_at=now, event_id=event_id)
            .on_conflict_do_update(
                index_elements=["customer_id"], set_={"last_seen_at": now, "event_id": event_id}
            )
        )

    def has_gpc(self, customer_id: str) -> bool:
        return (
            self.s.execute(sa.select(_GPC.c.customer_id).where(_GPC.c.customer_id == customer_id))
        ).first() is not None

    # -- projection reads -------------------------------------------------------
    def subjects(self, customer_ids: Sequence[str]) -> dict[str, SubjectConsent]:
        wanted = list(dict.fromkeys(customer_ids))
        out = {cid: SubjectConsent(cid) for cid in wanted}
        for i in range(0, len(wanted), 900):
            chunk = wanted[i : i + 900]
            for row in self.s.execute(sa.select(_STATE).where(_STATE.c.customer_id.in_(chunk))):
                out[row.customer_id].states[row.purpose] = _state(row)
            for cid, version in self.s.execute(
                sa.select(_SUBJECT.c.customer_id, _SUBJECT.c.version).where(
                    _SUBJECT.c.customer_id.in_(chunk)
                )
            ):
                out[cid].version = version
        return out

    def customer_ids_after(self, after: str, limit: int) -> list[str]:
        """Customers with a state, in id order (keyset paging)."""
        return [
            r[0]
            for r in self.s.execute(
                sa.select(_SUBJECT.c.customer_id)
                .where(_SUBJECT.c.customer_id > after)
                .order_by(_SUBJECT.c.customer_id)
                .limit(limit)
            )
        ]

    def subject(self, customer_id: str) -> SubjectConsent:
        return self.subjects([customer_id])[customer_id]

    def records_of(self, customer_id: str) -> list[RecordRow]:
        return list(
            self.s.exec(
                sa.select(RecordRow)  # type: ignore[call-overload]
                .where(col(RecordRow.customer_id) == customer_id)
                .order_by(col(RecordRow.recorded_at))
            ).scalars()
        )
