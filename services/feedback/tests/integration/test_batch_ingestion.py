"""A batch of responses goes in with one statement per table; these tests
check that a batch keeps its good items when some are bad, when one is a
retry of another, and when the database refuses the batch (the items are
then stored one by one). Real SQLite database, real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cxloop_libs.db import Database, run_migrations
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.pii.envelope import SubjectKeyring
from feedback.adapters import kpi_store
from feedback.adapters import tables as t
from feedback.bootstrap import MIGRATIONS
from feedback.domain.invitations import ResponseTokens
from feedback.domain.surveys import InvalidInput, QuestionType, RawAnswer
from feedback.service_layer.handlers import FeedbackHandlers, ResponseInput, ResponseResult


class _Consent:
    is_ready = True

    def may_use(self, customer_id: str, purpose: str) -> bool:
        return True


def _setup(tmp_path: Path, handlers_cls: type[FeedbackHandlers] = FeedbackHandlers) -> Any:
    db = Database(f"sqlite:///{tmp_path}/batch.db")
    run_migrations(db.engine, MIGRATIONS)
    h = handlers_cls(
        keyring=SubjectKeyring(b"k" * 32),
        tokens=ResponseTokens(b"t" * 32),
        consent=_Consent(),
        analyzer=lambda: None,  # score-only answers: no text to analyse
    )
    with db.session() as s:
        h.put_survey(
            s,
            json.dumps(
                {"id": "nps", "questions": [{"id": "nps", "type": "nps", "text": "Recommend?"}]}
            ),
        )
        s.commit()
    return db, h


def _item(customer: str, score: int, key: str = "") -> ResponseInput:
    return ResponseInput(
        answers=(RawAnswer("nps", score=score),),
        survey_id="nps",
        customer_id=customer,
        idempotency_key=key,
    )


def _count(db: Database, table: sa.Table) -> int:
    with db.session() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _nps_total(db: Database, h: FeedbackHandlers) -> int:
    with db.session() as s:
        days = kpi_store.daily(s, QuestionType.NPS, 0, 10**6, {})
    return sum(v.n for v in days.values())


def _submit(db: Database, h: FeedbackHandlers, items: list[ResponseInput]) -> list[Any]:
    with db.session() as s:
        out = h.submit_responses(s, items)
        s.commit()
    return out


def test_a_batch_keeps_its_good_items_and_answers_a_retry_with_the_first(
    tmp_path: Path,
) -> None:
    db, h = _setup(tmp_path)
    out = _submit(
        db,
        h,
        [
            _item("c1", 10, key="k1"),
            _item("c2", 3),  # detractor: opens a case
            _item("c3", 11),  # out of range
            _item("c1", 10, key="k1"),  # the retry of the first, same batch
        ],
    )
    assert isinstance(out[0], ResponseResult) and isinstance(out[1], ResponseResult)
    assert isinstance(out[2], InvalidInput) and out[2].field == "answers[0].score"
    assert isinstance(out[3], ResponseResult) and out[3].response_id == out[0].response_id
    assert out[1].detractor and out[1].case_id
    assert _count(db, t.response) == 2
    assert _count(db, t.case) == 1
    assert _nps_total(db, h) == 2
    # A later retry finds the stored response.
    again = _submit(db, h, [_item("c1", 10, key="k1")])
    assert again[0].response_id == out[0].response_id
    assert _count(db, t.response) == 2


class _RacingHandlers(FeedbackHandlers):
    """As if another replica stored a response with the same idempotency
    key between this batch's look-up and its insert."""

    def _stored_by_key(self, session: Any, keys: Any) -> dict[str, ResponseResult]:
        return {}


def test_a_refused_batch_is_stored_item_by_item(tmp_path: Path) -> None:
    db, h = _setup(tmp_path, _RacingHandlers)
    first = _submit(db, h, [_item("c1", 2, key="taken")])
    assert isinstance(first[0], ResponseResult)
    outbox_before = _count(db, OutboxWriter.TABLE)
    out = _submit(db, h, [_item("c2", 9, key="fresh"), _item("c1", 2, key="taken"), _item("c3", 0)])
    assert isinstance(out[0], ResponseResult) and isinstance(out[2], ResponseResult)
    assert isinstance(out[1], sa.exc.IntegrityError)  # the refused one alone
    assert out[2].detractor
    assert _count(db, t.response) == 3
    assert _count(db, t.case) == 2  # c1's first answer and c3's, not the refused retry
    assert _nps_total(db, h) == 3
    # Events only for the stored items: response received x2, detractor + case for c3.
    assert _count(db, OutboxWriter.TABLE) - outbox_before == 4


def test_a_detractor_spike_raises_its_own_alert_when_nps_holds(tmp_path: Path) -> None:
    """Promoters and detractors both grow on one day: NPS holds (no KPI
    drop), the share of detractors doubles (a detractor spike)."""
    import random
    from datetime import UTC, datetime, timedelta

    from cxloop.feedback.v1 import events_pb2 as epb

    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    db, h = _setup(tmp_path)
    h.clock = lambda: now
    last = kpi_store.local_day(now - timedelta(days=1), h.tz)
    rnd = random.Random(5)
    scored = []
    dims = {"survey_id": "nps", "channel": "", "touchpoint": "", "segment": "", "journey_stage": ""}
    for day in range(last - 120, last + 1):
        if day == last - 1:
            promoters, detractors = 60, 40  # NPS 20 as usual, detractors 40 % (usually ~20 %)
        else:
            promoters, detractors = 40 + rnd.randint(-3, 3), 20 + rnd.randint(-3, 3)
        passives = 100 - promoters - detractors
        for score, count in ((10, promoters), (8, passives), (3, detractors)):
            scored += [kpi_store.ScoredResponse(QuestionType.NPS, score, day, dims)] * count
    with db.session() as s:
        kpi_store.add_responses(s, scored)
        s.commit()
    with db.session() as s:
        raised = h.scan_anomalies(s)
        s.commit()
    spikes = [
        a for a in raised if a.kind == epb.ALERT_KIND_DETRACTOR_SPIKE and a.dimension == "all"
    ]
    assert len(spikes) == 1
    assert spikes[0].observed_value == 40.0 and 15 <= spikes[0].expected_value <= 25
    assert spikes[0].responses == 100
    assert not [a for a in raised if a.kind == epb.ALERT_KIND_KPI_DROP]
    with db.session() as s:  # raised once: a second scan finds it stored
        assert [a for a in h.scan_anomalies(s) if a.kind == epb.ALERT_KIND_DETRACTOR_SPIKE] == []
