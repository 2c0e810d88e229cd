"""Tokens, the contact gate, sampling, cases' SLA and escalation, anomaly
detection, aspects and bad text."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from feedback.domain import cases as dc
from feedback.domain.anomaly import DailyValue, detect_drops, detect_spikes
from feedback.domain.invitations import (
    ContactHistory,
    ContactPolicy,
    ResponseTokens,
    contact_refusal,
    sampled,
)
from feedback.domain.surveys import InvalidInput
from feedback.domain.text import (
    Aspect,
    Language,
    clauses,
    detect_language,
    english_keywords,
    tag_aspects,
    text_problem,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_tokens_are_signed_and_bound_to_their_invitation() -> None:
    tokens = ResponseTokens(b"k" * 32)
    tok = tokens.issue("inv-1")
    assert tokens.verify(tok) == "inv-1"
    forged = "inv-2." + tok.split(".")[1]
    for bad in (forged, tok + "x", "inv-1", "", "a.b.c"):
        with pytest.raises(InvalidInput) as e:
            tokens.verify(bad)
        assert e.value.field == "token"
    with pytest.raises(InvalidInput):
        ResponseTokens(b"other-key-32-bytes-long.........").verify(tok)


def test_contact_gate() -> None:
    p = ContactPolicy(timedelta(days=7), timedelta(days=30), timedelta(days=90))
    h = lambda a=None, i=None, r=None: ContactHistory(a, i, r)  # noqa: E731
    assert contact_refusal(p, h(), NOW) is None
    assert contact_refusal(p, h(a=NOW - timedelta(days=6)), NOW) == "global_wait"
    assert contact_refusal(p, h(a=NOW - timedelta(days=8)), NOW) is None
    assert contact_refusal(p, h(i=NOW - timedelta(days=20)), NOW) == "cooldown_after_invite"
    assert contact_refusal(p, h(r=NOW - timedelta(days=60)), NOW) == "cooldown_after_response"
    assert contact_refusal(p, h(r=NOW - timedelta(days=91)), NOW) is None


def test_sampling_is_deterministic_and_near_the_rate() -> None:
    hits = sum(sampled(f"c{i}", f"e{i}", 0.3) for i in range(5000))
    assert 1300 < hits < 1700
    assert sampled("c1", "e1", 0.3) == sampled("c1", "e1", 0.3)
    assert all(sampled(f"c{i}", "e", 1.0) for i in range(50))
    assert not any(sampled(f"c{i}", "e", 0.0) for i in range(50))


def test_case_sla_escalation_and_transitions() -> None:
    p = dc.priority_for("nps", 2, strongly_negative_text=False)
    assert p is dc.CasePriority.HIGH
    assert dc.priority_for("nps", 5, strongly_negative_text=True) is dc.CasePriority.HIGH
    due = dc.due_at(p, NOW)
    assert due == NOW + timedelta(hours=24)
    assert dc.escalation(dc.CaseStatus.OPEN, p, due, 0, NOW) is None
    esc = dc.escalation(dc.CaseStatus.OPEN, p, due, 0, due + timedelta(minutes=1))
    assert esc is not None and esc.priority is dc.CasePriority.URGENT and esc.level == 1
    assert dc.escalation(dc.CaseStatus.RESOLVED, p, due, 0, due + timedelta(days=1)) is None
    assert dc.check_transition(dc.CaseStatus.CLOSED, dc.CaseStatus.OPEN) is not None
    assert dc.check_transition(dc.CaseStatus.OPEN, dc.CaseStatus.RESOLVED) is None


def _year(drops: dict[int, float], seed: int = 7) -> list[DailyValue]:
    rnd = random.Random(seed)
    out = []
    for d in range(365):
        weekly = 8 * math.sin(2 * math.pi * d / 7)  # weekends differ a lot
        v = 35 + weekly + rnd.gauss(0, 2) - drops.get(d, 0)
        out.append(DailyValue(20000 + d, v, 200))
    return out


def test_anomaly_detection_finds_drops_and_ignores_the_weekly_cycle() -> None:
    drops = {100: 25.0, 101: 20.0, 200: 18.0, 300: 30.0}
    found = {a.day - 20000 for a in detect_drops(_year(drops))}
    assert {100, 200, 300} <= found
    assert len(found - set(drops)) <= 2  # a handful of false alarms at most
    assert detect_drops(_year({})) == [] or len(detect_drops(_year({}))) <= 2


def test_spike_detection_finds_rises_not_drops() -> None:
    # The year's values mirrored around 35: the drops become rises.
    rises = [DailyValue(d.day, 70 - d.value, d.responses) for d in _year({150: 25.0})]
    found = detect_spikes(rises)
    assert 150 in {a.day - 20000 for a in found}
    spike = next(a for a in found if a.day == 20150)
    assert spike.observed > spike.expected and spike.z > 0
    assert 150 not in {a.day - 20000 for a in detect_spikes(_year({150: 25.0}))}


def test_anomaly_detection_skips_thin_days() -> None:
    series = [DailyValue(d.day, d.value, 3) for d in _year({100: 40.0})]
    assert detect_drops(series) == []


def test_aspects_have_spans_in_both_languages() -> None:
    text = "배송이 너무 늦었지만 가격은 괜찮아요"
    found = tag_aspects(text)
    assert [a.aspect for a in found] == [Aspect.DELIVERY, Aspect.PRICE]
    assert text[found[0].start : found[0].end] == "배송"
    en = "The app crashed at checkout and the refund took weeks."
    kinds = {a.aspect for a in tag_aspects(en)}
    assert {Aspect.APP_WEBSITE, Aspect.RETURNS} <= kinds
    assert all(en[a.start : a.end].lower() == a.cue.lower() for a in tag_aspects(en))
    assert len(clauses("Delivery was fast but the price is too high.")) == 2


def test_aspect_lookup_matches_the_per_aspect_patterns() -> None:
    """tag_aspects (word lookups + str.find) reports what scanning with each
    aspect's regex reports: overlapping cues within an aspect (불친절 / 친절,
    상담원 / 상담), case, word boundaries, Korean endings, repeats."""
    from feedback.domain.text import _ASPECT_RE, AspectMention

    def reference(text: str) -> list[AspectMention]:
        found = [
            AspectMention(aspect, m.start(), m.end(), m.group(0))
            for aspect, pattern in _ASPECT_RE.items()
            for m in pattern.finditer(text)
        ]
        return sorted(found, key=lambda a: (a.start, a.aspect.value))

    texts = [
        "상담원이 불친절했고 상담 내내 친절하지 않았어요. 배송배송 택배가 늦게 왔어요",
        "DELIVERY late; Late-delivered? the app's UI crashed (refund/return). website site",
        "appstore apps 앱이 lateness deliverys 가성비값 값어치 fit fitness",
        "포장포장포장 반품 반송 환불환불",
        "",
        "no cue here at all",
    ]
    for text in texts:
        assert tag_aspects(text) == reference(text), text
    assert [a.cue for a in tag_aspects(texts[0]) if a.aspect is Aspect.STAFF] == [
        "상담원",
        "불친절",
        "상담",
        "친절",
    ]


def test_language_and_keywords() -> None:
    assert detect_language("배송 OK 좋아요") is Language.KO
    assert detect_language("great app 굿") is Language.EN
    assert english_keywords("The delivery was late, late again. Terrible delivery!")[:2] == [
        "delivery",
        "late",
    ]


@pytest.mark.parametrize("text", ["a" * 5001, "abc\x00def", "bin\x01ary", "bad\ufffd"])
def test_bad_text_is_refused(text: str) -> None:
    assert text_problem(text) is not None


def test_good_text_passes() -> None:
    assert text_problem("좋아요!\n정말 😀") is None


def test_analysis_scores_clauses_only_when_a_text_has_several() -> None:
    """One classifier call per batch; a one-clause comment is not scored a
    second time as its own clause, a two-clause one gives each aspect its
    clause's sentiment."""
    from collections.abc import Sequence

    from feedback.domain.text import Sentiment, SentimentLabel
    from feedback.service_layer.analysis import TextAnalyzer

    calls: list[list[str]] = []

    class Fake:
        def classify(self, texts: Sequence[str]) -> list[Sentiment]:
            calls.append(list(texts))
            return [
                Sentiment.from_probabilities(
                    *((0.8, 0.1, 0.1) if "high" in t or "awful" in t else (0.1, 0.1, 0.8)),
                    Language.EN,
                )
                for t in texts
            ]

    out = TextAnalyzer(Fake(), korean_keywords=False).analyze(
        ["Delivery was awful.", "Delivery was fast but the price is too high."], keywords=False
    )
    assert len(calls) == 1
    assert len(calls[0]) == 2 + 2  # two texts, two clauses of the second
    assert [a.sentiment for a in out[0].aspects] == [SentimentLabel.NEGATIVE]
    assert [(a.aspect, a.sentiment) for a in out[1].aspects] == [
        (Aspect.DELIVERY, SentimentLabel.POSITIVE),
        (Aspect.PRICE, SentimentLabel.NEGATIVE),
    ]
