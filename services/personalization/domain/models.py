"""Models retrained on a schedule from the histories, each scoring a
customer's *current* history, so new events count at once (fold-in):

- EASE (Steck 2019): closed-form item-item weights B = I - P/diag(P),
  P = (XᵀX + λI)⁻¹, over the most-interacted items; scores = x_u B.
- ALS from the ``implicit`` library; the customer's vector is recomputed
  from their current history against the trained item factors.
- Content: TF-IDF over item text (Korean tokenised with kiwipiepy), for items
  nobody interacted with yet and for similar-items pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from personalization.domain.catalog import F64, I64
from personalization.domain.signals import History

Matrix = Any  # scipy.sparse.csr_matrix


def interaction_matrix(
    histories: Sequence[History], n_items: int, *, binary: bool = True
) -> Matrix:
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for h in histories:
        idx, w = h.arrays()
        indices.extend(idx.tolist())
        data.extend([1.0] * len(idx) if binary else w.tolist())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(histories), n_items),
    )


@dataclass
class Ease:
    cols: I64  # global item index of each model column
    local: I64  # global -> column, -1 when not in the model
    weights: npt.NDArray[np.float32]
    version: str

    @classmethod
    def fit(
        cls, x: Matrix, *, lam: float = 250.0, max_items: int = 5000, version: str = ""
    ) -> Ease:
        n = x.shape[1]
        counts = np.asarray(x.getnnz(axis=0)).ravel()
        cols = np.flatnonzero(counts > 0)
        if len(cols) > max_items:
            cols = cols[np.argsort(-counts[cols], kind="stable")[:max_items]]
            cols.sort()
        xs = x[:, cols]
        g = (xs.T @ xs).toarray().astype(np.float64)
        g[np.diag_indices_from(g)] += lam
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        local = np.full(n, -1, dtype=np.int64)
        local[cols] = np.arange(len(cols))
        return cls(cols.astype(np.int64), local, b.astype(np.float32), version)

    def score(self, idx: I64, w: F64, n: int, *, binary: bool = True) -> F64:
        out = np.zeros(n)
        loc = self.local[idx[idx < len(self.local)]] if len(idx) else idx
        keep = loc >= 0
        if not keep.any():
            return out
        ww = (
            np.ones(int(keep.sum()), dtype=np.float32)
            if binary
            else w[idx < len(self.local)][keep].astype(np.float32)
        )
        s = ww @ self.weights[loc[keep]]
        out[self.cols] = s
        return out

    def related(self, idx: I64, item: int) -> int:
        """The history item that contributes most to ``item``'s score."""
        if item >= len(self.local) or self.local[item] < 0 or not len(idx):
            return -1
        valid = idx[idx < len(self.local)]
        loc = self.local[valid]
        keep = loc >= 0
        if not keep.any():
            return -1
        contrib = self.weights[loc[keep], self.local[item]]
        return int(valid[keep][int(np.argmax(contrib))])

    def related_many(self, idx: I64, items: I64) -> I64:
        """``related`` for several items at once (one gather)."""
        out = np.full(len(items), -1, dtype=np.int64)
        if not len(idx) or not len(items):
            return out
        valid = idx[idx < len(self.local)]
        loc = self.local[valid]
        keep = loc >= 0
        if not keep.any():
            return out
        inside = items < len(self.local)
        il = np.full(len(items), -1, dtype=np.int64)
        il[inside] = self.local[items[inside]]
        ok = il >= 0
        if ok.any():
            contrib = self.weights[loc[keep]][:, il[ok]]
            out[ok] = valid[keep][np.argmax(contrib, axis=0)]
        return out


@dataclass
class Als:
    """Item factors from ``implicit``'s ALS; customers folded in per request."""

    item_factors: F64
    yty: F64
    regularization: float
    alpha: float
    version: str
    _y32: npt.NDArray[np.float32] | None = None

    @classmethod
    def fit(
        cls,
        x: Matrix,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 7,
        version: str = "",
    ) -> Als:
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            calculate_training_loss=False,
        )
        model.fit(sp.csr_matrix(x, dtype=np.float32), show_progress=False)
        y = np.asarray(model.item_factors, dtype=np.float64)
        return cls(y, y.T @ y, regularization, alpha, version)

    def user_vector(self, idx: I64, w: F64) -> F64:
        """Conjugate of implicit's ``recalculate_user``: the least-squares
        customer vector for confidence 1 + alpha * w on the history."""
        keep = idx < len(self.item_factors)
        idx, w = idx[keep], w[keep]
        k = self.item_factors.shape[1]
        if not len(idx):
            return np.zeros(k)
        y = self.item_factors[idx]
        c = self.alpha * w  # confidence - 1
        a = self.yty + (y.T * c) @ y + self.regularization * np.eye(k)
        b = ((1.0 + c)[:, None] * y).sum(axis=0)
        return np.asarray(np.linalg.solve(a, b))

    def score(self, idx: I64, w: F64, n: int) -> F64:
        out = np.zeros(n)
        u = self.user_vector(idx, w)
        m = min(n, len(self.item_factors))
        # Single precision for the catalogue-wide product (half the memory
        # traffic; rankings do not need more).
        if self._y32 is None:
            self._y32 = self.item_factors.astype(np.float32)
        out[:m] = self._y32[:m] @ u.astype(np.float32)
        return out


def _identity(tokens: list[str]) -> list[str]:
    return tokens


_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_KEEP_TAGS = ("NNG", "NNP", "NR", "SL", "SH", "SN", "XR", "VV", "VA")


class Tokenizer:
    """Words for TF-IDF: kiwipiepy morphemes (nouns, roots, foreign words) for
    Korean text, lower-cased word characters otherwise. Kiwi loads lazily
    (seconds, holding the GIL: call ``warm`` before serving). With
    ``korean="bigram"`` Hangul words give the word and its syllable bigrams
    instead (no model; for tests and tiny deployments)."""

    def __init__(self, korean: str = "kiwi") -> None:
        self.korean = korean
        self._kiwi: Any = None

    def warm(self) -> None:
        self("워밍업")

    def __call__(self, text: str) -> list[str]:
        if not text:
            return []
        if not _HANGUL.search(text):
            return [w.lower() for w in _WORD.findall(text)]
        if self.korean != "kiwi":
            out = []
            for w in _WORD.findall(text):
                out.append(w.lower())
                if _HANGUL.search(w) and len(w) > 2:
                    out.extend(w[k : k + 2] for k in range(len(w) - 1))
            return out
        if self._kiwi is None:
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi()
        return [
            t.form.lower()
            for t in self._kiwi.tokenize(text)
            if t.tag.startswith(_KEEP_TAGS) and len(t.form) > 0
        ]


class ContentIndex:
    """TF-IDF rows of every described item. Texts are tokenised off the
    request path (``pending`` / ``tokenized``), token lists cached per item,
    so a rebuild after catalogue changes is cheap; requests use the last build."""

    def __init__(self, tokenize: Callable[[str], list[str]] | None = None) -> None:
        self.tokenize = tokenize or Tokenizer()
        self.texts: dict[int, str] = {}
        self.tokens: dict[int, list[str]] = {}
        self.matrix: Matrix = sp.csr_matrix((0, 0))
        self.dirty = False
        self._neighbours: dict[int, tuple[I64, F64]] = {}
        # Bumped whenever content scores may change (a build, new neighbours):
        # cached per-customer lists compare it.
        self.generation = 0

    def neighbours(self, i: int, k: int = 50) -> tuple[I64, F64]:
        """The ``k`` items most similar in text to ``i`` (precomputed after a
        build by ``precompute``, else computed here and cached per build)."""
        got = self._neighbours.get(i)
        if got is not None:
            return got
        if i >= self.matrix.shape[0] or self.matrix[i].nnz == 0:
            got = (np.zeros(0, dtype=np.int64), np.zeros(0))
        else:
            sim = np.asarray((self.matrix @ self.matrix[i].T).todense()).ravel()
            sim[i] = 0.0
            top = np.argpartition(-sim, min(k, len(sim) - 1))[:k]
            top = top[sim[top] > 0]
            got = (top.astype(np.int64), sim[top].astype(np.float64))
        self._neighbours[i] = got
        return got

    def neighbour_table(
        self, k: int = 50, chunk: int = 512
    ) -> tuple[Matrix, dict[int, tuple[I64, F64]]]:
        """Every described item's ``k`` text neighbours, from the current
        build: pure computation over a snapshot, so ``Engine.refresh_content``
        runs it outside the lock, off the request path. Chunked so the
        similarity block stays small (``chunk`` x items)."""
        m = self.matrix
        out: dict[int, tuple[I64, F64]] = {}
        if m.shape[0] == 0 or m.nnz == 0:
            return m, out
        rows = np.flatnonzero(np.diff(m.indptr) > 0)
        mt = m.T.tocsr()
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sim = np.asarray((m[part] @ mt).todense(), dtype=np.float32)
            sim[np.arange(len(part)), part] = 0.0
            kk = min(k, sim.shape[1] - 1)
            top = np.argpartition(-sim, kk, axis=1)[:, :kk]
            vals = np.take_along_axis(sim, top, axis=1)
            for r, i in enumerate(part.tolist()):
                keep = vals[r] > 0
                out[i] = (top[r][keep].astype(np.int64), vals[r][keep].astype(np.float64))
        return m, out

    def install_neighbours(self, built_from: Matrix, table: dict[int, tuple[I64, F64]]) -> bool:
        """Installs a table computed by ``neighbour_table`` unless the index
        was rebuilt meanwhile (then the next refresh computes a new one)."""
        if built_from is not self.matrix:
            return False
        self._neighbours = {**table, **self._neighbours}
        self.generation += 1
        return True

    def profile_scores(self, items: I64, w: F64, n: int) -> F64:
        """Content scores for a history from cached neighbours (cheap per request)."""
        rows = [(self.neighbours(i), wi) for i, wi in zip(items.tolist(), w.tolist(), strict=True)]
        rows = [r for r in rows if len(r[0][0])]
        if not rows:
            return np.zeros(n)
        idx = np.concatenate([nb for (nb, _s), _w in rows])
        val = np.concatenate([wi * sim for (_nb, sim), wi in rows])
        keep = idx < n
        return np.bincount(idx[keep], weights=val[keep], minlength=n)[:n].astype(np.float64)

    def set_text(self, i: int, text: str) -> None:
        if self.texts.get(i) != text:
            self.texts[i] = text
            self.tokens.pop(i, None)
            self.dirty = True

    def pending(self) -> dict[int, str]:
        return {i: t for i, t in self.texts.items() if i not in self.tokens}

    def tokenized(self, done: dict[int, list[str]]) -> None:
        for i, toks in done.items():
            if i in self.texts:
                self.tokens[i] = toks

    def build(self, n: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tokenized({i: self.tokenize(t) for i, t in self.pending().items()})
        rows = sorted(i for i, t in self.tokens.items() if t)
        if not rows:
            self.matrix = sp.csr_matrix((n, 1), dtype=np.float32)
        else:
            vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
            m = vec.fit_transform([self.tokens[i] for i in rows]).tocoo()
            self.matrix = sp.csr_matrix(
                (m.data, (np.asarray(rows)[m.row], m.col)), shape=(n, m.shape[1])
            )
        self._neighbours = {}
        self.dirty = False
        self.generation += 1

    def similar_to(self, items: I64, w: F64, n: int) -> F64:
        out = np.zeros(n)
        if not len(items) or self.matrix.shape[0] == 0:
            return out
        keep = items < self.matrix.shape[0]
        items, w = items[keep], w[keep]
        if not len(items):
            return out
        profile = sp.csr_matrix(w.astype(np.float32)) @ self.matrix[items]
        s = np.asarray((self.matrix @ profile.T).todense()).ravel()
        m = min(n, len(s))
        out[:m] = s[:m]
        return out

    def related(self, items: I64, item: int) -> int:
        if not len(items) or item >= self.matrix.shape[0]:
            return -1
        keep = items[items < self.matrix.shape[0]]
        if not len(keep):
            return -1
        s = np.asarray((self.matrix[keep] @ self.matrix[item].T).todense()).ravel()
        return int(keep[int(np.argmax(s))]) if s.max() > 0 else -1
