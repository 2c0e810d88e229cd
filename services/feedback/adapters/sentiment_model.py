"""Sentiment (negative / neutral / positive with a score) for Korean and
English, trained from the labelled data this service carries in
``services/feedback/data`` (sources and licences: data/README.md).

Decision (docs/adr/0050-sentiment-model.md): no weights are committed; the
model is trained from the carried data at first start (or by
``python -m feedback.adapters.sentiment_model``) and cached as a pickle keyed
by the data's hash and the scikit-learn version, so a new library version or
new data retrains instead of loading a stale pickle.

Per language the classifier is an ensemble of two linear models over word
and character n-grams: a logistic regression on TF-IDF features and a
logistic regression on NB-scaled binary features (NB-LR, Wang & Manning
2012); for English the VADER lexicon's scores are extra features (VADER is
strong on short, informal text where n-grams have little evidence).
"""

from __future__ import annotations

import hashlib
import logging
import lzma
import os
import pickle
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kiwipiepy
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from feedback.domain.text import Language, Sentiment, SentimentLabel, detect_language

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
KO_FILE = DATA_DIR / "ko_movie_reviews.tsv.xz"
EN_FILE = DATA_DIR / "en_rated_snippets.tsv.xz"
LABELS = (SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE)
# Words: Hangul syllable runs, Latin words, emoticon-ish runs of ㅋ/ㅎ/ㅠ/ㅜ.
TOKEN_PATTERN = r"(?u)[가-힣]+|[a-zA-Z][a-zA-Z']*|[ㅋㅎㅠㅜ]+|[!?]+"
MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    label: int  # index into LABELS
    corpus: str


def _split_bucket(text: str) -> int:
    """0..99 from the text itself: the same text always lands in the same
    split (so duplicates cannot straddle train and test)."""
    return zlib.crc32(text.encode()) % 100


def is_held_out(text: str) -> bool:
    """The project's own validation split: 15 % of the texts, by hash."""
    return _split_bucket(text) < 15


def load_korean(path: Path = KO_FILE) -> list[LabelledText]:
    """NSMC raw ratings: 1-4 negative, 5-8 neutral, 9-10 positive."""
    out = []
    with lzma.open(path, "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            rating, _, text = line.rstrip("\n").partition("\t")
            if not text.strip():
                continue
            r = int(rating)
            out.append(LabelledText(text, 0 if r <= 4 else 2 if r >= 9 else 1, "movie"))
    return out


def load_english(path: Path = EN_FILE) -> list[LabelledText]:
    """VADER ground truth, mean of >= 20 raters in -4..+4: below -0.5
    negative, above +0.5 positive, between neutral."""
    out = []
    with lzma.open(path, "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            corpus, mean, text = line.rstrip("\n").split("\t", 2)
            m = float(mean)
            label = 0 if m < -0.5 else 2 if m > 0.5 else 1
            out.append(LabelledText(text, label, corpus.removesuffix("Snippets")))
    return out


def split(rows: Sequence[LabelledText]) -> tuple[list[LabelledText], list[LabelledText]]:
    train = [r for r in rows if not is_held_out(r.text)]
    test = [r for r in rows if is_held_out(r.text)]
    return train, test


_vader: Any = None


def _vader_scores(texts: Sequence[str]) -> np.ndarray:
    global _vader
    if _vader is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _vader = SentimentIntensityAnalyzer()
    rows = []
    for t in texts:
        s = _vader.polarity_scores(t)
        rows.append([s["compound"], s["pos"], s["neg"], s["neu"]])
    return np.asarray(rows, dtype=np.float64)


_kiwi: Any = None
_kiwi_lock = threading.Lock()


def _morphemes(texts: Sequence[str]) -> list[str]:
    """Each text as its kiwipiepy morphemes, ``form/TAG`` separated by
    spaces (the Korean model's word features, ADR 0150): "배송이 늦어요" ->
    "배송/NNG 이/JKS 늦/VA 어요/EF". kiwipiepy ships its model in the PyPI
    package (nothing downloaded); it loads once per process, lazily."""
    return [" ".join(f"{t.form}/{t.tag}" for t in toks) for toks in kiwi().tokenize(list(texts))]


def kiwi() -> Any:
    """The process's one kiwipiepy analyser (sentiment features and Korean
    keywords share it: its model takes seconds to load and its memory once)."""
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            _kiwi = Kiwi(num_workers=-1)
        return _kiwi


class LanguageModel:
    """One language's classifier. ``fit`` then ``proba``.

    Two questions, two models (ADR 0080): *is the text neutral?* is a
    3-class logistic regression over all rows (its P(neutral)); *positive or
    negative?* is answered by models trained on the polar rows only (neutral
    texts blur that boundary): a logistic regression on TF-IDF features and
    an NB-LR on binary features scaled by their log-count ratio, averaged.
    """

    def __init__(
        self,
        language: Language,
        *,
        vader: bool = False,
        morphemes: bool = False,
        c: float = 2.0,
        polar_c: float = 2.0,
        nb_c: float = 0.3,
        char_analyzer: str = "char_wb",
        char_ngrams: tuple[int, int] = (1, 4),
        max_char_features: int = 200_000,
    ) -> None:
        self.language = language
        self.vader = vader
        self.morphemes = morphemes
        self.c = c
        self.word = (
            # Morpheme 1-3-grams over _morphemes' "form/TAG" tokens.
            TfidfVectorizer(
                token_pattern=r"\S+",
                ngram_range=(1, 3),
                min_df=2,
                sublinear_tf=True,
                max_features=400_000,
                lowercase=False,
            )
            if morphemes
            else TfidfVectorizer(
                token_pattern=TOKEN_PATTERN,
                ngram_range=(1, 2),
                min_df=2,
                sublinear_tf=True,
                max_features=200_000,
                lowercase=True,
            )
        )
        self.char = TfidfVectorizer(
            analyzer=char_analyzer,
            ngram_range=char_ngrams,
            min_df=2,
            sublinear_tf=True,
            max_features=max_char_features,
            lowercase=True,
        )
        self.neutral_lr = LogisticRegression(C=c, max_iter=300, random_state=0)
        self.polar_lr = LogisticRegression(C=polar_c, solver="liblinear", random_state=0)
        self.polar_nb = LogisticRegression(C=nb_c, solver="liblinear", random_state=0)
        self.nb_r: np.ndarray | None = None

    def _features(self, texts: Sequence[str], fit: bool = False) -> sp.csr_matrix:
        words = _morphemes(texts) if self.morphemes else texts
        if fit:
            w, c = self.word.fit_transform(words), self.char.fit_transform(texts)
        else:
            w, c = self.word.transform(words), self.char.transform(texts)
        blocks = [w, c]
        if self.vader:
            blocks.append(sp.csr_matrix(_vader_scores(texts) * 3.0))
        return sp.hstack(blocks, format="csr")

    @staticmethod
    def _nb_ratio(x: sp.csr_matrix, positive: np.ndarray) -> np.ndarray:
        """Log-count ratio of positive vs negative texts per feature (binary
        presence), the NB part of NB-LR (Wang & Manning 2012)."""
        b = (x > 0).astype(np.float64)
        p = np.asarray(b[positive].sum(axis=0)).ravel() + 1.0
        q = np.asarray(b[~positive].sum(axis=0)).ravel() + 1.0
        return np.log((p / p.sum()) / (q / q.sum()))  # type: ignore[no-any-return]

    def _nb_features(self, x: sp.csr_matrix) -> sp.csr_matrix:
        assert self.nb_r is not None
        b = (x > 0).astype(np.float64)
        return sp.csr_matrix(b.multiply(self.nb_r))

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> LanguageModel:
        y = np.asarray(labels)
        x = self._features(texts, fit=True)
        self.neutral_lr.fit(x, y)
        polar = y != 1
        xp, positive = x[polar], y[polar] == 2
        self.polar_lr.fit(xp, positive)
        self.nb_r = self._nb_ratio(xp, positive)
        self.polar_nb.fit(self._nb_features(xp), positive)
        return self

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in LABELS order."""
        x = self._features(texts)
        neutral = self.neutral_lr.predict_proba(x)[:, 1]
        positive = (
            self.polar_lr.predict_proba(x)[:, 1]
            + self.polar_nb.predict_proba(self._nb_features(x))[:, 1]
        ) / 2.0
        polar = 1.0 - neutral
        return np.column_stack([polar * (1.0 - positive), neutral, polar * positive])


def language_model(language: Language, *, korean_morphemes: bool = True) -> LanguageModel:
    """The configuration the service trains (and the benchmark measures).
    ``korean_morphemes=False`` trades ~0.008 Korean polar accuracy for ~500
    µs less CPU per Korean text (ADR 0150): word 1-2-grams instead."""
    if language is Language.KO:
        return LanguageModel(language, morphemes=korean_morphemes, max_char_features=300_000)
    return LanguageModel(language, vader=True)


class SentimentModel:
    """Both languages; picks the model by the text's script."""

    def __init__(self, models: dict[Language, LanguageModel]) -> None:
        self.models = models

    def classify(self, texts: Sequence[str]) -> list[Sentiment]:
        out: list[Sentiment | None] = [None] * len(texts)
        by_lang: dict[Language, list[int]] = {}
        for i, t in enumerate(texts):
            by_lang.setdefault(detect_language(t), []).append(i)
        for lang, idx in by_lang.items():
            model = self.models.get(lang) or self.models[Language.EN]
            probs = model.proba([texts[i][:MAX_TEXT] for i in idx])
            for i, p in zip(idx, probs, strict=True):
                out[i] = Sentiment.from_probabilities(float(p[0]), float(p[1]), float(p[2]), lang)
        return [s for s in out if s is not None]

    def classify_one(self, text: str) -> Sentiment:
        return self.classify([text])[0]


def _data_hash(limit: int, korean_morphemes: bool = True) -> str:
    h = hashlib.sha256()
    for p in (KO_FILE, EN_FILE):
        h.update(p.read_bytes())
    h.update(
        f"{limit}|{sklearn.__version__}|{kiwipiepy.__version__}|{korean_morphemes}|v3".encode()
    )
    return h.hexdigest()[:16]


def _subsample(rows: list[LabelledText], limit: int) -> list[LabelledText]:
    if not limit or len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def train(limit: int = 0, *, korean_morphemes: bool = True) -> SentimentModel:
    """Trains both languages on their training splits (``limit`` rows per
    language at most; 0 for all)."""
    ko_train, _ = split(load_korean())
    en_train, _ = split(load_english())
    ko_train, en_train = _subsample(ko_train, limit), _subsample(en_train, limit)
    ko = language_model(Language.KO, korean_morphemes=korean_morphemes).fit(
        [r.text for r in ko_train], [r.label for r in ko_train]
    )
    en = language_model(Language.EN).fit([r.text for r in en_train], [r.label for r in en_train])
    return SentimentModel({Language.KO: ko, Language.EN: en})


def load_or_train(
    cache_dir: Path | None, limit: int = 0, *, korean_morphemes: bool = True
) -> SentimentModel:
    """The cached model for the carried data, training it when absent."""
    path = cache_dir / f"sentiment-{_data_hash(limit, korean_morphemes)}.pkl" if cache_dir else None
    if path is not None and path.exists():
        try:
            with path.open("rb") as f:
                model = pickle.load(f)
            if isinstance(model, SentimentModel):
                return model
        except Exception as exc:  # a torn or foreign file: retrain
            log.warning("sentiment model cache unreadable, retraining: %r", exc)
    log.info("training sentiment models from the carried data", extra={"limit": limit})
    model = train(limit, korean_morphemes=korean_morphemes)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of this process's own: two processes training at once (two
        # replicas on one cache volume, parallel test workers) would
        # otherwise write one file, and the second rename would find none.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return model


_WS = re.compile(r"\s+")


def main() -> None:  # pragma: no cover - build step
    import argparse

    p = argparse.ArgumentParser(description="Train and cache the sentiment models.")
    p.add_argument("--cache-dir", default=".cxloop/models")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--no-korean-morphemes", action="store_true")
    a = p.parse_args()
    load_or_train(Path(a.cache_dir), a.limit, korean_morphemes=not a.no_korean_morphemes)


if __name__ == "__main__":  # pragma: no cover
    main()
