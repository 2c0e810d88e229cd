"""Survey definitions, answers and the standard KPI formulas."""

from __future__ import annotations

import json

import pytest

from feedback.domain.surveys import (
    InvalidInput,
    QuestionType,
    RawAnswer,
    ScoreTally,
    is_detractor,
    kpi_value,
    parse_survey,
    survey_document,
    validate_answers,
)

DOC = {
    "id": "post-purchase",
    "name": "After purchase",
    "title": {"ko": "구매 후 설문", "en": "After your purchase"},
    "questions": [
        {
            "id": "nps",
            "type": "nps",
            "required": True,
            "text": {"ko": "추천하시겠어요?", "en": "Would you recommend us?"},
        },
        {
            "id": "why",
            "type": "free_text",
            "text": {"ko": "이유는?", "en": "Why?"},
            "show_if": {"question_id": "nps", "max_score": 6},
        },
        {
            "id": "topic",
            "type": "multi_choice",
            "text": "What mattered?",
            "choices": [
                {"id": "delivery", "text": {"ko": "배송", "en": "Delivery"}},
                {"id": "price", "text": {"en": "Price"}},
            ],
        },
        {"id": "stars", "type": "rating", "scale_max": 10, "text": "Stars"},
    ],
}


def survey():
    return parse_survey(DOC)


def test_export_import_round_trip() -> None:
    s = survey()
    again = parse_survey(json.loads(json.dumps(survey_document(s))))
    assert again == s
    assert s.primary is not None and s.primary.id == "nps"
    assert s.title.for_language("ko") == "구매 후 설문"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["questions"][0].update(type="stars"), "survey.questions[0].type"),
        (lambda d: d["questions"][1].update(id="nps"), "survey.questions[1].id"),
        (
            lambda d: d["questions"][1]["show_if"].update(question_id="later"),
            "survey.questions[1].show_if.question_id",
        ),
        (lambda d: d["questions"][2].update(choices=[]), "survey.questions[2].choices"),
        (lambda d: d["questions"][3].update(scale_max=11), "survey.questions[3].scale_max"),
        (lambda d: d.update(id="has space"), "survey.id"),
        (lambda d: d["questions"][0].update(text={"fr": "x"}), "survey.questions[0].text"),
    ],
)
def test_bad_definitions_name_the_field(mutate, field) -> None:
    doc = json.loads(json.dumps(DOC))
    mutate(doc)
    with pytest.raises(InvalidInput) as e:
        parse_survey(doc)
    assert e.value.field == field


def test_display_logic_shows_why_only_to_detractors() -> None:
    s = survey()
    ok = validate_answers(
        s, [RawAnswer("nps", score=3), RawAnswer("why", text="slow")], partial=False
    )
    assert ok["why"].text == "slow"
    with pytest.raises(InvalidInput, match="not shown"):
        validate_answers(s, [RawAnswer("nps", score=9), RawAnswer("why", text="x")], partial=False)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ([RawAnswer("nps", score=11)], "answers[0].score"),
        ([RawAnswer("nps", score=-1)], "answers[0].score"),
        ([RawAnswer("nps", text="ten")], "answers[0].score"),
        ([RawAnswer("nps", score=5), RawAnswer("nps", score=6)], "answers[1].question_id"),
        ([RawAnswer("nps", score=5), RawAnswer("topic", choice_id="nope")], "answers[1].choice_id"),
        ([RawAnswer("ghost", score=5)], "answers[0].question_id"),
        ([RawAnswer("stars", score=3)], "answers"),  # required nps missing
        ([RawAnswer("nps", score=1, text="x")], "answers[0]"),
    ],
)
def test_bad_answers_name_the_field(answers, field) -> None:
    with pytest.raises(InvalidInput) as e:
        validate_answers(survey(), answers, partial=False)
    assert e.value.field == field


def test_partial_response_may_leave_required_questions_open() -> None:
    got = validate_answers(survey(), [RawAnswer("stars", score=8)], partial=True)
    assert got["stars"].score == 8


def test_multi_choice_collects_every_choice() -> None:
    got = validate_answers(
        survey(),
        [
            RawAnswer("nps", score=9),
            RawAnswer("topic", choice_id="delivery"),
            RawAnswer("topic", choice_id="price"),
        ],
        partial=False,
    )
    assert got["topic"].choices == ("delivery", "price")


def test_standard_formulas() -> None:
    t = ScoreTally()
    for s in [10, 9, 9, 8, 7, 6, 0, 10, 3, 9]:  # 5 promoters, 2 passives, 3 detractors
        t.add_score(QuestionType.NPS, s)
    assert kpi_value(QuestionType.NPS, t)[0] == pytest.approx(20.0)
    low, high = kpi_value(QuestionType.NPS, t)[1:]
    assert low < 20 < high
    c = ScoreTally()
    for s in [5, 4, 3, 2, 1, 4, 5, 5]:
        c.add_score(QuestionType.CSAT, s)
    assert kpi_value(QuestionType.CSAT, c)[0] == pytest.approx(62.5)
    e = ScoreTally()
    for s in [1, 2, 3, 7]:
        e.add_score(QuestionType.CES, s)
    assert kpi_value(QuestionType.CES, e)[0] == pytest.approx(3.25)
    merged = ScoreTally()
    merged.merge(t)
    merged.merge(t)
    assert kpi_value(QuestionType.NPS, merged)[0] == pytest.approx(20.0)
    assert (
        kpi_value(QuestionType.NPS, merged)[2] - kpi_value(QuestionType.NPS, merged)[1] < high - low
    )


def test_detractor_rules() -> None:
    assert is_detractor(QuestionType.NPS, 6) and not is_detractor(QuestionType.NPS, 7)
    assert is_detractor(QuestionType.CSAT, 2) and not is_detractor(QuestionType.CSAT, 3)
    assert not is_detractor(QuestionType.CES, 1)
