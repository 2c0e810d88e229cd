"""Feedback's use cases. Every method takes the caller's session: state
changes and the events reporting them commit together (outbox)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cxloop.feedback.v1 import events_pb2 as epb
from cxloop.identity.v1 import events_pb2 as ipb
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import Session

from cxloop_libs.db import bulk_insert
from cxloop_libs.errors import FailedPrecondition, NotFound, Unavailable
from cxloop_libs.messaging import OutboxWriter, ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import KeyShredded, SubjectKey, SubjectKeyring
from feedback.adapters import kpi_store
from feedback.adapters import tables as t
from feedback.domain import cases as dc
from feedback.domain.anomaly import DailyValue, DetectorSettings, detect_drops, detect_spikes
from feedback.domain.invitations import (
    ContactHistory,
    ContactPolicy,
    ResponseTokens,
    TriggerRule,
    contact_refusal,
    sampled,
)
from feedback.domain.surveys import (
    SCALES,
    AnswerValue,
    InvalidInput,
    QuestionType,
    RawAnswer,
    ScoreTally,
    SurveyVersion,
    is_detractor,
    kpi_value,
    parse_survey,
    survey_document,
    validate_answers,
)
from feedback.domain.text import SentimentLabel, TextAnalysis, text_problem
from feedback.service_layer.analysis import TextAnalyzer

log = logging.getLogger(__name__)
_NS = uuid.UUID("7c0f3d52-9a0e-4d59-9d0a-3f4c1b8e6a21")
ANSWER_CONTEXT = b"feedback.answer"
REVIEW_CONTEXT = b"feedback.review"
VOICE_CONTEXT = b"feedback.voice"
NOTE_CONTEXT = b"feedback.case_note"
RESOLUTION_CONTEXT = b"feedback.case_resolution"
JOURNEY_STAGES = frozenset({"", "awareness", "consideration", "purchase", "post_purchase"})
METRIC_PROTO = {
    QuestionType.NPS: epb.KPI_METRIC_NPS,
    QuestionType.CSAT: epb.KPI_METRIC_CSAT,
    QuestionType.CES: epb.KPI_METRIC_CES,
}
CHANNEL_PROTO = {
    "email": epb.INVITATION_CHANNEL_EMAIL,
    "sms": epb.INVITATION_CHANNEL_SMS,
    "app_push": epb.INVITATION_CHANNEL_APP_PUSH,
    "in_product": epb.INVITATION_CHANNEL_IN_PRODUCT,
}


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def ts(dt: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(dt.astimezone(UTC))
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class ConsentCheck(Protocol):
    def may_use(self, customer_id: str, purpose: str) -> bool: ...

    @property
    def is_ready(self) -> bool: ...


def _check_customer(customer_id: str, field_name: str = "customer_id") -> str:
    if not customer_id or len(customer_id) > 64 or not customer_id.isprintable():
        raise InvalidInput(field_name, "1-64 printable characters")
    return customer_id


def _check_key(value: str, field_name: str) -> str:
    if len(value) > 128:
        raise InvalidInput(field_name, "at most 128 characters")
    return value


def _check_dim(value: str, field_name: str) -> str:
    if len(value) > 64 or (value and not value.isprintable()):
        raise InvalidInput(field_name, "at most 64 printable characters")
    return value


@dataclass(frozen=True, slots=True)
class ResponseInput:
    answers: tuple[RawAnswer, ...]
    token: str = ""
    survey_id: str = ""
    survey_version: int = 0
    customer_id: str = ""
    partial: bool = False
    submitted_at: datetime | None = None
    idempotency_key: str = ""
    channel: str = ""
    touchpoint: str = ""
    segment: str = ""
    journey_stage: str = ""


@dataclass(frozen=True, slots=True)
class ResponseResult:
    response_id: str
    complete: bool
    detractor: bool = False
    case_id: str = ""
    analysis: TextAnalysis | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: str
    analysis: TextAnalysis | None
    case_id: str = ""


@dataclass(slots=True)
class FeedbackConfig:
    survey_purpose: str = "survey_contact"
    contact_policy: ContactPolicy = field(default_factory=ContactPolicy)
    kpi_time_zone: str = "Asia/Seoul"
    follow_up_survey_id: str = ""
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    # Anomalies are alerted only for days this recent (older ones are history).
    alert_lookback_days: int = 7


class FeedbackHandlers:
    def __init__(
        self,
        *,
        keyring: SubjectKeyring,
        tokens: ResponseTokens,
        consent: ConsentCheck,
        analyzer: Callable[[], TextAnalyzer | None],
        config: FeedbackConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.keyring = keyring
        self.tokens = tokens
        self.consent = consent
        self._analyzer = analyzer
        self.config = config or FeedbackConfig()
        self.tz = ZoneInfo(self.config.kpi_time_zone)
        self.clock = clock
        # Published versions never change: safe to keep in every replica.
        self._versions: dict[tuple[str, int], SurveyVersion] = {}

    # -- text analytics ----------------------------------------------------
    def analyze(self, texts: Sequence[str], *, keywords: bool = True) -> list[TextAnalysis]:
        if not texts:
            return []
        analyzer = self._analyzer()
        if analyzer is None:
            raise Unavailable("the text analytics model is still loading; retry shortly")
        return analyzer.analyze(texts, keywords=keywords)

    # -- surveys -------------------------------------------------------------
    def put_survey(self, session: Session, document: str) -> tuple[SurveyVersion, datetime]:
        if len(document) > 200_000:
            raise InvalidInput("survey_json", "larger than 200,000 characters")
        try:
            doc = json.loads(document)
        except ValueError:
            raise InvalidInput("survey_json", "not JSON") from None
        parsed = parse_survey(doc)
        latest = self._latest_row(session, parsed.survey_id)
        if latest is not None:
            current = self._version_from_row(latest)
            same = survey_document(current) | {"version": 0}
            if same == survey_document(parsed) | {"version": 0}:
                return current, _aware(latest.created_at)  # an unchanged re-import
            version = int(latest.version) + 1
        else:
            version = 1
        survey = parse_survey(doc, survey_id=parsed.survey_id, version=version)
        now = self.clock()
        session.execute(
            sa.insert(t.survey).values(
                survey_id=survey.survey_id,
                version=version,
                name=survey.name,
                document=json.dumps(survey_document(survey), ensure_ascii=False),
                created_at=now,
            )
        )
        return survey, now

    def _latest_row(self, session: Session, survey_id: str) -> Any:
        return session.execute(
            sa.select(t.survey)
            .where(t.survey.c.survey_id == survey_id)
            .order_by(t.survey.c.version.desc())
            .limit(1)
        ).first()

    def _version_from_row(self, row: Any) -> SurveyVersion:
        key = (str(row.survey_id), int(row.version))
        got = self._versions.get(key)
        if got is None:
            got = parse_survey(json.loads(row.document), survey_id=key[0], version=key[1])
            self._versions[key] = got
        return got

    def get_survey(
        self, session: Session, survey_id: str, version: int = 0, *, field_prefix: str = ""
    ) -> tuple[SurveyVersion, datetime]:
        if version < 0:
            raise InvalidInput(f"{field_prefix}survey_version", "0 (latest) or a version number")
        q = sa.select(t.survey).where(t.survey.c.survey_id == survey_id)
        if version:
            row = session.execute(q.where(t.survey.c.version == version)).first()
            if row is None:
                if self._latest_row(session, survey_id) is not None:
                    raise InvalidInput(
                        f"{field_prefix}survey_version", f"unknown version {version}"
                    )
                raise NotFound(f"survey {survey_id[:64]!r}")
        else:
            row = self._latest_row(session, survey_id)
            if row is None:
                raise NotFound(f"survey {survey_id[:64]!r}")
        return self._version_from_row(row), _aware(row.created_at)

    def list_surveys(self, session: Session) -> list[tuple[SurveyVersion, datetime]]:
        latest = (
            sa.select(t.survey.c.survey_id, sa.func.max(t.survey.c.version).label("v"))
            .group_by(t.survey.c.survey_id)
            .subquery()
        )
        rows = session.execute(
            sa.select(t.survey)
            .join(
                latest,
                sa.and_(
                    t.survey.c.survey_id == latest.c.survey_id, t.survey.c.version == latest.c.v
                ),
            )
            .order_by(t.survey.c.survey_id)
        )
        return [(self._version_from_row(r), _aware(r.created_at)) for r in rows]

    # -- triggers --------------------------------------------------------------
    def put_trigger(
        self, session: Session, trigger_id: str, rule: TriggerRule, active: bool
    ) -> None:
        if not trigger_id or len(trigger_id) > 64:
            raise InvalidInput("trigger.trigger_id", "1-64 characters")
        if not rule.event or len(rule.event) > 200:
            raise InvalidInput("trigger.event", "1-200 characters")
        if not 0.0 <= rule.sample_rate <= 1.0:
            raise InvalidInput("trigger.sample_rate", "0..1")
        if rule.delay < timedelta(0) or rule.delay > timedelta(days=365):
            raise InvalidInput("trigger.delay_seconds", "0 .. 365 days")
        if rule.expires_after <= timedelta(0) or rule.expires_after > timedelta(days=365):
            raise InvalidInput("trigger.expires_after_seconds", "1 s .. 365 days")
        if rule.journey_stage not in JOURNEY_STAGES:
            raise InvalidInput("trigger.journey_stage", f"one of {sorted(JOURNEY_STAGES)}")
        _check_dim(rule.touchpoint, "trigger.touchpoint")
        for s in rule.segments:
            _check_dim(s, "trigger.segments")
        self.get_survey(session, rule.survey_id)  # NotFound for an unknown survey
        values = {
            "survey_id": rule.survey_id,
            "event": rule.event,
            "delay_s": int(rule.delay.total_seconds()),
            "sample_rate": rule.sample_rate,
            "segments": json.dumps(list(rule.segments)),
            "channel": rule.channel,
            "touchpoint": rule.touchpoint,
            "journey_stage": rule.journey_stage,
            "expires_s": int(rule.expires_after.total_seconds()),
            "active": active,
        }
        updated: Any = session.execute(
            sa.update(t.trigger).where(t.trigger.c.trigger_id == trigger_id).values(**values)
        )
        if not updated.rowcount:
            session.execute(sa.insert(t.trigger).values(trigger_id=trigger_id, **values))

    def list_triggers(self, session: Session) -> list[tuple[str, TriggerRule, bool]]:
        return [
            (str(r.trigger_id), self._rule(r), bool(r.active))
            for r in session.execute(sa.select(t.trigger).order_by(t.trigger.c.trigger_id))
        ]

    @staticmethod
    def _rule(r: Any) -> TriggerRule:
        return TriggerRule(
            survey_id=r.survey_id,
            event=r.event,
            delay=timedelta(seconds=int(r.delay_s)),
            sample_rate=float(r.sample_rate),
            segments=tuple(json.loads(r.segments)),
            channel=r.channel,
            touchpoint=r.touchpoint,
            journey_stage=r.journey_stage,
            expires_after=timedelta(seconds=int(r.expires_s)),
        )

    # -- invitations -------------------------------------------------------
    def on_interactions(self, session: Session, events: list[ReceivedEvent]) -> None:
        """Identity's ``interaction resolved``: schedule the invitations the
        triggers ask for; those due now are sent in the same transaction."""
        resolved: list[tuple[str, ipb.InteractionResolved]] = []
        for e in events:
            msg = ev.INTERACTION_RESOLVED.decode(e.data)
            assert isinstance(msg, ipb.InteractionResolved)
            if msg.customer_id and msg.interaction.name:
                resolved.append((e.id, msg))
        if not resolved:
            return
        names = sorted({m.interaction.name for _, m in resolved})
        rules: dict[str, list[TriggerRule]] = {}
        for r in session.execute(
            sa.select(t.trigger).where(t.trigger.c.event.in_(names), t.trigger.c.active.is_(True))
        ):
            rules.setdefault(r.event, []).append(self._rule(r))
        if not rules:
            return
        now = self.clock()
        rows = []
        for event_id, msg in resolved:
            props = json_format.MessageToDict(msg.interaction.properties)
            segment = str(props.get("segment") or "")
            occurred = (
                msg.interaction.occurred_at.ToDatetime(tzinfo=UTC)
                if msg.interaction.HasField("occurred_at")
                else now
            )
            for rule in rules.get(msg.interaction.name, []):
                if rule.segments and segment not in rule.segments:
                    continue
                if not sampled(msg.customer_id, event_id, rule.sample_rate):
                    continue
                if self.consent.is_ready and not self.consent.may_use(
                    msg.customer_id, self.config.survey_purpose
                ):
                    continue  # asked again when sending: consent may change meanwhile
                version = self.get_survey(session, rule.survey_id)[0].version
                due = max(occurred + rule.delay, now) if rule.delay else now
                rows.append(
                    {
                        "invitation_id": derived_id("invitation", rule.survey_id, event_id),
                        "survey_id": rule.survey_id,
                        "survey_version": version,
                        "customer_id": msg.customer_id,
                        "channel": rule.channel,
                        "touchpoint": rule.touchpoint or msg.interaction.name,
                        "journey_stage": rule.journey_stage,
                        "segment": segment[:64],
                        "cause_event_id": event_id,
                        "case_id": "",
                        "created_at": now,
                        "due_at": due,
                        "expires_at": due + rule.expires_after,
                        "status": "scheduled",
                    }
                )
        if rows:
            # Unique per (survey, customer, cause): a replayed event adds nothing.
            existing = {
                r[0]
                for r in session.execute(
                    sa.select(t.invitation.c.invitation_id).where(
                        t.invitation.c.invitation_id.in_([r["invitation_id"] for r in rows])
                    )
                )
            }
            rows = [r for r in rows if r["invitation_id"] not in existing]
            if rows:
                session.execute(sa.insert(t.invitation), rows)
            self.dispatch_due(session, now)

    def dispatch_due(self, session: Session, now: datetime | None = None, limit: int = 500) -> int:
        """Sends scheduled invitations that are due (consent and the contact
        gate checked now); returns how many were sent."""
        now = now or self.clock()
        if not self.consent.is_ready:
            return 0  # consent not loaded yet: the invitations wait, none is lost
        q = (
            sa.select(t.invitation)
            .where(t.invitation.c.status == "scheduled", t.invitation.c.due_at <= now)
            .order_by(t.invitation.c.due_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)  # replicas share the work
        due = list(session.execute(q))
        if not due:
            return 0
        customers = sorted({r.customer_id for r in due})
        last_any = {
            r.customer_id: _aware(r.last_invited_at)
            for r in session.execute(
                sa.select(t.contact).where(t.contact.c.customer_id.in_(customers))
            )
        }
        sent = 0
        outbox = OutboxWriter(session)
        for inv in due:
            status = self._send_status(session, inv, now, last_any)
            session.execute(
                sa.update(t.invitation)
                .where(t.invitation.c.invitation_id == inv.invitation_id)
                .values(status=status, sent_at=now if status == "sent" else None)
            )
            if status != "sent":
                continue
            sent += 1
            last_any[inv.customer_id] = now
            self._touch_contact(session, inv.customer_id, now)
            self._stage_invited(outbox, inv, now)
        outbox.flush()
        return sent

    def _send_status(
        self, session: Session, inv: Any, now: datetime, last_any: Mapping[str, datetime]
    ) -> str:
        if _aware(inv.expires_at) <= now:
            return "skipped:expired"
        if not self.consent.may_use(inv.customer_id, self.config.survey_purpose):
            return "skipped:consent"
        if inv.case_id:
            return "sent"  # a case's follow-up answers the customer's own complaint
        last_this = session.execute(
            sa.select(sa.func.max(t.invitation.c.sent_at)).where(
                t.invitation.c.customer_id == inv.customer_id,
                t.invitation.c.survey_id == inv.survey_id,
            )
        ).scalar()
        last_resp = session.execute(
            sa.select(sa.func.max(t.response.c.submitted_at)).where(
                t.response.c.customer_id == inv.customer_id,
                t.response.c.survey_id == inv.survey_id,
            )
        ).scalar()
        refusal = contact_refusal(
            self.config.contact_policy,
            ContactHistory(
                last_any.get(inv.customer_id),
                _aware(last_this) if last_this else None,
                _aware(last_resp) if last_resp else None,
            ),
            now,
        )
        return f"skipped:{refusal}" if refusal else "sent"

    def _touch_contact(self, session: Session, customer_id: str, now: datetime) -> None:
        updated: Any = session.execute(
            sa.update(t.contact)
            .where(t.contact.c.customer_id == customer_id)
            .values(last_invited_at=now)
        )
        if not updated.rowcount:
            session.execute(
                sa.insert(t.contact).values(customer_id=customer_id, last_invited_at=now)
            )

    def _stage_invited(self, outbox: OutboxWriter, inv: Any, now: datetime) -> None:
        outbox.stage(
            ev.SURVEY_INVITED,
            epb.SurveyInvited(
                invitation_id=inv.invitation_id,
                survey_id=inv.survey_id,
                customer_id=inv.customer_id,
                channel=CHANNEL_PROTO.get(inv.channel, epb.INVITATION_CHANNEL_UNSPECIFIED),
                cause_event_id=inv.cause_event_id,
                invited_at=ts(now),
                expires_at=ts(_aware(inv.expires_at)),
                response_token=self.tokens.issue(inv.invitation_id),
                survey_version=int(inv.survey_version),
                touchpoint=inv.touchpoint,
                journey_stage=inv.journey_stage,
                case_id=inv.case_id,
            ),
            subject=inv.customer_id,
            event_id=derived_id("invited", inv.invitation_id),
        )

    # -- responses ---------------------------------------------------------
    def submit_responses(
        self, session: Session, items: Sequence[ResponseInput]
    ) -> list[ResponseResult | BaseException]:
        """Each item stands alone: a bad one gets its error, the others are
        stored; an item is stored whole or not at all (savepoint)."""
        now = self.clock()
        prepared: list[Any] = []
        used_tokens: set[str] = set()
        surveys: dict[tuple[str, int], SurveyVersion] = {}
        done = self._stored_by_key(session, [i.idempotency_key for i in items])
        # A retry that arrives in the same batch as its first attempt gets
        # the first attempt's answer.
        first_with_key: dict[str, int] = {}
        repeats: dict[int, int] = {}
        for n, item in enumerate(items):
            key = item.idempotency_key
            if key and key not in done and key in first_with_key:
                repeats[n] = first_with_key[key]
                prepared.append(None)
                continue
            if key:
                first_with_key.setdefault(key, n)
            try:
                prepared.append(
                    self._prepare_response(session, item, now, used_tokens, surveys, done)
                )
            except Exception as exc:
                prepared.append(exc)
        texts: list[str] = []
        for p in prepared:
            if isinstance(p, _Prepared):
                texts += p.texts.values()
        try:
            analyses = iter(self.analyze(texts, keywords=False))
        except Exception as exc:
            prepared = [exc if isinstance(p, _Prepared) and p.texts else p for p in prepared]
            analyses = iter(())
        keys = self.keyring.keys(
            session,
            [p.customer_id for p in prepared if isinstance(p, _Prepared) and p.texts],
            create=True,
        )
        staged: list[dict[str, object]] = []
        scored: list[kpi_store.ScoredResponse] = []
        results: list[ResponseResult | BaseException | None] = []
        built: list[tuple[int, _Prepared, list[TextAnalysis]]] = []
        for p in prepared:
            if p is None:
                results.append(None)  # a repeat, set below
            elif not isinstance(p, _Prepared):
                results.append(p)
            elif p.existing is not None:
                results.append(p.existing)
            else:
                built.append((len(results), p, [next(analyses) for _ in p.texts]))
                results.append(None)  # set below
        # The whole batch's rows in one statement per table, in one
        # savepoint; if any row is refused (a concurrent writer took an
        # idempotency key), the items are stored one by one instead so the
        # others keep their place.
        writes = _Writes()
        batch_out = OutboxWriter(None)
        batch_scored: list[kpi_store.ScoredResponse] = []
        stored: list[tuple[int, ResponseResult | BaseException]] = []
        for i, p, text_analyses in built:
            try:
                result, score = self._store_response(
                    writes, batch_out, p, text_analyses, keys.get(p.customer_id), now
                )
            except Exception as exc:
                stored.append((i, exc))
                continue
            stored.append((i, result))
            if score is not None:
                batch_scored.append(score)
        nested = session.begin_nested()
        try:
            writes.apply(session)
            nested.commit()
            staged += batch_out.drain()
            scored += batch_scored
        except sa.exc.DBAPIError:
            nested.rollback()
            stored = []
            for i, p, text_analyses in built:
                outbox = OutboxWriter(None)  # this item's events, kept only if it is stored
                one = _Writes()
                nested = session.begin_nested()
                try:
                    result, score = self._store_response(
                        one, outbox, p, text_analyses, keys.get(p.customer_id), now
                    )
                    one.apply(session)
                    nested.commit()
                except Exception as exc:
                    nested.rollback()
                    stored.append((i, exc))
                    continue
                staged += outbox.drain()
                if score is not None:
                    scored.append(score)
                stored.append((i, result))
        for i, r in stored:
            results[i] = r
        for n, first in repeats.items():
            r = results[first]
            results[n] = (
                ResponseResult(r.response_id, r.complete, False)
                if isinstance(r, ResponseResult)
                else r
            )
        if staged:
            bulk_insert(session, OutboxWriter.TABLE, staged)
        kpi_store.add_responses(session, scored)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _stored_by_key(self, session: Session, keys: Sequence[str]) -> dict[str, ResponseResult]:
        """Responses already stored under these idempotency keys, in one query."""
        wanted = sorted({k for k in keys if k and len(k) <= 128})
        out: dict[str, ResponseResult] = {}
        for i in range(0, len(wanted), 500):
            for row in session.execute(
                sa.select(
                    t.response.c.idempotency_key, t.response.c.response_id, t.response.c.complete
                ).where(t.response.c.idempotency_key.in_(wanted[i : i + 500]))
            ):
                out[row.idempotency_key] = ResponseResult(
                    row.response_id, bool(row.complete), False
                )
        return out

    def _survey_for(
        self,
        session: Session,
        cache: dict[tuple[str, int], SurveyVersion],
        survey_id: str,
        version: int,
    ) -> SurveyVersion:
        """get_survey once per survey and version in a batch."""
        got = cache.get((survey_id, version))
        if got is None:
            got, _ = self.get_survey(session, survey_id, version)
            cache[(survey_id, version)] = got
        return got

    def _prepare_response(
        self,
        session: Session,
        item: ResponseInput,
        now: datetime,
        used_tokens: set[str],
        surveys: dict[tuple[str, int], SurveyVersion],
        done: Mapping[str, ResponseResult],
    ) -> _Prepared:
        if item.idempotency_key:
            _check_key(item.idempotency_key, "idempotency_key")
            existing = done.get(item.idempotency_key)
            if existing is not None:
                return _Prepared.done(existing)
        for name in ("channel", "touchpoint", "segment"):
            _check_dim(getattr(item, name), name)
        if item.journey_stage not in JOURNEY_STAGES:
            raise InvalidInput("journey_stage", f"one of {sorted(JOURNEY_STAGES - {''})}")
        submitted = item.submitted_at or now
        if submitted > now + timedelta(minutes=5):
            raise InvalidInput("submitted_at", "in the future")
        invitation = None
        previous = None
        dims = {
            "channel": item.channel,
            "touchpoint": item.touchpoint,
            "segment": item.segment,
            "journey_stage": item.journey_stage,
        }
        if item.token:
            invitation_id = self.tokens.verify(item.token)
            if invitation_id in used_tokens:
                raise InvalidInput("token", "already used")
            invitation = session.execute(
                sa.select(t.invitation).where(t.invitation.c.invitation_id == invitation_id)
            ).first()
            if invitation is None:
                raise InvalidInput("token", "unknown invitation")
            if invitation.status != "sent" and not str(invitation.status).startswith("answer"):
                raise InvalidInput("token", "this invitation was not sent")
            if _aware(invitation.expires_at) <= now:
                raise InvalidInput("token", "expired")
            if invitation.response_id:
                previous = session.execute(
                    sa.select(t.response).where(t.response.c.response_id == invitation.response_id)
                ).first()
                if previous is not None and previous.complete:
                    raise InvalidInput("token", "already used")
            used_tokens.add(invitation_id)
            survey = self._survey_for(
                session, surveys, invitation.survey_id, int(invitation.survey_version)
            )
            customer_id = invitation.customer_id
            for d in ("channel", "touchpoint", "segment", "journey_stage"):
                dims[d] = getattr(invitation, d) or dims[d]
        else:
            if not item.survey_id:
                raise InvalidInput("survey_id", "required without a token")
            customer_id = _check_customer(item.customer_id)
            try:
                survey = self._survey_for(session, surveys, item.survey_id, item.survey_version)
            except NotFound:
                raise InvalidInput("survey_id", "unknown survey") from None
        if item.token and item.survey_version and item.survey_version != survey.version:
            raise InvalidInput("survey_version", f"the invitation is for version {survey.version}")
        merged = list(item.answers)
        if previous is not None:
            merged = (
                self._previous_answers(session, previous, {a.question_id for a in item.answers})
                + merged
            )
        answers = validate_answers(survey, merged, partial=item.partial, text_check=text_problem)
        texts = {q: a.text for q, a in answers.items() if a.text is not None}
        return _Prepared(
            survey=survey,
            customer_id=customer_id,
            invitation=invitation,
            previous=previous,
            answers=answers,
            texts=texts,
            complete=not item.partial,
            submitted=submitted,
            idempotency_key=item.idempotency_key or None,
            dims=dims,
        )

    def _previous_answers(self, session: Session, row: Any, replaced: set[str]) -> list[RawAnswer]:
        out: list[RawAnswer] = []
        for qid, v in json.loads(row.answers).items():
            if qid in replaced:
                continue
            if "score" in v:
                out.append(RawAnswer(qid, score=int(v["score"])))
            for c in v.get("choices", []):
                out.append(RawAnswer(qid, choice_id=c))
        if row.text_sealed:
            try:
                texts = json.loads(
                    self.keyring.open(
                        session, row.customer_id, bytes(row.text_sealed), context=ANSWER_CONTEXT
                    )
                )
            except KeyShredded:
                texts = {}
            out += [RawAnswer(q, text=x) for q, x in texts.items() if q not in replaced]
        return out

    def _store_response(
        self,
        writes: _Writes,
        outbox: OutboxWriter,
        p: _Prepared,
        analyses: list[TextAnalysis],
        key: SubjectKey | None,
        now: datetime,
    ) -> tuple[ResponseResult, kpi_store.ScoredResponse | None]:
        response_id = p.previous.response_id if p.previous is not None else str(uuid.uuid4())
        primary = p.survey.primary
        score = None
        if primary is not None and primary.id in p.answers:
            score = p.answers[primary.id].score
        metric = primary.type if primary is not None else QuestionType.RATING
        # The comment's overall sentiment: the most negative of its texts.
        analysis = min(analyses, key=lambda a: a.sentiment.score) if analyses else None
        sealed_texts = (
            key.seal(json.dumps(p.texts, ensure_ascii=False).encode(), context=ANSWER_CONTEXT)
            if p.texts and key is not None
            else None
        )
        plain = {
            q: ({"score": a.score} if a.score is not None else {"choices": list(a.choices)})
            for q, a in p.answers.items()
            if a.text is None
        }
        aspects = sorted({m.aspect.value for a in analyses for m in a.aspects})
        negative_aspects = sorted(
            {
                m.aspect.value
                for a in analyses
                for m in a.aspects
                if m.sentiment is SentimentLabel.NEGATIVE
            }
        )
        values = {
            "survey_id": p.survey.survey_id,
            "survey_version": p.survey.version,
            "invitation_id": p.invitation.invitation_id if p.invitation is not None else None,
            "customer_id": p.customer_id,
            "submitted_at": p.submitted,
            "complete": p.complete,
            "channel": p.dims["channel"],
            "touchpoint": p.dims["touchpoint"],
            "segment": p.dims["segment"],
            "journey_stage": p.dims["journey_stage"],
            "metric": metric.value,
            "score": score,
            "answers": json.dumps(plain),
            "text_sealed": sealed_texts,
            "sentiment": analysis.sentiment.label.value if analysis else None,
            "sentiment_score": analysis.sentiment.score if analysis else None,
            "aspects": json.dumps(aspects),
        }
        if p.previous is not None:
            writes.response_updates.append({"b_response_id": response_id, **values})
        else:
            writes.response_inserts.append(
                {"response_id": response_id, "idempotency_key": p.idempotency_key, **values}
            )
        if p.invitation is not None:
            writes.invitation_updates.append(
                {
                    "b_invitation_id": p.invitation.invitation_id,
                    "response_id": response_id,
                    "status": "answered" if p.complete else "answering",
                }
            )
        if not p.complete:
            return ResponseResult(response_id, False, analysis=analysis), None
        recorded = []
        for qid, a in p.answers.items():
            if a.score is not None:
                recorded.append(epb.RecordedAnswer(question_id=qid, score=a.score))
            elif a.text is not None and key is not None:
                recorded.append(
                    epb.RecordedAnswer(
                        question_id=qid,
                        encrypted_text=key.seal(a.text.encode(), context=ANSWER_CONTEXT),
                    )
                )
            else:
                recorded += [epb.RecordedAnswer(question_id=qid, choice_id=c) for c in a.choices]
        outbox.stage(
            ev.RESPONSE_RECEIVED,
            epb.ResponseReceived(
                response_id=response_id,
                survey_id=p.survey.survey_id,
                invitation_id=p.invitation.invitation_id if p.invitation is not None else "",
                customer_id=p.customer_id,
                answers=recorded,
                submitted_at=ts(p.submitted),
            ),
            subject=p.customer_id,
            event_id=derived_id("response", response_id),
        )
        detractor, case_id = False, ""
        if score is not None and is_detractor(metric, score):
            detractor = True
            strongly = analysis is not None and analysis.sentiment.strongly_negative
            case_id = self._open_case(
                writes,
                outbox,
                customer_id=p.customer_id,
                source_kind="response",
                source_id=response_id,
                priority=dc.priority_for(metric.value, score, strongly),
                subject=f"{metric.value.upper()} {score} on {p.survey.name}"[:200],
                now=now,
            )
            comment = next(iter(p.texts.values()), None)
            outbox.stage(
                ev.DETRACTOR_DETECTED,
                epb.DetractorDetected(
                    response_id=response_id,
                    customer_id=p.customer_id,
                    survey_id=p.survey.survey_id,
                    metric=METRIC_PROTO.get(metric, epb.KPI_METRIC_UNSPECIFIED),
                    score=score,
                    encrypted_text=key.seal(comment.encode(), context=ANSWER_CONTEXT)
                    if comment and key is not None
                    else b"",
                    case_id=case_id,
                    detected_at=ts(now),
                ),
                subject=p.customer_id,
                event_id=derived_id("detractor", response_id),
            )
        kpi = None
        if score is not None and metric in SCALES:
            kpi = kpi_store.ScoredResponse(
                metric,
                score,
                kpi_store.local_day(p.submitted, self.tz),
                {"survey_id": p.survey.survey_id, **p.dims},
                tuple(aspects),
                tuple(negative_aspects),
            )
        return ResponseResult(response_id, True, detractor, case_id, analysis), kpi

    # -- reviews and voice -------------------------------------------------
    def submit_review(
        self,
        session: Session,
        *,
        customer_id: str,
        product_id: str,
        rating: int,
        text: str,
        idempotency_key: str = "",
        submitted_at: datetime | None = None,
        channel: str = "",
        token: str = "",
    ) -> ItemResult:
        if token:
            invitation_id = self.tokens.verify(token)
            inv = session.execute(
                sa.select(t.invitation).where(t.invitation.c.invitation_id == invitation_id)
            ).first()
            if inv is None or not str(inv.status).startswith(("sent", "answer")):
                raise InvalidInput("token", "unknown invitation")
            if _aware(inv.expires_at) <= self.clock():
                raise InvalidInput("token", "expired")
            customer_id = inv.customer_id
            # One review per invitation and product, however often it is sent.
            idempotency_key = derived_id("review-token", invitation_id, product_id[:128])
        _check_customer(customer_id)
        if not product_id or len(product_id) > 128:
            raise InvalidInput("product_id", "1-128 characters")
        if not 1 <= rating <= 5:
            raise InvalidInput("rating", "must be 1-5")
        problem = text_problem(text)
        if problem:
            raise InvalidInput("text", problem)
        _check_dim(channel, "channel")
        _check_key(idempotency_key, "idempotency_key")
        if idempotency_key:
            row = session.execute(
                sa.select(t.review).where(t.review.c.idempotency_key == idempotency_key)
            ).first()
            if row is not None:
                return ItemResult(row.review_id, None)
        now = self.clock()
        analysis = self.analyze([text])[0] if text.strip() else None
        review_id = str(uuid.uuid4())
        outbox = OutboxWriter(session)
        sealed = (
            self.keyring.seal(session, customer_id, text.encode(), context=REVIEW_CONTEXT)
            if text
            else None
        )
        session.execute(
            sa.insert(t.review).values(
                review_id=review_id,
                customer_id=customer_id,
                product_id=product_id,
                rating=rating,
                text_sealed=sealed,
                text_length=len(text),
                sentiment=analysis.sentiment.label.value if analysis else None,
                sentiment_score=analysis.sentiment.score if analysis else None,
                aspects=json.dumps(
                    sorted({m.aspect.value for m in analysis.aspects}) if analysis else []
                ),
                channel=channel,
                idempotency_key=idempotency_key or None,
                submitted_at=submitted_at or now,
            )
        )
        outbox.stage(
            ev.REVIEW_SUBMITTED,
            epb.ReviewSubmitted(
                review_id=review_id,
                customer_id=customer_id,
                product_id=product_id,
                rating=rating,
                text_length=len(text),
                submitted_at=ts(submitted_at or now),
            ),
            subject=customer_id,
            event_id=derived_id("review", review_id),
        )
        case_id = ""
        strongly = analysis is not None and analysis.sentiment.strongly_negative
        if rating == 1 or (rating <= 2 and strongly):
            case_id = self._open_case(
                session,
                outbox,
                customer_id=customer_id,
                source_kind="review",
                source_id=review_id,
                priority=dc.priority_for("review", rating, strongly),
                subject=f"{rating}-star review of {product_id}"[:200],
                now=now,
            )
        outbox.flush()
        return ItemResult(review_id, analysis, case_id)

    def record_voice(
        self,
        session: Session,
        *,
        customer_id: str,
        source: str,
        text: str,
        recorded_at: datetime | None = None,
        idempotency_key: str = "",
        channel: str = "",
    ) -> ItemResult:
        _check_customer(customer_id)
        if not source or len(source) > 64:
            raise InvalidInput("source", "1-64 characters")
        if not text.strip():
            raise InvalidInput("text", "required")
        problem = text_problem(text)
        if problem:
            raise InvalidInput("text", problem)
        _check_dim(channel, "channel")
        _check_key(idempotency_key, "idempotency_key")
        if idempotency_key:
            row = session.execute(
                sa.select(t.voice).where(t.voice.c.idempotency_key == idempotency_key)
            ).first()
            if row is not None:
                return ItemResult(row.voice_id, None)
        analysis = self.analyze([text])[0]
        voice_id = str(uuid.uuid4())
        session.execute(
            sa.insert(t.voice).values(
                voice_id=voice_id,
                customer_id=customer_id,
                source=source,
                channel=channel,
                text_sealed=self.keyring.seal(
                    session, customer_id, text.encode(), context=VOICE_CONTEXT
                ),
                sentiment=analysis.sentiment.label.value,
                sentiment_score=analysis.sentiment.score,
                aspects=json.dumps(sorted({m.aspect.value for m in analysis.aspects})),
                idempotency_key=idempotency_key or None,
                recorded_at=recorded_at or self.clock(),
            )
        )
        return ItemResult(voice_id, analysis)

    # -- cases ---------------------------------------------------------------
    def _open_case(
        self,
        session: Session | _Writes,
        outbox: OutboxWriter,
        *,
        customer_id: str,
        source_kind: str,
        source_id: str,
        priority: dc.CasePriority,
        subject: str,
        now: datetime,
    ) -> str:
        case_id = derived_id("case", source_kind, source_id)
        due = dc.due_at(priority, now)
        row = {
            "case_id": case_id,
            "customer_id": customer_id,
            "source_kind": source_kind,
            "source_id": source_id,
            "status": dc.CaseStatus.OPEN.value,
            "priority": priority.value,
            "assignee": "",
            "subject": subject,
            "opened_at": now,
            "updated_at": now,
            "due_at": due,
            "escalation_level": 0,
            "follow_up_invitation_id": "",
        }
        if isinstance(session, _Writes):
            session.case_inserts.append(row)
        else:
            session.execute(sa.insert(t.case).values(**row))
        outbox.stage(
            ev.CASE_OPENED,
            epb.CaseOpened(
                case_id=case_id,
                customer_id=customer_id,
                source_kind=source_kind,
                source_id=source_id,
                priority=priority.value,
                opened_at=ts(now),
                due_at=ts(due),
            ),
            subject=customer_id,
            event_id=derived_id("case-opened", case_id),
        )
        return case_id

    def get_case(self, session: Session, case_id: str) -> dict[str, Any]:
        row = session.execute(sa.select(t.case).where(t.case.c.case_id == case_id)).first()
        if row is None:
            raise NotFound(f"case {case_id[:64]!r}")
        return self._case_view(session, row)

    def _case_view(self, session: Session, row: Any) -> dict[str, Any]:
        view = dict(row._mapping)
        view["resolution"] = self._open_text(
            session, row.customer_id, row.resolution_sealed, RESOLUTION_CONTEXT
        )
        view["notes"] = [
            {
                "author": n.author,
                "text": self._open_text(session, row.customer_id, n.text_sealed, NOTE_CONTEXT),
                "added_at": _aware(n.added_at),
            }
            for n in session.execute(
                sa.select(t.case_note)
                .where(t.case_note.c.case_id == row.case_id)
                .order_by(t.case_note.c.id)
            )
        ]
        for k in ("opened_at", "updated_at", "due_at", "resolved_at"):
            if view.get(k) is not None:
                view[k] = _aware(view[k])
        return view

    def _open_text(self, session: Session, customer_id: str, sealed: Any, context: bytes) -> str:
        if not sealed:
            return ""
        try:
            return self.keyring.open(session, customer_id, bytes(sealed), context=context).decode()
        except KeyShredded:
            return ""

    def list_cases(
        self,
        session: Session,
        *,
        status: str = "",
        customer_id: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int | None]:
        q = sa.select(t.case)
        if status:
            q = q.where(t.case.c.status == status)
        else:
            q = q.where(t.case.c.status != dc.CaseStatus.CLOSED.value)
        if customer_id:
            q = q.where(t.case.c.customer_id == customer_id)
        rank = sa.case(
            {"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=t.case.c.priority, else_=4
        )
        q = q.order_by(rank, t.case.c.due_at, t.case.c.case_id).offset(offset).limit(limit + 1)
        rows = list(session.execute(q))
        more = len(rows) > limit
        return [self._case_view(session, r) for r in rows[:limit]], (
            offset + limit if more else None
        )

    def update_case(
        self,
        session: Session,
        *,
        case_id: str,
        status: str = "",
        note: str = "",
        actor: str = "",
        assignee: str | None = None,
        resolution: str = "",
        notify_customer: bool = False,
    ) -> dict[str, Any]:
        row = session.execute(sa.select(t.case).where(t.case.c.case_id == case_id)).first()
        if row is None:
            raise NotFound(f"case {case_id[:64]!r}")
        for name, value, limit in (("note", note, 5000), ("resolution", resolution, 5000)):
            if len(value) > limit:
                raise InvalidInput(name, f"at most {limit} characters")
            problem = text_problem(value)
            if problem:
                raise InvalidInput(name, problem)
        if len(actor) > 128:
            raise InvalidInput("actor", "at most 128 characters")
        if assignee is not None and len(assignee) > 128:
            raise InvalidInput("assignee", "at most 128 characters")
        now = self.clock()
        values: dict[str, Any] = {"updated_at": now}
        current = dc.CaseStatus(row.status)
        new = dc.CaseStatus(status) if status else current
        problem = dc.check_transition(current, new)
        if problem:
            raise FailedPrecondition(f"status: {problem}")
        resolving = new is dc.CaseStatus.RESOLVED and current is not dc.CaseStatus.RESOLVED
        if resolving and not resolution.strip():
            raise InvalidInput("resolution", "required when resolving a case")
        if new is not current:
            values["status"] = new.value
        if assignee is not None:
            values["assignee"] = assignee
        if resolution:
            values["resolution_sealed"] = self.keyring.seal(
                session, row.customer_id, resolution.encode(), context=RESOLUTION_CONTEXT
            )
        outbox = OutboxWriter(session)
        if resolving:
            values["resolved_at"] = now
            follow_up = ""
            if notify_customer:
                follow_up = self._follow_up(session, outbox, row, now)
                values["follow_up_invitation_id"] = follow_up
            outbox.stage(
                ev.CASE_RESOLVED,
                epb.CaseResolved(
                    case_id=case_id,
                    customer_id=row.customer_id,
                    encrypted_resolution=values["resolution_sealed"],
                    notify_customer=notify_customer,
                    follow_up_invitation_id=follow_up,
                    resolved_at=ts(now),
                ),
                subject=row.customer_id,
                event_id=derived_id("case-resolved", case_id, now.isoformat()),
            )
        session.execute(sa.update(t.case).where(t.case.c.case_id == case_id).values(**values))
        if note:
            session.execute(
                sa.insert(t.case_note).values(
                    case_id=case_id,
                    author=actor or "unknown",
                    text_sealed=self.keyring.seal(
                        session, row.customer_id, note.encode(), context=NOTE_CONTEXT
                    ),
                    added_at=now,
                )
            )
        outbox.flush()
        return self.get_case(session, case_id)

    def _follow_up(self, session: Session, outbox: OutboxWriter, case: Any, now: datetime) -> str:
        """The follow-up question after a resolved case: an invitation to the
        configured follow-up survey, sent now when consent allows."""
        survey_id = self.config.follow_up_survey_id
        if not survey_id:
            return ""
        try:
            survey, _ = self.get_survey(session, survey_id)
        except NotFound:
            log.warning("follow-up survey %s does not exist", survey_id[:64])
            return ""
        invitation_id = derived_id("follow-up", case.case_id)
        if session.execute(
            sa.select(t.invitation.c.invitation_id).where(
                t.invitation.c.invitation_id == invitation_id
            )
        ).first():
            return invitation_id
        session.execute(
            sa.insert(t.invitation).values(
                invitation_id=invitation_id,
                survey_id=survey_id,
                survey_version=survey.version,
                customer_id=case.customer_id,
                channel="email",
                touchpoint="case_follow_up",
                journey_stage="post_purchase",
                segment="",
                cause_event_id=f"case:{case.case_id}",
                case_id=case.case_id,
                created_at=now,
                due_at=now,
                expires_at=now + timedelta(days=14),
                status="scheduled",
            )
        )
        self.dispatch_due(session, now)
        status = session.execute(
            sa.select(t.invitation.c.status).where(t.invitation.c.invitation_id == invitation_id)
        ).scalar()
        return invitation_id if status == "sent" else ""

    def escalate_overdue(self, session: Session, now: datetime | None = None) -> int:
        """Open cases past their due time go up one priority, with an alert."""
        now = now or self.clock()
        rows = list(
            session.execute(
                sa.select(t.case)
                .where(
                    t.case.c.status.in_([s.value for s in dc.OPEN_STATES]), t.case.c.due_at <= now
                )
                .limit(500)
            )
        )
        outbox = OutboxWriter(session)
        for r in rows:
            esc = dc.escalation(
                dc.CaseStatus(r.status),
                dc.CasePriority(r.priority),
                _aware(r.due_at),
                int(r.escalation_level),
                now,
            )
            if esc is None:
                continue
            session.execute(
                sa.update(t.case)
                .where(t.case.c.case_id == r.case_id)
                .values(
                    priority=esc.priority.value,
                    due_at=esc.due_at,
                    escalation_level=esc.level,
                    updated_at=now,
                )
            )
            alert_id = derived_id("overdue", r.case_id, str(esc.level))
            outbox.stage(
                ev.FEEDBACK_ALERT_RAISED,
                epb.AlertRaised(
                    alert_id=alert_id,
                    kind=epb.ALERT_KIND_CASE_OVERDUE,
                    severity=epb.ALERT_SEVERITY_CRITICAL
                    if esc.priority is dc.CasePriority.URGENT
                    else epb.ALERT_SEVERITY_WARNING,
                    customer_id=r.customer_id,
                    case_id=r.case_id,
                    raised_at=ts(now),
                    dimension=f"escalation_level={esc.level}",
                ),
                subject=r.customer_id,
                event_id=alert_id,
            )
        outbox.flush()
        return len(rows)

    # -- KPIs ------------------------------------------------------------------
    def kpi_series(
        self,
        session: Session,
        metric: QuestionType,
        start: datetime,
        end: datetime,
        filters: Mapping[str, str],
        granularity: str = "day",
    ) -> tuple[list[tuple[datetime, ScoreTally]], ScoreTally]:
        if metric not in SCALES:
            raise InvalidInput("metric", "NPS, CSAT or CES")
        if end <= start:
            raise InvalidInput("end_time", "must be after start_time")
        if end - start > timedelta(days=3660):
            raise InvalidInput("end_time", "a range of at most 10 years")
        for k, v in filters.items():
            _check_dim(v, k)
        first = kpi_store.local_day(start, self.tz)
        last = kpi_store.local_day(end - timedelta(microseconds=1), self.tz)
        days = kpi_store.daily(session, metric, first, last, filters)
        periods: dict[int, ScoreTally] = {}
        total = ScoreTally()
        for day, tally in sorted(days.items()):
            period = self._period(day, granularity)
            periods.setdefault(period, ScoreTally()).merge(tally)
            total.merge(tally)
        return [(kpi_store.day_start(p, self.tz), tl) for p, tl in sorted(periods.items())], total

    def _period(self, day: int, granularity: str) -> int:
        if granularity == "week":
            return day - ((day + 3) % 7)  # Monday (1970-01-01 was a Thursday)
        if granularity == "month":
            d = kpi_store.day_start(day, self.tz).astimezone(self.tz).date()
            return kpi_store.local_day(datetime(d.year, d.month, 1, tzinfo=self.tz), self.tz)
        return day

    def drivers(
        self, session: Session, metric: QuestionType, start: datetime, end: datetime
    ) -> list[dict[str, float | str | int]]:
        if metric not in SCALES:
            raise InvalidInput("metric", "NPS, CSAT or CES")
        first = kpi_store.local_day(start, self.tz)
        last = kpi_store.local_day(end - timedelta(microseconds=1), self.tz)
        overall = ScoreTally()
        for tally in kpi_store.daily(session, metric, first, last, {}).values():
            overall.merge(tally)
        base = kpi_value(metric, overall)[0]
        out: list[dict[str, float | str | int]] = []
        for aspect, (tally, negative) in kpi_store.aspect_tallies(
            session, metric, first, last
        ).items():
            rest = ScoreTally(
                overall.n - tally.n,
                overall.promoters - tally.promoters,
                overall.passives - tally.passives,
                overall.detractors - tally.detractors,
                overall.satisfied - tally.satisfied,
                overall.total - tally.total,
                overall.total_sq - tally.total_sq,
            )
            with_aspect = kpi_value(metric, tally)[0]
            without = kpi_value(metric, rest)[0] if rest.n else with_aspect
            share = tally.n / overall.n if overall.n else 0.0
            out.append(
                {
                    "aspect": aspect,
                    "mentions": tally.n,
                    "kpi_when_mentioned": with_aspect,
                    "kpi_overall": base,
                    "impact": share * (with_aspect - without),
                    "negative_share": negative / tally.n if tally.n else 0.0,
                }
            )
        out.sort(key=lambda d: float(d["impact"]))
        return out

    def scan_anomalies(
        self, session: Session, until: datetime | None = None
    ) -> list[epb.AlertRaised]:
        """Detects drops on every metric's all-slice and single-dimension
        slices over the last year; alerts the recent ones not alerted yet."""
        now = self.clock()
        until = until or now - timedelta(days=1)
        last = kpi_store.local_day(until, self.tz)
        first = last - 365
        s = self.config.detector
        outbox = OutboxWriter(session)
        raised: list[epb.AlertRaised] = []
        for metric in SCALES:
            slices_: list[tuple[str, str]] = [
                ("", ""),
                *kpi_store.dimension_values(session, metric, first),
            ]
            for dim, value in slices_:
                filters = {dim: value} if dim else {}
                days = kpi_store.daily(session, metric, first, last, filters)
                series = [DailyValue(d, kpi_value(metric, tl)[0], tl.n) for d, tl in days.items()]
                found = [("kpi_drop", a) for a in detect_drops(series, s)]
                if metric is QuestionType.NPS:
                    # The share of detractors (0-6) rising is an alarm of its
                    # own: NPS can hold while promoters and detractors both grow.
                    shares = [
                        DailyValue(d, 100.0 * tl.detractors / tl.n, tl.n)
                        for d, tl in days.items()
                        if tl.n
                    ]
                    found += [("detractor_spike", a) for a in detect_spikes(shares, s)]
                for kind, a in found:
                    if a.day < last - self.config.alert_lookback_days:
                        continue
                    label = f"{dim}={value}" if dim else "all"
                    exists = session.execute(
                        sa.select(t.alert.c.alert_id).where(
                            t.alert.c.kind == kind,
                            t.alert.c.metric == metric.value,
                            t.alert.c.dimension == label,
                            t.alert.c.day == a.day,
                        )
                    ).first()
                    if exists:
                        continue
                    alert_id = (
                        derived_id("alert", metric.value, label, str(a.day))
                        if kind == "kpi_drop"
                        else derived_id("alert", kind, metric.value, label, str(a.day))
                    )
                    session.execute(
                        sa.insert(t.alert).values(
                            alert_id=alert_id,
                            kind=kind,
                            metric=metric.value,
                            dimension=label,
                            day=a.day,
                            observed=a.observed,
                            expected=a.expected,
                            raised_at=now,
                        )
                    )
                    msg = epb.AlertRaised(
                        alert_id=alert_id,
                        kind=epb.ALERT_KIND_KPI_DROP
                        if kind == "kpi_drop"
                        else epb.ALERT_KIND_DETRACTOR_SPIKE,
                        severity=epb.ALERT_SEVERITY_CRITICAL
                        if a.z >= 2 * s.k
                        else epb.ALERT_SEVERITY_WARNING,
                        metric=METRIC_PROTO[metric],
                        observed_value=a.observed,
                        expected_value=a.expected,
                        window_start=ts(kpi_store.day_start(a.day, self.tz)),
                        window_end=ts(kpi_store.day_start(a.day + 1, self.tz)),
                        raised_at=ts(now),
                        dimension=label,
                        z_score=a.z,
                        responses=days[a.day].n,
                    )
                    outbox.stage(ev.FEEDBACK_ALERT_RAISED, msg, event_id=alert_id)
                    raised.append(msg)
        outbox.flush()
        return raised


@dataclass(slots=True)
class _Prepared:
    survey: SurveyVersion
    customer_id: str
    invitation: Any
    previous: Any
    answers: dict[str, AnswerValue]
    texts: dict[str, str]
    complete: bool
    submitted: datetime
    idempotency_key: str | None
    dims: dict[str, str]
    existing: ResponseResult | None = None

    @classmethod
    def done(cls, result: ResponseResult) -> _Prepared:
        return cls(
            survey=None,  # type: ignore[arg-type]
            customer_id="",
            invitation=None,
            previous=None,
            answers={},
            texts={},
            complete=result.complete,
            submitted=utcnow(),
            idempotency_key=None,
            dims={},
            existing=result,
        )


@dataclass(slots=True)
class _Writes:
    """Rows a batch of responses writes, applied with one statement per
    table (executemany / COPY) instead of a statement per row."""

    response_inserts: list[dict[str, Any]] = field(default_factory=list)
    response_updates: list[dict[str, Any]] = field(default_factory=list)
    invitation_updates: list[dict[str, Any]] = field(default_factory=list)
    case_inserts: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, session: Session) -> None:
        bulk_insert(session, t.response, self.response_inserts)
        if self.response_updates:
            cols = [k for k in self.response_updates[0] if k != "b_response_id"]
            session.execute(
                sa.update(t.response)
                .where(t.response.c.response_id == sa.bindparam("b_response_id"))
                .values({c: sa.bindparam(c) for c in cols}),
                self.response_updates,
            )
        if self.invitation_updates:
            session.execute(
                sa.update(t.invitation)
                .where(t.invitation.c.invitation_id == sa.bindparam("b_invitation_id"))
                .values(response_id=sa.bindparam("response_id"), status=sa.bindparam("status")),
                self.invitation_updates,
            )
        bulk_insert(session, t.case, self.case_inserts)
