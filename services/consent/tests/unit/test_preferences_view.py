"""GetPreferences from memory (docs/adr/0310): the view's answer equals the
ledger read's (every field, re-consent judged against today's catalogue),
an erasure empties it, an older state never replaces a newer one, and a
committed transaction's staged states reach the view before its caller
resumes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import Session

from consent.domain.ledger import Channel, SubjectConsent, decide
from consent.service_layer import messages
from consent.service_layer.preferences import ConsentView, stage_committed_state
from consent.tests.unit.test_ledger import NOW, catalogue, req
from cxloop_libs.consent.rules import Decision
from cxloop_libs.db import Database


def subject() -> SubjectConsent:
    cat = catalogue()
    s = SubjectConsent("c1")
    s = s.record(decide(cat, req(), now=NOW))
    s = s.record(
        decide(
            cat,
            req(purpose="analytics", decision=Decision.DENIED, channel=Channel.APP),
            now=NOW + timedelta(minutes=1),
        )
    )
    return s.record(
        decide(cat, req(purpose="third_party_provision"), now=NOW + timedelta(minutes=2))
    )


def changed(s: SubjectConsent) -> object:
    return messages.consent_changed(s, catalogue(), changed_purpose="", record_id="")


def test_the_view_answers_as_the_ledger_read_also_after_a_notice_change() -> None:
    s = subject()
    view = ConsentView()
    assert view.apply_consent_changed(changed(s))  # type: ignore[arg-type]
    cat = catalogue()
    assert view.preferences("c1", cat) == (s.version, messages.subject_states(s, cat))
    # A substantive notice makes the grant need re-consent: judged at read
    # time, not when the state was published.
    revised, _ = cat.require("marketing_email").revise(
        text_ko="새 목적", text_en="new", substantive=True, now=NOW
    )
    later = cat.with_purpose(revised)
    version, states = view.preferences("c1", later)
    assert (version, states) == (s.version, messages.subject_states(s, later))
    assert [p.needs_reconsent for p in states if p.purpose == "marketing_email"] == [True]
    assert view.preferences("nobody", cat) == (0, [])


def test_an_erasure_empties_the_answer_and_an_older_state_is_dropped() -> None:
    s = subject()
    view = ConsentView()
    view.apply_consent_changed(changed(s))  # type: ignore[arg-type]
    erased = SubjectConsent("c1", s.version + 1)
    assert view.apply_consent_changed(changed(erased))  # type: ignore[arg-type]
    assert view.preferences("c1", catalogue()) == (s.version + 1, [])
    assert not view.apply_consent_changed(changed(s))  # type: ignore[arg-type]
    assert view.preferences("c1", catalogue()) == (s.version + 1, [])


async def test_states_staged_in_a_transaction_are_applied_once_it_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path}/x.db")
    view = ConsentView()
    db.after_commit.append(view.after_commit(asyncio.get_running_loop()))
    s = subject()

    def rolled_back(session: Session) -> None:
        stage_committed_state(session, changed(s))  # type: ignore[arg-type]
        raise RuntimeError("no commit")

    try:
        await db.in_transaction(rolled_back)
    except RuntimeError:
        pass
    await asyncio.sleep(0)
    assert view.version_of("c1") == 0
    await db.in_transaction(lambda session: stage_committed_state(session, changed(s)))  # type: ignore[arg-type]
    # No wait: applied before the transaction's caller resumed.
    assert view.preferences("c1", catalogue()) == (
        s.version,
        messages.subject_states(s, catalogue()),
    )
    db.dispose()
