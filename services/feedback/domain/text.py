"""What the service understands of free text: its language, its sentiment,
the CX drivers (aspects) it talks about with the span that says so, and its
keywords. Plain code; the trained sentiment model lives in adapters."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Language(StrEnum):
    KO = "ko"
    EN = "en"


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> Language:
    """Korean when Hangul outnumbers Latin letters (mixed text is common:
    "배송 OK", "app 너무 느려요")."""
    return (
        Language.KO
        if len(_HANGUL.findall(text)) >= len(_LATIN.findall(text)) and (_HANGUL.search(text))
        else Language.EN
    )


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: SentimentLabel
    # -1 (surely negative) .. +1 (surely positive): P(positive) - P(negative).
    score: float
    confidence: float
    language: Language

    @classmethod
    def from_probabilities(
        cls, neg: float, neu: float, pos: float, language: Language
    ) -> Sentiment:
        best = max(
            (neg, SentimentLabel.NEGATIVE),
            (neu, SentimentLabel.NEUTRAL),
            (pos, SentimentLabel.POSITIVE),
        )
        return cls(best[1], round(pos - neg, 4), round(best[0], 4), language)

    @property
    def strongly_negative(self) -> bool:
        return self.label is SentimentLabel.NEGATIVE and self.score <= -0.6


class Aspect(StrEnum):
    DELIVERY = "delivery"
    PRICE = "price"
    QUALITY = "quality"
    STAFF = "staff"
    APP_WEBSITE = "app_website"
    RETURNS = "returns"


# Cue words per aspect. Korean cues are stems matched as substrings (Korean
# attaches particles and endings: 배송이, 배송은, 배송도); English cues are
# whole words with common inflections.
ASPECT_CUES: dict[Aspect, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Aspect.DELIVERY: (
        ("배송", "배달", "택배", "도착", "출고", "포장", "기사님", "늦게 왔", "빨리 왔"),
        (
            "delivery",
            "delivered",
            "deliver",
            "shipping",
            "shipped",
            "shipment",
            "courier",
            "arrived",
            "arrival",
            "package",
            "packaging",
            "late",
            "dispatch",
        ),
    ),
    Aspect.PRICE: (
        ("가격", "가성비", "비싸", "저렴", "할인", "쿠폰", "요금", "값", "비용", "포인트"),
        (
            "price",
            "prices",
            "pricing",
            "expensive",
            "cheap",
            "cheaper",
            "cost",
            "costs",
            "discount",
            "coupon",
            "value",
            "overpriced",
            "affordable",
            "fee",
            "fees",
        ),
    ),
    Aspect.QUALITY: (
        (
            "품질",
            "퀄리티",
            "재질",
            "불량",
            "고장",
            "마감",
            "내구성",
            "맛",
            "사이즈",
            "하자",
            "성능",
        ),
        (
            "quality",
            "defective",
            "broken",
            "broke",
            "durable",
            "material",
            "faulty",
            "works",
            "worked",
            "damaged",
            "taste",
            "size",
            "fit",
            "performance",
        ),
    ),
    Aspect.STAFF: (
        (
            "직원",
            "상담원",
            "상담사",
            "점원",
            "친절",
            "불친절",
            "응대",
            "매니저",
            "고객센터",
            "상담",
        ),
        (
            "staff",
            "employee",
            "agent",
            "rude",
            "friendly",
            "helpful",
            "cashier",
            "support",
            "service",
            "representative",
            "manager",
            "attitude",
            "polite",
        ),
    ),
    Aspect.APP_WEBSITE: (
        ("앱", "어플", "홈페이지", "사이트", "웹", "로그인", "결제창", "업데이트", "화면", "오류"),
        (
            "app",
            "website",
            "site",
            "login",
            "checkout",
            "crash",
            "crashes",
            "crashed",
            "bug",
            "page",
            "online",
            "ui",
            "update",
            "error",
        ),
    ),
    Aspect.RETURNS: (
        ("반품", "환불", "교환", "취소", "반송"),
        (
            "return",
            "returns",
            "returned",
            "refund",
            "refunds",
            "refunded",
            "exchange",
            "cancel",
            "cancelled",
            "canceled",
            "cancellation",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class AspectMention:
    aspect: Aspect
    # [start, end) character offsets of the cue in the text.
    start: int
    end: int
    cue: str
    # Sentiment of the clause the cue is in, when the caller scored clauses.
    sentiment: SentimentLabel | None = None


def _compile() -> dict[Aspect, re.Pattern[str]]:
    out = {}
    for aspect, (ko, en) in ASPECT_CUES.items():
        alternatives = [re.escape(c) for c in sorted(ko, key=len, reverse=True)]
        alternatives += [rf"\b{re.escape(c)}\b" for c in sorted(en, key=len, reverse=True)]
        out[aspect] = re.compile("|".join(alternatives), re.IGNORECASE)
    return out


# Lookup tables for tag_aspects: English cues are whole words (the \w-runs
# the per-aspect patterns' \b delimit), Korean cues are substrings.
_EN_CUE: dict[str, Aspect] = {c: a for a, (_, en) in ASPECT_CUES.items() for c in en}
_KO_CUES: list[tuple[Aspect, tuple[str, ...]]] = [
    (a, tuple(sorted(ko, key=len, reverse=True))) for a, (ko, _) in ASPECT_CUES.items()
]
_WORD = re.compile(r"\w+")
_ASPECT_RE = _compile()
_CLAUSE_END = re.compile(r"[.!?。\n;]|(?:지만|는데|but|however)\s", re.IGNORECASE)


def clauses(text: str) -> list[tuple[int, int]]:
    """Spans of the clauses of a text (sentence ends and contrast words
    such as "but" / "-지만" cut), so "delivery fast but price high" gives
    each aspect its own sentiment."""
    spans, start = [], 0
    for m in _CLAUSE_END.finditer(text):
        if m.end() > start and text[start : m.end()].strip():
            spans.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def tag_aspects(text: str) -> list[AspectMention]:
    """Every aspect cue in the text with its span, first mention first.

    Same result as scanning with each aspect's pattern (``_ASPECT_RE``:
    within an aspect, leftmost match, longest cue first, no overlaps), but
    by dictionary lookups of the text's words and ``str.find`` of the
    Korean stems: the six regex scans cost ~90 µs of CPU per comment, this
    about a tenth of that."""
    found: list[AspectMention] = []
    if any(ch.isascii() and ch.isalpha() for ch in text):
        for m in _WORD.finditer(text):
            aspect = _EN_CUE.get(m.group(0).lower())
            if aspect is not None:
                found.append(AspectMention(aspect, m.start(), m.end(), m.group(0)))
    for aspect, cues in _KO_CUES:
        hits: list[tuple[int, int, str]] = []
        for cue in cues:
            at = text.find(cue)
            while at >= 0:
                hits.append((at, -len(cue), cue))
                at = text.find(cue, at + 1)
        if not hits:
            continue
        hits.sort()
        end = 0
        for start, neg_len, cue in hits:
            if start >= end:
                found.append(AspectMention(aspect, start, start - neg_len, cue))
                end = start - neg_len
    found.sort(key=lambda a: (a.start, a.aspect.value))
    return found


_EN_STOP = frozenset(
    """a an the and or but if then so of to in on at for with from by as is are was were be been
    being it its this that these those i me my we our you your he she they them their his her
    not no nor do does did done have has had having very too just really also than there here
    what which who whom when where why how all any both each few more most other some such only
    own same can will would should could may might must am s t don didn doesn isn wasn won
    get got go went one would im ive it's i'm i've""".split()
)
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z']{2,}")


def english_keywords(text: str, top: int = 5) -> list[str]:
    """Most frequent content words (longer first on ties)."""
    words = [w.lower().strip("'") for w in _EN_WORD.findall(text)]
    counts = Counter(w for w in words if w not in _EN_STOP)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))][:top]


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    language: Language
    sentiment: Sentiment
    aspects: list[AspectMention] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


# Bad input: what the service refuses to analyse or store.
MAX_TEXT_CHARS = 5000


def text_problem(text: str) -> str | None:
    """Why a free text cannot be accepted, or None: too long, binary
    (control characters other than whitespace), or not valid text."""
    if len(text) > MAX_TEXT_CHARS:
        return f"longer than {MAX_TEXT_CHARS} characters"
    if _BINARY.search(text):
        return "contains binary or control characters"
    return None


# Control characters other than tab / newline / carriage return, lone
# surrogates, and U+FFFD (what a decoder leaves of bytes that were not
# text). One regex scan: the per-character generator it replaces was ~35 µs
# of CPU per comment on the ingestion path.
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffd]")
