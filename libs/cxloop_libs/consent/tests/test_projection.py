"""ConsentProjection without NATS: the rule it answers, late events dropped,
notice baselines, and the flat may_use agreeing with evaluate() everywhere."""

from __future__ import annotations

import itertools

from cxloop.consent.v1 import events_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_libs.consent import (
    ConsentProjection,
    CurrentDecision,
    Decision,
    LegalBasis,
    PurposeRule,
    Reason,
    evaluate,
)

NOW = 1_800_000_000.0


def projection() -> ConsentProjection:
    p = ConsentProjection(clock=lambda: NOW)
    for purpose, basis in [
        ("essential_service", pb.LEGAL_BASIS_CONTRACT),
        ("analytics", pb.LEGAL_BASIS_LEGITIMATE_INTEREST),
        ("marketing_email", pb.LEGAL_BASIS_CONSENT),
    ]:
        assert p.apply_notice(
            pb.NoticePublished(
                purpose=purpose, legal_basis=basis, notice_version="1", reconsent_from_version="1"
            )
        )
    return p


def changed(cid: str, version: int, **decisions: int) -> pb.ConsentChanged:
    return pb.ConsentChanged(
        customer_id=cid,
        version=version,
        purposes=[
            pb.PurposeState(purpose=k, decision=d, notice_version="1") for k, d in decisions.items()
        ],
    )


def test_default_deny_for_consent_and_allow_for_contract_and_legitimate_interest() -> None:
    p = projection()
    assert not p.may_use("c1", "marketing_email")
    assert p.verdict("c1", "marketing_email") is Reason.NO_DECISION
    assert p.may_use("c1", "essential_service")
    assert p.may_use("c1", "analytics")
    assert not p.may_use("c1", "no_such_purpose")
    assert p.verdict("c1", "no_such_purpose") is Reason.UNKNOWN_PURPOSE


def test_grant_then_withdrawal_and_objection() -> None:
    p = projection()
    assert p.apply_consent_changed(changed("c1", 1, marketing_email=pb.CONSENT_DECISION_GRANTED))
    assert p.may_use("c1", "marketing_email")
    assert p.apply_consent_changed(
        changed(
            "c1",
            2,
            marketing_email=pb.CONSENT_DECISION_WITHDRAWN,
            analytics=pb.CONSENT_DECISION_DENIED,
        )
    )
    assert not p.may_use("c1", "marketing_email")
    assert p.verdict("c1", "marketing_email") is Reason.WITHDRAWN
    assert not p.may_use("c1", "analytics")  # objection to legitimate interest
    assert p.may_use("c1", "essential_service")


def test_late_and_replayed_events_are_dropped() -> None:
    p = projection()
    p.apply_consent_changed(changed("c1", 3, marketing_email=pb.CONSENT_DECISION_WITHDRAWN))
    assert not p.apply_consent_changed(
        changed("c1", 2, marketing_email=pb.CONSENT_DECISION_GRANTED)
    )
    assert not p.apply_consent_changed(
        changed("c1", 3, marketing_email=pb.CONSENT_DECISION_GRANTED)
    )
    assert not p.may_use("c1", "marketing_email")
    assert p.dropped_stale == 2
    assert p.version_of("c1") == 3


def test_substantive_notice_makes_older_grants_need_reconsent() -> None:
    p = projection()
    p.apply_consent_changed(changed("c1", 1, marketing_email=pb.CONSENT_DECISION_GRANTED))
    p.apply_notice(
        pb.NoticePublished(
            purpose="marketing_email",
            legal_basis=pb.LEGAL_BASIS_CONSENT,
            notice_version="2",
            reconsent_from_version="2",
            substantive=True,
        )
    )
    assert not p.may_use("c1", "marketing_email")
    assert p.verdict("c1", "marketing_email") is Reason.NOTICE_OUTDATED
    # A late announcement of the older baseline does not revive the grant.
    assert not p.apply_notice(
        pb.NoticePublished(
            purpose="marketing_email",
            legal_basis=pb.LEGAL_BASIS_CONSENT,
            notice_version="1",
            reconsent_from_version="1",
        )
    )
    assert not p.may_use("c1", "marketing_email")


def test_expired_grant_does_not_count() -> None:
    p = projection()
    msg = changed("c1", 1, marketing_email=pb.CONSENT_DECISION_GRANTED)
    msg.purposes[0].expires_at.CopyFrom(Timestamp(seconds=int(NOW) - 1))
    p.apply_consent_changed(msg)
    assert not p.may_use("c1", "marketing_email")
    assert p.verdict("c1", "marketing_email") is Reason.EXPIRED


def test_apply_entry_dispatches_on_key_and_survives_garbage() -> None:
    p = ConsentProjection(clock=lambda: NOW)
    notice = pb.NoticePublished(
        purpose="marketing_sms", legal_basis=pb.LEGAL_BASIS_CONSENT, notice_version="1"
    )
    assert p.apply_entry("purpose.marketing_sms", notice.SerializeToString())
    state = changed("c9", 1, marketing_sms=pb.CONSENT_DECISION_GRANTED)
    assert p.apply_entry("customer.c9", state.SerializeToString())
    assert p.may_use("c9", "marketing_sms")
    assert not p.apply_entry("customer.c9", b"\xff\xff\xff")


def test_flat_may_use_agrees_with_evaluate_for_every_combination() -> None:
    bases = list(LegalBasis)
    decisions = [None, *Decision]
    versions = [1, 2]
    expiries = [0.0, NOW - 1, NOW + 1]
    for basis, decision, version, expires, baseline in itertools.product(
        bases, decisions, versions, expiries, [1, 2]
    ):
        p = ConsentProjection(clock=lambda: NOW)
        p.set_rule("x", PurposeRule(basis, baseline))
        current = None
        if decision is not None:
            p.apply_consent_changed(
                pb.ConsentChanged(
                    customer_id="c",
                    version=1,
                    purposes=[
                        pb.PurposeState(
                            purpose="x",
                            decision=decision.to_proto(),
                            notice_version=str(version),
                            expires_at=Timestamp(seconds=int(expires)) if expires else None,
                        )
                    ],
                )
            )
            current = CurrentDecision(decision, version, expires)
        expected = evaluate(PurposeRule(basis, baseline), current, NOW)
        assert p.may_use("c", "x") is expected.allows, (basis, decision, version, expires)
        assert p.verdict("c", "x") is expected


def test_a_new_state_replaces_the_whole_customer() -> None:
    p = projection()
    p.apply_consent_changed(
        changed(
            "c1",
            1,
            marketing_email=pb.CONSENT_DECISION_GRANTED,
            analytics=pb.CONSENT_DECISION_DENIED,
        )
    )
    # Full state without analytics (e.g. after a later erasure of that record):
    # the objection must not linger.
    p.apply_consent_changed(changed("c1", 2, marketing_email=pb.CONSENT_DECISION_GRANTED))
    assert p.may_use("c1", "analytics")
    assert p.may_use("c1", "marketing_email")
    assert len(p) == 1
