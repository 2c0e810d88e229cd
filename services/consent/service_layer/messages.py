"""Domain objects to protobuf messages (events and gRPC answers share them)."""

from __future__ import annotations

from datetime import datetime

from cxloop.consent.v1 import consent_service_pb2 as svc
from cxloop.consent.v1 import events_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from consent.domain.ledger import Channel, PurposeState, SubjectConsent
from consent.domain.purposes import Catalogue, Notice, Purpose

CHANNEL_TO_PROTO = {
    Channel.WEB_FORM: pb.CONSENT_CHANNEL_WEB_FORM,
    Channel.APP: pb.CONSENT_CHANNEL_APP,
    Channel.CALL_CENTRE: pb.CONSENT_CHANNEL_CALL_CENTRE,
    Channel.GPC_SIGNAL: pb.CONSENT_CHANNEL_GPC_SIGNAL,
    Channel.IMPORT: pb.CONSENT_CHANNEL_IMPORT,
}
CHANNEL_FROM_PROTO = {int(v): k for k, v in CHANNEL_TO_PROTO.items()}


def ts(dt: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


def purpose_state(st: PurposeState, *, needs_reconsent: bool = False) -> pb.PurposeState:
    msg = pb.PurposeState(
        purpose=st.purpose,
        decision=st.decision.to_proto(),
        notice_version=str(st.notice_version),
        channel=CHANNEL_TO_PROTO[st.channel],
        decided_at=ts(st.decided_at),
        record_id=st.record_id,
        needs_reconsent=needs_reconsent,
        conflicts_with_gpc=st.gpc_conflict,
    )
    if st.expires_at is not None:
        msg.expires_at.CopyFrom(ts(st.expires_at))
    return msg


def subject_states(subject: SubjectConsent, catalogue: Catalogue) -> list[pb.PurposeState]:
    return [
        purpose_state(st, needs_reconsent=subject.needs_reconsent(catalogue, key))
        for key, st in sorted(subject.states.items())
    ]


def consent_changed(
    subject: SubjectConsent, catalogue: Catalogue, *, changed_purpose: str, record_id: str
) -> pb.ConsentChanged:
    return pb.ConsentChanged(
        customer_id=subject.customer_id,
        purposes=subject_states(subject, catalogue),
        changed_purpose=changed_purpose,
        record_id=record_id,
        version=subject.version,
    )


def notice_published(purpose: Purpose) -> pb.NoticePublished:
    n = purpose.current
    return pb.NoticePublished(
        purpose=purpose.key,
        legal_basis=purpose.legal_basis.to_proto(),
        mandatory=purpose.mandatory,
        notice_version=str(n.version),
        reconsent_from_version=str(purpose.reconsent_from),
        substantive=n.substantive,
        published_at=ts(n.published_at),
    )


def notice(n: Notice) -> svc.Notice:
    msg = svc.Notice(
        version=str(n.version),
        text_ko=n.text_ko,
        text_en=n.text_en,
        substantive=n.substantive,
        published_at=ts(n.published_at),
    )
    if n.third_party is not None:
        t = n.third_party
        msg.third_party.CopyFrom(
            svc.ThirdPartyProvision(
                recipient=t.recipient, purpose=t.purpose, items=list(t.items), retention=t.retention
            )
        )
    return msg


def purpose(p: Purpose) -> svc.Purpose:
    return svc.Purpose(
        key=p.key,
        legal_basis=p.legal_basis.to_proto(),
        mandatory=p.mandatory,
        notice=notice(p.current),
        reconsent_from_version=str(p.reconsent_from),
        validity_days=p.validity_days,
    )
