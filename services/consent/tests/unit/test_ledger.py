"""The ledger's rules without any I/O: decide() refuses bad requests naming the
field, the projection keeps the newest decision per purpose with a growing
version, and notice versions drive re-consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consent.domain.ledger import Channel, Proof, RecordRequest, SubjectConsent, decide
from consent.domain.purposes import Catalogue, Notice, Purpose, ThirdPartyProvision
from consent.domain.receipt import Controller, receipt_claims
from cxloop_libs.consent.rules import Decision, LegalBasis, Reason
from cxloop_libs.errors import InvalidArgument

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TP = ThirdPartyProvision("Partner Co", "points", ("name", "mobile_phone"), "until withdrawn")


def notice(purpose: str, version: int = 1, *, substantive: bool = True, **kw: object) -> Notice:
    return Notice(purpose, version, "[선택] 한국어", "[Optional] English", substantive, NOW, **kw)  # type: ignore[arg-type]


def catalogue() -> Catalogue:
    return Catalogue(
        [
            Purpose(
                "essential_service", LegalBasis.CONTRACT, True, 0, (notice("essential_service"),)
            ),
            Purpose("analytics", LegalBasis.LEGITIMATE_INTEREST, False, 0, (notice("analytics"),)),
            Purpose(
                "marketing_email", LegalBasis.CONSENT, False, 730, (notice("marketing_email"),)
            ),
            Purpose(
                "third_party_provision",
                LegalBasis.CONSENT,
                False,
                0,
                (notice("third_party_provision", third_party=TP),),
            ),
        ]
    )


def req(**kw: object) -> RecordRequest:
    base: dict[str, object] = dict(
        customer_id="c1",
        purpose="marketing_email",
        decision=Decision.GRANTED,
        notice_version="1",
        channel=Channel.WEB_FORM,
    )
    base.update(kw)
    return RecordRequest(**base)  # type: ignore[arg-type]


def test_grant_gets_the_purposes_default_validity() -> None:
    r = decide(catalogue(), req(), now=NOW)
    assert r.expires_at == NOW + timedelta(days=730)
    assert r.proof.actor == "customer"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        (dict(customer_id=""), "customer_id"),
        (dict(customer_id="a.b"), "customer_id"),
        (dict(purpose="telepathy"), "purpose"),
        (dict(purpose=""), "purpose"),
        (dict(decision=None), "decision"),
        (dict(channel=None), "channel"),
        (dict(notice_version=""), "notice_version"),
        (dict(notice_version="2"), "notice_version"),
        (dict(notice_version="٣"), "notice_version"),
        (dict(purpose="essential_service", decision=Decision.WITHDRAWN), "decision"),
        (dict(channel=Channel.GPC_SIGNAL), "channel"),
        (dict(decided_at=NOW + timedelta(hours=1)), "decided_at"),
        (dict(expires_at=NOW - timedelta(days=1)), "expires_at"),
        (dict(decision=Decision.DENIED, expires_at=NOW + timedelta(days=1)), "expires_at"),
        (dict(proof=Proof(ip_hash="1.2.3.4")), "proof.ip_hash"),
        (dict(channel=Channel.CALL_CENTRE), "proof.actor"),
        (dict(idempotency_key="k" * 200), "idempotency_key"),
    ],
)
def test_bad_requests_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decide(catalogue(), req(**kw), now=NOW)
    assert err.value.field == field


def test_refusal_needs_no_notice_version_and_gpc_may_opt_out() -> None:
    r = decide(
        catalogue(),
        req(decision=Decision.WITHDRAWN, notice_version="", channel=Channel.GPC_SIGNAL),
        now=NOW,
    )
    assert r.notice_version == 1 and r.expires_at is None


def test_ledger_projection_keeps_the_newest_decision_and_counts_versions() -> None:
    cat = catalogue()
    s = SubjectConsent("c1")
    assert s.verdict(cat, "marketing_email", NOW) is Reason.NO_DECISION
    s = s.record(decide(cat, req(), now=NOW))
    s = s.record(decide(cat, req(purpose="analytics", decision=Decision.DENIED), now=NOW))
    assert s.version == 2
    assert s.verdict(cat, "marketing_email", NOW) is Reason.GRANTED
    assert s.verdict(cat, "analytics", NOW) is Reason.DENIED
    s = s.record(decide(cat, req(decision=Decision.WITHDRAWN), now=NOW))
    assert s.version == 3
    assert s.verdict(cat, "marketing_email", NOW) is Reason.WITHDRAWN
    assert s.verdict(cat, "essential_service", NOW) is Reason.LEGAL_BASIS
    assert s.verdict(cat, "marketing_email", NOW + timedelta(days=800)) is Reason.WITHDRAWN
    with pytest.raises(ValueError):
        s.record(decide(cat, req(customer_id="c2"), now=NOW))


def test_grant_expires() -> None:
    cat = catalogue()
    s = SubjectConsent("c1").record(decide(cat, req(), now=NOW))
    assert s.verdict(cat, "marketing_email", NOW + timedelta(days=731)) is Reason.EXPIRED


def test_substantive_notice_change_needs_reconsent_and_editorial_does_not() -> None:
    cat = catalogue()
    s = SubjectConsent("c1").record(decide(cat, req(), now=NOW))
    purpose = cat.require("marketing_email")
    editorial, n2 = purpose.revise(text_ko="오타 수정", text_en="typo", substantive=False, now=NOW)
    assert n2.version == 2 and editorial.reconsent_from == 1
    cat = cat.with_purpose(editorial)
    assert s.verdict(cat, "marketing_email", NOW) is Reason.GRANTED
    assert not s.needs_reconsent(cat, "marketing_email")
    substantive, n3 = editorial.revise(text_ko="새 목적", text_en="new", substantive=True, now=NOW)
    cat = cat.with_purpose(substantive)
    assert n3.version == 3 and substantive.reconsent_from == 3
    assert s.verdict(cat, "marketing_email", NOW) is Reason.NOTICE_OUTDATED
    assert s.needs_reconsent(cat, "marketing_email")
    with pytest.raises(InvalidArgument) as err:
        decide(cat, req(notice_version="2"), now=NOW)
    assert err.value.field == "notice_version" and "stale" in err.value.reason
    # Withdrawing under an old notice is always possible.
    decide(cat, req(notice_version="1", decision=Decision.WITHDRAWN), now=NOW)
    s = s.record(decide(cat, req(notice_version="3"), now=NOW))
    assert s.verdict(cat, "marketing_email", NOW) is Reason.GRANTED


def test_third_party_provision_must_name_recipient_and_a_new_recipient_is_substantive() -> None:
    with pytest.raises(InvalidArgument):
        Purpose(
            "third_party_provision",
            LegalBasis.CONSENT,
            False,
            0,
            (notice("third_party_provision"),),
        )
    with pytest.raises(InvalidArgument):
        ThirdPartyProvision("Partner", "points", (), "1y")
    tp = catalogue().require("third_party_provision")
    other = ThirdPartyProvision("Other Co", "points", ("name",), "1y")
    revised, n = tp.revise(
        text_ko="수령인 변경",
        text_en="new recipient",
        substantive=False,
        now=NOW,
        third_party=other,
    )
    assert n.substantive and revised.reconsent_from == 2


def test_receipt_claims_follow_the_kantara_shape() -> None:
    cat = catalogue()
    r = decide(cat, req(purpose="third_party_provision"), now=NOW)
    claims = receipt_claims(
        r,
        cat.require("third_party_provision"),
        controller=Controller(name="Shop", email="privacy@shop.example"),
        jurisdiction="KR",
        issuer="urn:test",
    )
    for key in (
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "piiPrincipalId",
        "piiControllers",
        "services",
        "policyUrl",
    ):
        assert key in claims
    (p,) = claims["services"][0]["purposes"]
    assert p["thirdPartyName"] == "Partner Co"
    assert p["decision"] == "granted" and p["noticeVersion"] == "1"
    assert claims["collectionMethod"] == "web_form"
