"""Text analytics: sentiment from the trained model, aspects with their
spans and the sentiment of the clause they are in, keywords (Korean nouns
from kiwipiepy's morphological analysis; English content words)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from feedback.domain.text import (
    AspectMention,
    Language,
    Sentiment,
    TextAnalysis,
    clauses,
    detect_language,
    english_keywords,
    tag_aspects,
)

log = logging.getLogger(__name__)


class SentimentClassifier(Protocol):
    def classify(self, texts: Sequence[str]) -> list[Sentiment]: ...


class KoreanKeywords:
    """Nouns (NNG/NNP) and foreign words (SL) from kiwipiepy, most frequent
    first. The analyser loads lazily (it takes seconds) and is shared."""

    _TAGS = frozenset({"NNG", "NNP", "SL", "XR"})
    _STOP = frozenset({"것", "수", "거", "때", "점", "정도", "진짜", "정말", "그냥", "이번"})

    @classmethod
    def analyser(cls) -> Any:
        from feedback.adapters.sentiment_model import kiwi

        return kiwi()

    def __call__(self, texts: Sequence[str], top: int = 5) -> list[list[str]]:
        if not texts:
            return []
        kiwi = self.analyser()
        out = []
        for tokens in kiwi.tokenize(list(texts)):
            counts = Counter(
                t.form
                for t in tokens
                if t.tag in self._TAGS and t.form not in self._STOP and len(t.form) > 1
            )
            out.append([w for w, _ in counts.most_common(top)])
        return out


class TextAnalyzer:
    def __init__(self, classifier: SentimentClassifier, *, korean_keywords: bool = True) -> None:
        self.classifier = classifier
        self.korean = KoreanKeywords() if korean_keywords else None

    def analyze(self, texts: Sequence[str], *, keywords: bool = True) -> list[TextAnalysis]:
        """One analysis per text, all texts' sentences scored in one call.
        Without ``keywords`` the morphological analysis (the costliest part)
        is skipped: what ingestion stores is sentiment and aspects."""
        if not texts:
            return []
        mentions = [tag_aspects(t) for t in texts]
        # Clauses that carry an aspect get their own sentiment.
        clause_texts: list[str] = []
        clause_of: list[list[tuple[int, int, int]]] = []  # per text: (start, end, index)
        for t, ms in zip(texts, mentions, strict=True):
            spans = []
            # A text of one clause is its own clause: the whole text's
            # sentiment serves its aspects (no second classification).
            cut = clauses(t) if ms else []
            if len(cut) > 1:
                for start, end in cut:
                    if any(start <= m.start < end for m in ms):
                        spans.append((start, end, len(clause_texts)))
                        clause_texts.append(t[start:end])
            clause_of.append(spans)
        sentiments = self.classifier.classify([*texts, *clause_texts])
        whole, parts = sentiments[: len(texts)], sentiments[len(texts) :]
        langs = [detect_language(t) for t in texts]
        ko_idx = [i for i, lang in enumerate(langs) if lang is Language.KO]
        ko_kw = (
            self.korean([texts[i] for i in ko_idx])
            if self.korean and keywords
            else [[] for _ in ko_idx]
        )
        found: dict[int, list[str]] = dict(zip(ko_idx, ko_kw, strict=True))
        out = []
        for i, t in enumerate(texts):
            tagged: list[AspectMention] = []
            for m in mentions[i]:
                label = whole[i].label
                for start, end, k in clause_of[i]:
                    if start <= m.start < end:
                        label = parts[k].label
                        break
                tagged.append(AspectMention(m.aspect, m.start, m.end, m.cue, label))
            if not keywords:
                kws: list[str] | None = []
            elif langs[i] is Language.KO:
                kws = found.get(i)
            else:
                kws = english_keywords(t)
            out.append(TextAnalysis(langs[i], whole[i], tagged, kws or []))
        return out

    def analyze_one(self, text: str) -> TextAnalysis:
        return self.analyze([text])[0]
