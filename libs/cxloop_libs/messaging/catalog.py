"""The event catalogue: which protobuf message travels under which CloudEvents
type and NATS subject.

Naming (DESIGN.md): type ``cxloop.<domain>.<noun>.<past_verb>.v1`` on subject
``cx.<domain>.<noun>.<past_verb>``; the stream of the owning service captures
``cx.<domain>.>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxloop.analytics.v1 import events_pb2 as analytics_events
from cxloop.audit.v1 import events_pb2 as audit_events
from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.feedback.v1 import events_pb2 as feedback_events
from cxloop.gateway.v1 import events_pb2 as gateway_events
from cxloop.identity.v1 import events_pb2 as identity_events
from cxloop.loyalty.v1 import events_pb2 as loyalty_events
from cxloop.personalization.v1 import events_pb2 as personalization_events
from google.protobuf.message import Message


@dataclass(frozen=True, slots=True)
class EventKind:
    domain: str
    noun: str
    verb: str
    message_type: type[Message]
    version: int = 1

    @property
    def ce_type(self) -> str:
        return f"cxloop.{self.domain}.{self.noun}.{self.verb}.v{self.version}"

    @property
    def subject(self) -> str:
        return f"cx.{self.domain}.{self.noun}.{self.verb}"

    def decode(self, data: bytes) -> Message:
        msg = self.message_type()
        msg.ParseFromString(data)
        return msg


INTERACTION_RECORDED = EventKind(
    "gateway", "interaction", "recorded", gateway_events.InteractionRecorded
)
PROFILE_CREATED = EventKind("identity", "profile", "created", identity_events.ProfileCreated)
PROFILE_UPDATED = EventKind("identity", "profile", "updated", identity_events.ProfileUpdated)
PROFILE_MERGED = EventKind("identity", "profile", "merged", identity_events.ProfileMerged)
PROFILE_SPLIT = EventKind("identity", "profile", "split", identity_events.ProfileSplit)
INTERACTION_RESOLVED = EventKind(
    "identity", "interaction", "resolved", identity_events.InteractionResolved
)
CONSENT_CHANGED = EventKind("consent", "consent", "changed", consent_events.ConsentChanged)
NOTICE_PUBLISHED = EventKind("consent", "notice", "published", consent_events.NoticePublished)
# Retention (docs/adr/0019-retention-policy.md): consent publishes the policy;
# every service reports its scheduled purge on its own stream.
RETENTION_POLICY_CHANGED = EventKind(
    "consent", "retention_policy", "changed", consent_events.RetentionPolicyChanged
)
RETENTION_PURGE_COMPLETED: dict[str, EventKind] = {
    d: EventKind(d, "retention_purge", "completed", consent_events.RetentionPurgeCompleted)
    for d in (
        "consent",
        "identity",
        "gateway",
        "personalization",
        "loyalty",
        "feedback",
        "analytics",
    )
}

# Privacy requests (data-subject requests as a saga, docs/adr/0014-privacy-request-saga.md).
PRIVACY_REQUEST_OPENED = EventKind(
    "consent", "privacy_request", "opened", consent_events.PrivacyRequestOpened
)
ERASURE_REQUESTED = EventKind("consent", "erasure", "requested", consent_events.ErasureRequested)
ACCESS_REQUESTED = EventKind("consent", "access", "requested", consent_events.AccessRequested)
RECTIFICATION_REQUESTED = EventKind(
    "consent", "rectification", "requested", consent_events.RectificationRequested
)
RESTRICTION_REQUESTED = EventKind(
    "consent", "restriction", "requested", consent_events.RestrictionRequested
)
PRIVACY_REQUEST_COMPLETED = EventKind(
    "consent", "privacy_request", "completed", consent_events.PrivacyRequestCompleted
)
PRIVACY_REQUEST_ESCALATED = EventKind(
    "consent", "privacy_request", "escalated", consent_events.PrivacyRequestEscalated
)
# What participants consume: every ``<kind>.requested`` of the consent domain.
PRIVACY_WORK_SUBJECTS = "cx.consent.*.requested"
PRIVACY_WORK: tuple[EventKind, ...] = (
    ERASURE_REQUESTED,
    ACCESS_REQUESTED,
    RECTIFICATION_REQUESTED,
    RESTRICTION_REQUESTED,
)
# Each participant answers on its own domain's stream. Every service of the
# suite is listed, so a service built later only registers its participant.
PRIVACY_PARTICIPANT_DOMAINS = (
    "consent",
    "identity",
    "gateway",
    "personalization",
    "loyalty",
    "feedback",
    "analytics",
)
PRIVACY_REQUEST_ANSWERED: dict[str, EventKind] = {
    d: EventKind(d, "privacy_request", "answered", consent_events.PrivacyRequestAnswered)
    for d in PRIVACY_PARTICIPANT_DOMAINS
}
# Audit log entries (cxloop_libs.audit, docs/adr/0020-audit-log.md): each
# service publishes its own on its own stream, ``cx.<service>.audit.recorded``.
AUDIT_RECORDED: dict[str, EventKind] = {
    d: EventKind(d, "audit", "recorded", audit_events.AuditRecorded)
    for d in PRIVACY_PARTICIPANT_DOMAINS
}

# -- loyalty (services/loyalty) -------------------------------------------------
POINTS_EARNED = EventKind("loyalty", "points", "earned", loyalty_events.PointsEarned)
POINTS_REVERSED = EventKind("loyalty", "points", "reversed", loyalty_events.PointsReversed)
POINTS_EXPIRED = EventKind("loyalty", "points", "expired", loyalty_events.PointsExpired)
TIER_CHANGED = EventKind("loyalty", "tier", "changed", loyalty_events.TierChanged)
COUPON_ISSUED = EventKind("loyalty", "coupon", "issued", loyalty_events.CouponIssued)
POINTS_PENDING = EventKind("loyalty", "points", "pending", loyalty_events.PointsPending)
POINTS_ACTIVATED = EventKind("loyalty", "points", "activated", loyalty_events.PointsActivated)
POINTS_REDEEMED = EventKind("loyalty", "points", "redeemed", loyalty_events.PointsRedeemed)
POINTS_EXPIRING = EventKind("loyalty", "points", "expiring", loyalty_events.PointsExpiring)
COUPON_REDEEMED = EventKind("loyalty", "coupon", "redeemed", loyalty_events.CouponRedeemed)
_LOYALTY: tuple[EventKind, ...] = (
    POINTS_EARNED,
    POINTS_REVERSED,
    POINTS_EXPIRED,
    TIER_CHANGED,
    COUPON_ISSUED,
    POINTS_PENDING,
    POINTS_ACTIVATED,
    POINTS_REDEEMED,
    POINTS_EXPIRING,
    COUPON_REDEEMED,
)

# -- feedback (services/feedback) -----------------------------------------------
SURVEY_INVITED = EventKind("feedback", "survey", "invited", feedback_events.SurveyInvited)
RESPONSE_RECEIVED = EventKind("feedback", "response", "received", feedback_events.ResponseReceived)
REVIEW_SUBMITTED = EventKind("feedback", "review", "submitted", feedback_events.ReviewSubmitted)
DETRACTOR_DETECTED = EventKind(
    "feedback", "detractor", "detected", feedback_events.DetractorDetected
)
FEEDBACK_ALERT_RAISED = EventKind("feedback", "alert", "raised", feedback_events.AlertRaised)
CASE_OPENED = EventKind("feedback", "case", "opened", feedback_events.CaseOpened)
CASE_RESOLVED = EventKind("feedback", "case", "resolved", feedback_events.CaseResolved)
_FEEDBACK: tuple[EventKind, ...] = (
    SURVEY_INVITED,
    RESPONSE_RECEIVED,
    REVIEW_SUBMITTED,
    DETRACTOR_DETECTED,
    FEEDBACK_ALERT_RAISED,
    CASE_OPENED,
    CASE_RESOLVED,
)

# -- personalization (services/personalization) -------------------------------
SEGMENT_ENTERED = EventKind(
    "personalization", "segment", "entered", personalization_events.SegmentEntered
)
SEGMENT_EXITED = EventKind(
    "personalization", "segment", "exited", personalization_events.SegmentExited
)
ACTION_TRIGGERED = EventKind(
    "personalization", "action", "triggered", personalization_events.ActionTriggered
)
RECOMMENDATION_SERVED = EventKind(
    "personalization", "recommendation", "served", personalization_events.RecommendationServed
)
CATALOG_CHANGED = EventKind(
    "personalization", "catalog", "changed", personalization_events.CatalogChanged
)
INTERACTIONS_LEARNED = EventKind(
    "personalization", "interactions", "learned", personalization_events.InteractionsLearned
)
EXPERIMENT_CHANGED = EventKind(
    "personalization", "experiment", "changed", personalization_events.ExperimentChanged
)
EXPERIMENT_RESULTS_PUBLISHED = EventKind(
    "personalization",
    "experiment_results",
    "published",
    personalization_events.ExperimentResultsPublished,
)
MODEL_TUNED = EventKind("personalization", "model", "tuned", personalization_events.ModelTuned)
_PERSONALIZATION: tuple[EventKind, ...] = (
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
    ACTION_TRIGGERED,
    RECOMMENDATION_SERVED,
    CATALOG_CHANGED,
    INTERACTIONS_LEARNED,
    EXPERIMENT_CHANGED,
    EXPERIMENT_RESULTS_PUBLISHED,
    MODEL_TUNED,
)

# -- analytics (services/analytics) ---------------------------------------------
ANALYTICS_ALERT_RAISED = EventKind("analytics", "alert", "raised", analytics_events.AlertRaised)
_ANALYTICS: tuple[EventKind, ...] = (ANALYTICS_ALERT_RAISED,)

_ALL: tuple[EventKind, ...] = (
    INTERACTION_RECORDED,
    PROFILE_CREATED,
    PROFILE_UPDATED,
    PROFILE_MERGED,
    PROFILE_SPLIT,
    INTERACTION_RESOLVED,
    CONSENT_CHANGED,
    NOTICE_PUBLISHED,
    RETENTION_POLICY_CHANGED,
    *RETENTION_PURGE_COMPLETED.values(),
    PRIVACY_REQUEST_OPENED,
    *PRIVACY_WORK,
    PRIVACY_REQUEST_COMPLETED,
    PRIVACY_REQUEST_ESCALATED,
    *PRIVACY_REQUEST_ANSWERED.values(),
    *AUDIT_RECORDED.values(),
    *_LOYALTY,
    *_FEEDBACK,
    *_PERSONALIZATION,
    *_ANALYTICS,
)
BY_CE_TYPE: dict[str, EventKind] = {k.ce_type: k for k in _ALL}


def kind_for_type(ce_type: str) -> EventKind | None:
    return BY_CE_TYPE.get(ce_type)
