"""The Korean sentiment model's word features are kiwipiepy morphemes
(ADR 0150): endings and stems are separate features, so a shop review's
"늦어서" and a movie review's "늦었다" share the stem 늦."""

from __future__ import annotations

from feedback.adapters.sentiment_model import LanguageModel, _morphemes, language_model
from feedback.domain.text import Language


def test_morphemes_split_stems_from_endings() -> None:
    got = _morphemes(["배송이 늦어요", "app 너무 느려요"])
    assert got[0].split()[0] == "배송/NNG"
    assert "app/SL" in got[1].split()
    assert all("/" in tok for text in got for tok in text.split())


def test_korean_model_learns_from_morphemes_and_english_from_words() -> None:
    ko = language_model(Language.KO)
    assert isinstance(ko, LanguageModel) and ko.morphemes
    en = language_model(Language.EN)
    assert not en.morphemes and en.vader
    texts = ["배송이 늦어요", "배송이 늦어서 별로", "정말 좋아요", "좋아요 최고"] * 3
    labels = [0, 0, 2, 2] * 3
    ko = LanguageModel(Language.KO, morphemes=True).fit(texts, labels)
    assert "늦/VV" in ko.word.vocabulary_ or "늦/VA" in ko.word.vocabulary_
    p = ko.proba(["늦어요", "좋아요"])
    assert p.shape == (2, 3)
    assert p[0, 0] > p[0, 2] and p[1, 2] > p[1, 0]


def test_korean_morphemes_can_be_turned_off_and_key_their_own_cache(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from feedback.adapters.sentiment_model import _data_hash
    from feedback.config import FeedbackSettings

    assert not language_model(Language.KO, korean_morphemes=False).morphemes
    assert _data_hash(100, True) != _data_hash(100, False)
    monkeypatch.setenv("CXLOOP_ENV", "development")
    monkeypatch.setenv("CXLOOP_FEEDBACK_SENTIMENT_KOREAN_MORPHEMES", "false")
    assert FeedbackSettings.from_env().sentiment_korean_morphemes is False
    monkeypatch.delenv("CXLOOP_FEEDBACK_SENTIMENT_KOREAN_MORPHEMES")
    assert FeedbackSettings.from_env().sentiment_korean_morphemes is True
