"""Survey definitions, answers and the standard scores.

A survey has versions; a published version never changes (responses name
the version they answered), so editing a survey makes a new version. Texts
are given in Korean and English. A question may be shown only when an
earlier answer satisfies a condition (display logic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cxloop_libs.errors import InvalidArgument
from cxloop_libs.stats import wilson_interval

# Bad input, naming the field at fault (gRPC INVALID_ARGUMENT / HTTP 400).
InvalidInput = InvalidArgument


class QuestionType(StrEnum):
    NPS = "nps"  # 0-10
    CSAT = "csat"  # 1-5
    CES = "ces"  # 1-7
    RATING = "rating"  # 1..scale_max
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    FREE_TEXT = "free_text"


SCALES: dict[QuestionType, tuple[int, int]] = {
    QuestionType.NPS: (0, 10),
    QuestionType.CSAT: (1, 5),
    QuestionType.CES: (1, 7),
}
SCORED = frozenset({QuestionType.NPS, QuestionType.CSAT, QuestionType.CES, QuestionType.RATING})
CHOICE = frozenset({QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE})


@dataclass(frozen=True, slots=True)
class LocalText:
    ko: str = ""
    en: str = ""

    def for_language(self, language: str) -> str:
        return (self.ko or self.en) if language == "ko" else (self.en or self.ko)


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    text: LocalText


@dataclass(frozen=True, slots=True)
class DisplayCondition:
    """Show the question only when the answer to ``question_id`` has a score
    in [min_score, max_score] (scored questions) or is one of ``choice_ids``."""

    question_id: str
    min_score: int | None = None
    max_score: int | None = None
    choice_ids: tuple[str, ...] = ()

    def holds(self, answers: Mapping[str, AnswerValue]) -> bool:
        a = answers.get(self.question_id)
        if a is None:
            return False
        if self.choice_ids:
            return bool(set(a.choices) & set(self.choice_ids))
        if a.score is None:
            return False
        lo = self.min_score if self.min_score is not None else -(10**9)
        hi = self.max_score if self.max_score is not None else 10**9
        return lo <= a.score <= hi


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: QuestionType
    text: LocalText
    required: bool = False
    choices: tuple[Choice, ...] = ()
    # RATING only: 1..scale_max.
    scale_max: int = 5
    show_if: DisplayCondition | None = None

    def scale(self) -> tuple[int, int]:
        return SCALES.get(self.type, (1, self.scale_max))


@dataclass(frozen=True, slots=True)
class AnswerValue:
    score: int | None = None
    text: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SurveyVersion:
    survey_id: str
    version: int
    name: str
    title: LocalText
    questions: tuple[Question, ...]
    # The metric the survey reports (its first NPS/CSAT/CES question).
    primary_question_id: str = ""

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    @property
    def primary(self) -> Question | None:
        if self.primary_question_id:
            return self.question(self.primary_question_id)
        for q in self.questions:
            if q.type in SCALES:
                return q
        return None

    def visible(self, answers: Mapping[str, AnswerValue]) -> list[Question]:
        """Questions shown given the answers so far, in order."""
        return [q for q in self.questions if q.show_if is None or q.show_if.holds(answers)]


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_id(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or set(value) - _ID_CHARS:
        raise InvalidInput(field_name, "1-64 characters of letters, digits, _ - .")
    return value


def _text(doc: Any, field_name: str, *, required: bool = True) -> LocalText:
    if doc is None and not required:
        return LocalText()
    if isinstance(doc, str):
        doc = {"en": doc}
    if not isinstance(doc, dict) or set(doc) - {"ko", "en"}:
        raise InvalidInput(field_name, 'an object {"ko": ..., "en": ...}')
    ko, en = doc.get("ko", ""), doc.get("en", "")
    if not isinstance(ko, str) or not isinstance(en, str) or len(ko) > 1000 or len(en) > 1000:
        raise InvalidInput(field_name, "texts of at most 1000 characters")
    if required and not (ko or en):
        raise InvalidInput(field_name, "a Korean or English text is required")
    return LocalText(ko, en)


def _text_doc(t: LocalText) -> dict[str, str]:
    return {k: v for k, v in (("ko", t.ko), ("en", t.en)) if v}


def parse_survey(doc: Any, *, survey_id: str | None = None, version: int = 1) -> SurveyVersion:
    """A survey from its JSON document (the import/export format); raises
    InvalidInput naming the field at fault."""
    if not isinstance(doc, dict):
        raise InvalidInput("survey", "a JSON object")
    sid = _check_id(survey_id or doc.get("id"), "survey.id")
    name = doc.get("name", sid)
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidInput("survey.name", "a text of at most 200 characters")
    qdocs = doc.get("questions")
    if not isinstance(qdocs, list) or not qdocs or len(qdocs) > 50:
        raise InvalidInput("survey.questions", "a list of 1-50 questions")
    questions: list[Question] = []
    seen: set[str] = set()
    for i, q in enumerate(qdocs):
        where = f"survey.questions[{i}]"
        if not isinstance(q, dict):
            raise InvalidInput(where, "an object")
        qid = _check_id(q.get("id"), f"{where}.id")
        if qid in seen:
            raise InvalidInput(f"{where}.id", f"{qid!r} used twice")
        try:
            qtype = QuestionType(str(q.get("type")))
        except ValueError:
            raise InvalidInput(
                f"{where}.type", f"one of {', '.join(t.value for t in QuestionType)}"
            ) from None
        choices: list[Choice] = []
        if qtype in CHOICE:
            cdocs = q.get("choices")
            if not isinstance(cdocs, list) or not cdocs or len(cdocs) > 50:
                raise InvalidInput(f"{where}.choices", "a list of 1-50 choices")
            cids: set[str] = set()
            for j, c in enumerate(cdocs):
                if not isinstance(c, dict):
                    raise InvalidInput(f"{where}.choices[{j}]", "an object")
                cid = _check_id(c.get("id"), f"{where}.choices[{j}].id")
                if cid in cids:
                    raise InvalidInput(f"{where}.choices[{j}].id", f"{cid!r} used twice")
                cids.add(cid)
                choices.append(Choice(cid, _text(c.get("text"), f"{where}.choices[{j}].text")))
        scale_max = q.get("scale_max", 5)
        if qtype is QuestionType.RATING and (
            not isinstance(scale_max, int) or not 2 <= scale_max <= 10
        ):
            raise InvalidInput(f"{where}.scale_max", "an integer 2-10")
        show_if = None
        if q.get("show_if") is not None:
            show_if = _condition(q["show_if"], f"{where}.show_if", questions)
        required = q.get("required", False)
        if not isinstance(required, bool):
            raise InvalidInput(f"{where}.required", "true or false")
        questions.append(
            Question(
                qid,
                qtype,
                _text(q.get("text"), f"{where}.text"),
                required,
                tuple(choices),
                scale_max if qtype is QuestionType.RATING else 5,
                show_if,
            )
        )
        seen.add(qid)
    primary = doc.get("primary_question_id", "")
    if primary and not any(q.id == primary and q.type in SCALES for q in questions):
        raise InvalidInput("survey.primary_question_id", "must name an NPS, CSAT or CES question")
    return SurveyVersion(
        sid,
        version,
        name,
        _text(doc.get("title"), "survey.title", required=False),
        tuple(questions),
        primary,
    )


def _condition(doc: Any, where: str, earlier: Sequence[Question]) -> DisplayCondition:
    if not isinstance(doc, dict):
        raise InvalidInput(where, "an object")
    qid = doc.get("question_id")
    target = next((q for q in earlier if q.id == qid), None)
    if target is None:
        raise InvalidInput(f"{where}.question_id", "must name an earlier question")
    lo, hi, cids = doc.get("min_score"), doc.get("max_score"), doc.get("choice_ids", [])
    for name, v in (("min_score", lo), ("max_score", hi)):
        if v is not None and not isinstance(v, int):
            raise InvalidInput(f"{where}.{name}", "an integer")
    if not isinstance(cids, list) or not all(isinstance(c, str) for c in cids):
        raise InvalidInput(f"{where}.choice_ids", "a list of choice ids")
    if not cids and lo is None and hi is None:
        raise InvalidInput(where, "needs min_score/max_score or choice_ids")
    return DisplayCondition(str(qid), lo, hi, tuple(cids))


def survey_document(s: SurveyVersion) -> dict[str, Any]:
    """The JSON export of a version; ``parse_survey`` reads it back."""
    qs: list[dict[str, Any]] = []
    for q in s.questions:
        d: dict[str, Any] = {"id": q.id, "type": q.type.value, "text": _text_doc(q.text)}
        if q.required:
            d["required"] = True
        if q.choices:
            d["choices"] = [{"id": c.id, "text": _text_doc(c.text)} for c in q.choices]
        if q.type is QuestionType.RATING:
            d["scale_max"] = q.scale_max
        if q.show_if is not None:
            c = q.show_if
            cond: dict[str, Any] = {"question_id": c.question_id}
            if c.min_score is not None:
                cond["min_score"] = c.min_score
            if c.max_score is not None:
                cond["max_score"] = c.max_score
            if c.choice_ids:
                cond["choice_ids"] = list(c.choice_ids)
            d["show_if"] = cond
        qs.append(d)
    doc: dict[str, Any] = {"id": s.survey_id, "version": s.version, "name": s.name}
    if s.title.ko or s.title.en:
        doc["title"] = _text_doc(s.title)
    if s.primary_question_id:
        doc["primary_question_id"] = s.primary_question_id
    doc["questions"] = qs
    return doc


def survey_json(s: SurveyVersion) -> str:
    return json.dumps(survey_document(s), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """An answer as submitted: exactly one of score, text, choice_id."""

    question_id: str
    score: int | None = None
    text: str | None = None
    choice_id: str | None = None


def validate_answers(
    survey: SurveyVersion, answers: Iterable[RawAnswer], *, partial: bool, text_check: Any = None
) -> dict[str, AnswerValue]:
    """The answers keyed by question, or InvalidInput naming the field
    (``answers[i].score`` ...). A complete response must answer every
    visible required question; a partial one may leave them open."""
    out: dict[str, AnswerValue] = {}
    multi: dict[str, list[str]] = {}
    for i, a in enumerate(answers):
        where = f"answers[{i}]"
        q = survey.question(a.question_id)
        if q is None:
            raise InvalidInput(f"{where}.question_id", f"no question {a.question_id[:64]!r}")
        given = [v for v in (a.score, a.text, a.choice_id) if v is not None]
        if len(given) != 1:
            raise InvalidInput(where, "exactly one of score, text, choice_id")
        if q.type in SCORED:
            if a.score is None:
                raise InvalidInput(f"{where}.score", f"question {q.id!r} takes a score")
            lo, hi = q.scale()
            if not lo <= a.score <= hi:
                raise InvalidInput(f"{where}.score", f"must be {lo}-{hi} for {q.type.value}")
            if q.id in out:
                raise InvalidInput(f"{where}.question_id", f"question {q.id!r} answered twice")
            out[q.id] = AnswerValue(score=a.score)
        elif q.type is QuestionType.FREE_TEXT:
            if a.text is None:
                raise InvalidInput(f"{where}.text", f"question {q.id!r} takes a text")
            problem = text_check(a.text) if text_check else None
            if problem:
                raise InvalidInput(f"{where}.text", problem)
            if q.id in out:
                raise InvalidInput(f"{where}.question_id", f"question {q.id!r} answered twice")
            out[q.id] = AnswerValue(text=a.text)
        else:
            if a.choice_id is None:
                raise InvalidInput(f"{where}.choice_id", f"question {q.id!r} takes a choice")
            if a.choice_id not in {c.id for c in q.choices}:
                raise InvalidInput(f"{where}.choice_id", f"no choice {a.choice_id[:64]!r}")
            picked = multi.setdefault(q.id, [])
            if a.choice_id in picked or (q.type is QuestionType.SINGLE_CHOICE and picked):
                raise InvalidInput(f"{where}.choice_id", f"question {q.id!r} chosen twice")
            picked.append(a.choice_id)
    for qid, picked in multi.items():
        out[qid] = AnswerValue(choices=tuple(picked))
    visible = {q.id for q in survey.visible(out)}
    hidden = [qid for qid in out if qid not in visible]
    if hidden:
        raise InvalidInput("answers", f"question {hidden[0]!r} is not shown for these answers")
    if not partial:
        missing = [q.id for q in survey.visible(out) if q.required and q.id not in out]
        if missing:
            raise InvalidInput("answers", f"required question {missing[0]!r} not answered")
    if not out and not partial:
        raise InvalidInput("answers", "no answers")
    return out


# -- standard scores --------------------------------------------------------


def nps_class(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def is_detractor(qtype: QuestionType, score: int) -> bool:
    """NPS 0-6 or CSAT 1-2 opens a follow-up case."""
    return (qtype is QuestionType.NPS and score <= 6) or (qtype is QuestionType.CSAT and score <= 2)


@dataclass(slots=True)
class ScoreTally:
    """Enough to compute NPS, CSAT and CES (and their intervals) and to add
    two tallies: per day and dimension rows are summed at query time."""

    n: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    satisfied: int = 0  # CSAT 4-5
    total: float = 0.0  # sum of scores (CES mean)
    total_sq: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)

    def add_score(self, metric: QuestionType, score: int) -> None:
        self.n += 1
        self.total += score
        self.total_sq += score * score
        if metric is QuestionType.NPS:
            c = nps_class(score)
            if c == "promoter":
                self.promoters += 1
            elif c == "passive":
                self.passives += 1
            else:
                self.detractors += 1
        elif metric is QuestionType.CSAT and score >= 4:
            self.satisfied += 1

    def merge(self, other: ScoreTally) -> None:
        self.n += other.n
        self.promoters += other.promoters
        self.passives += other.passives
        self.detractors += other.detractors
        self.satisfied += other.satisfied
        self.total += other.total
        self.total_sq += other.total_sq


def kpi_value(metric: QuestionType, t: ScoreTally) -> tuple[float, float, float]:
    """(value, ci_low, ci_high) at 95 %: NPS -100..100, CSAT 0..100 %, CES
    mean. NPS's variance is that of a -1/0/+1 variable; CSAT uses the Wilson
    interval; CES the normal interval of a mean."""
    import math

    z = 1.959964
    if t.n == 0:
        return (0.0, 0.0, 0.0)
    n = t.n
    if metric is QuestionType.NPS:
        p, d = t.promoters / n, t.detractors / n
        v = p - d
        var = (p + d - v * v) / n
        h = z * math.sqrt(max(var, 0.0))
        return (100 * v, 100 * max(-1.0, v - h), 100 * min(1.0, v + h))
    if metric is QuestionType.CSAT:
        p = t.satisfied / n
        lo, hi = wilson_interval(t.satisfied, n, z)
        return (100 * p, 100 * lo, 100 * hi)
    mean = t.total / n
    var = max(t.total_sq / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else 0.0
    h = z * math.sqrt(var / n)
    return (mean, mean - h, mean + h)
