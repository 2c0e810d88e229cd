"""GPC, merge and split rules without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from consent.domain.ledger import Channel, SubjectConsent, decide
from consent.domain.signals import (
    GPC_PURPOSES,
    gpc_opt_outs,
    merge_refusals,
    split_inheritance,
    split_restores,
)
from consent.tests.unit.test_ledger import NOW, catalogue, req
from cxloop_libs.consent.rules import Decision


def subject(cid: str, *records: object) -> SubjectConsent:
    s = SubjectConsent(cid)
    for r in records:
        s = s.record(r)  # type: ignore[arg-type]
    return s


def test_gpc_denies_what_was_never_asked_and_withdraws_grants_once() -> None:
    cat = catalogue()
    grant = decide(cat, req(), now=NOW)
    out = gpc_opt_outs(subject("c1", grant), cat, GPC_PURPOSES, signalled_at=NOW, now=NOW)
    by = {r.purpose: r for r in out}
    assert set(by) == {"marketing_email", "third_party_provision"}  # known purposes only
    assert by["marketing_email"].decision is Decision.WITHDRAWN
    assert by["third_party_provision"].decision is Decision.DENIED
    assert all(r.channel is Channel.GPC_SIGNAL for r in out)
    after = subject("c1", grant, *out)
    assert gpc_opt_outs(after, cat, GPC_PURPOSES, signalled_at=NOW, now=NOW) == []
    # A grant made knowingly against GPC is left alone by later signals.
    knowing = replace(decide(cat, req(), now=NOW), gpc_conflict=True)
    later = subject("c1", *out, knowing)
    assert gpc_opt_outs(later, cat, ["marketing_email"], signalled_at=NOW, now=NOW) == []
    # Contract purposes cannot be refused by a signal.
    assert gpc_opt_outs(later, cat, ["essential_service"], signalled_at=NOW, now=NOW) == []


def test_merge_refusal_beats_grant_and_grants_do_not_travel() -> None:
    cat = catalogue()
    s = subject("s", decide(cat, req(customer_id="s"), now=NOW))
    m = subject(
        "m",
        decide(cat, req(customer_id="m", decision=Decision.DENIED), now=NOW),
        decide(
            cat, req(customer_id="m", purpose="analytics", decision=Decision.WITHDRAWN), now=NOW
        ),
        decide(cat, req(customer_id="m", purpose="third_party_provision"), now=NOW),
    )
    out = {r.purpose: r for r in merge_refusals(s, [m], now=NOW)}
    assert out["marketing_email"].decision is Decision.WITHDRAWN
    assert out["analytics"].decision is Decision.WITHDRAWN
    assert "third_party_provision" not in out
    assert all(r.derived_from == "merge:m" and r.customer_id == "s" for r in out.values())


def test_split_restores_own_decision_or_clears() -> None:
    cat = catalogue()
    own = decide(cat, req(customer_id="s"), now=NOW - timedelta(minutes=1))
    s = subject("s", own)
    m = subject(
        "m",
        decide(cat, req(customer_id="m", decision=Decision.DENIED), now=NOW),
        decide(cat, req(customer_id="m", purpose="analytics", decision=Decision.DENIED), now=NOW),
    )
    merged = merge_refusals(s, [m], now=NOW)
    s = subject("s", own, *merged)
    restores, clears = split_restores(s, ["s", "m"], [own, *merged], now=NOW + timedelta(minutes=1))
    assert clears == ["analytics"]
    (back,) = restores
    assert back.decision is Decision.GRANTED and back.derived_from == "split:m"
    assert back.record_id != own.record_id and back.idempotency_key == ""
    # Splitting off someone it never took from changes nothing.
    assert split_restores(s, ["x"], [own, *merged], now=NOW) == ([], [])


def test_a_profile_new_from_a_split_takes_the_originals_refusals_only() -> None:
    cat = catalogue()
    original = subject(
        "s",
        decide(cat, req(customer_id="s"), now=NOW),
        decide(cat, req(customer_id="s", purpose="analytics", decision=Decision.DENIED), now=NOW),
    )
    (r,) = split_inheritance(SubjectConsent("n"), original, now=NOW)
    assert (r.customer_id, r.purpose, r.decision) == ("n", "analytics", Decision.DENIED)
    assert r.derived_from == "split:s" and r.proof.actor == "split:s"
