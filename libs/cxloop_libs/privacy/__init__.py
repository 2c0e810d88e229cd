"""Privacy requests for every service: the participant component
(:func:`join_privacy_requests`) through which a service answers erasure,
access, rectification and restriction requests of the consent service's saga."""

from cxloop_libs.privacy.participant import (
    PrivacyAnswer,
    PrivacyHandler,
    PrivacyParticipant,
    RequestKind,
    answer_event_id,
    answer_kind,
    join_privacy_requests,
)

__all__ = [
    "PrivacyAnswer",
    "PrivacyHandler",
    "PrivacyParticipant",
    "RequestKind",
    "answer_event_id",
    "answer_kind",
    "join_privacy_requests",
]
