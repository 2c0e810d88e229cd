"""Strategies behind one interface, the hybrid that blends them, and the
business rules applied to every answer. Each recommended item carries the
strategy that produced it and a reason a frontend can show."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from personalization.domain.catalog import F64, I64, Catalog
from personalization.domain.models import Als, ContentIndex, Ease
from personalization.domain.signals import History, Signals, daypart, week_part


class Reason(StrEnum):
    SIMILAR_TO_HISTORY = "similar_to_history"  # "because you viewed X"
    BOUGHT_TOGETHER = "bought_together"  # "goes with X in your cart"
    POPULAR = "popular"
    TRENDING = "trending"
    NEW_ARRIVAL = "new_arrival"
    VIEWING_NOW = "viewing_now"  # "similar to the item on this page"
    POPULAR_IN_CONTEXT = "popular_in_context"  # "popular on app this evening"
    CONTENT_MATCH = "content_match"  # "like X you viewed" (text/attributes)
    PINNED = "pinned"


STRATEGIES = ("hybrid", "popular", "trending", "item_knn", "ease", "als", "content", "sequence")
CONTEXT_KEYS = frozenset(
    {
        "channel",
        "store",
        "hour",
        "weekday",
        "current_item",
        "cart",
        "category",
        "price_min",
        "price_max",
        "page",
    }
)


@dataclass(frozen=True)
class Rules:
    """Business rules for a placement."""

    boosts: Mapping[str, float] = field(default_factory=dict)  # item id or "category:x"
    pins: Mapping[str, int] = field(default_factory=dict)  # item id -> 0-based position
    max_per_category: int = 0  # 0: no limit
    exclude_purchased: bool = True


@dataclass(frozen=True)
class Query:
    customer_id: str
    n: int = 10
    personalized: bool = True  # the customer consented to personalization
    strategy: str = "hybrid"
    channel: str = ""
    store: str = ""
    hour: int | None = None
    weekday: int | None = None
    current_item: str = ""
    cart: tuple[str, ...] = ()
    category: str = ""
    price_min: float | None = None
    price_max: float | None = None
    exclude: frozenset[str] = frozenset()
    exclude_seen: bool = False
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True, slots=True)
class Recommended:
    item_id: str
    score: float
    reason: Reason
    strategy: str
    related_item_id: str = ""
    explanation: str = ""


@dataclass
class Component:
    name: str
    scores: F64
    reason: Reason
    # For item-based components: which input item explains a given item.
    anchors: I64 | None = None


@dataclass
class State:
    catalog: Catalog
    signals: Signals
    content: ContentIndex
    ease: Ease | None = None
    als: Als | None = None


class Strategy(Protocol):
    name: str

    def components(self, st: State, q: Query, h: History | None) -> list[Component]: ...


def _norm(s: F64) -> F64:
    m = float(s.max()) if len(s) else 0.0
    return s / m if m > 0 else s


def _history(h: History | None, q: Query) -> tuple[I64, F64]:
    if h is None or not q.personalized:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return h.arrays()


def _neighbour_sum(rows: list[tuple[I64, F64]], w: F64, n: int) -> F64:
    """sum_i w_i * row_i over neighbour rows (index, similarity), as one
    bincount instead of a scatter per row."""
    rows_w = [(nb, wi * sim) for (nb, sim), wi in zip(rows, w.tolist(), strict=True) if len(nb)]
    if not rows_w:
        return np.zeros(n)
    idx = np.concatenate([r[0] for r in rows_w])
    val = np.concatenate([r[1] for r in rows_w])
    keep = idx < n
    return np.bincount(idx[keep], weights=val[keep], minlength=n)[:n].astype(np.float64)


def _row_norm(s: F64) -> F64:
    """``_norm`` of each row."""
    mx = s.max(axis=1, keepdims=True) if s.shape[1] else np.zeros((len(s), 1))
    return np.where(mx > 0, s / np.where(mx > 0, mx, 1.0), s)


def _rows_product(x: Any, rows: Mapping[int, tuple[I64, F64]], n: int) -> F64:
    """``x`` (customers x items, sparse) times the item-item matrix whose row i
    is ``rows[i]`` (neighbour indexes, similarities): ``_neighbour_sum`` for
    many customers at once."""
    items = sorted(i for i in rows if i < n)
    lengths = [len(rows[i][0]) for i in items]
    indptr = np.zeros(n + 1, dtype=np.int64)
    if items:
        counts = np.zeros(n, dtype=np.int64)
        counts[items] = lengths
        indptr[1:] = np.cumsum(counts)
        cols = np.concatenate([rows[i][0] for i in items])
        data = np.concatenate([rows[i][1] for i in items])
    else:
        cols, data = np.zeros(0, dtype=np.int64), np.zeros(0)
    keep = cols < n
    if not keep.all():  # neighbours past the catalogue's end (never in practice)
        data = np.where(keep, data, 0.0)
        cols = np.where(keep, cols, 0)
    m = sp.csr_matrix((data, cols, indptr), shape=(n, n))
    return np.asarray((x @ m).toarray(), dtype=np.float64)


def _knn_scores(st: State, items: I64, w: F64, n: int) -> F64:
    nbs = st.signals.co.neighbours
    return _neighbour_sum([nbs(i) for i in items.tolist()], w, n)


class Popular:
    name = "popular"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        n = len(st.catalog)
        comps = [Component("popular", _norm(st.signals.popular.vector(n)), Reason.POPULAR)]
        ctx = np.zeros(n)
        used = 0
        for key in _context_keys(q):
            c = st.signals.by_context.get(key)
            if c is not None and c.total > 0:
                ctx += _norm(c.vector(n))
                used += 1
        if used:
            comps.append(Component("popular_in_context", ctx / used, Reason.POPULAR_IN_CONTEXT))
        return comps


class Trending:
    name = "trending"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        n = len(st.catalog)
        return [Component("trending", _norm(st.signals.trending.vector(n)), Reason.TRENDING)]


class ItemKnn:
    name = "item_knn"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        idx, w = _history(h, q)
        n = len(st.catalog)
        return [Component("item_knn", _knn_scores(st, idx, w, n), Reason.SIMILAR_TO_HISTORY)]


class Recent:
    """The last few items of the history (most recent weighted highest),
    through the item-item models: what the customer is after right now."""

    name = "recent"
    window = 5

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        n = len(st.catalog)
        if h is None or not q.personalized or not h.recent:
            return [Component("recent", np.zeros(n), Reason.SIMILAR_TO_HISTORY)]
        last = np.asarray(h.recent[-self.window :], dtype=np.int64)
        w = np.linspace(0.5, 1.0, len(last))
        s = _norm(_knn_scores(st, last, w, n))
        if st.ease is not None:
            s = s + _norm(st.ease.score(last, w, n, binary=False))
        return [Component("recent", s, Reason.SIMILAR_TO_HISTORY)]


class NextItems:
    """What tends to come next after the customer's last few items: the
    item-to-next-item transitions (``Signals.transitions``, ADR 0240) of
    the last ``window`` items, the most recent weighted highest."""

    name = "sequence"
    window = 5
    decay = 0.7

    @classmethod
    def weights(cls, count: int) -> F64:
        """The weight of each of the last ``count`` items, oldest first."""
        return np.asarray(cls.decay ** np.arange(count - 1, -1, -1), dtype=np.float64)

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        n = len(st.catalog)
        if h is None or not q.personalized or not h.recent:
            return [Component("sequence", np.zeros(n), Reason.SIMILAR_TO_HISTORY)]
        last = h.recent[-self.window :]
        nbs = st.signals.transitions.neighbours
        s = _neighbour_sum([nbs(i) for i in last], self.weights(len(last)), n)
        return [Component("sequence", s, Reason.SIMILAR_TO_HISTORY)]


class EaseStrategy:
    name = "ease"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        idx, w = _history(h, q)
        n = len(st.catalog)
        s = st.ease.score(idx, w, n) if st.ease is not None else np.zeros(n)
        return [Component("ease", s, Reason.SIMILAR_TO_HISTORY)]


class AlsStrategy:
    name = "als"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        idx, w = _history(h, q)
        n = len(st.catalog)
        s = st.als.score(idx, w, n) if st.als is not None and len(idx) else np.zeros(n)
        return [Component("als", s, Reason.SIMILAR_TO_HISTORY)]


class Content:
    name = "content"

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        idx, w = _history(h, q)
        n = len(st.catalog)
        # The last 20 history items through cached text neighbours.
        idx, w = idx[-20:], w[-20:]
        return [Component("content", st.content.profile_scores(idx, w, n), Reason.CONTENT_MATCH)]


# The starting point of the blend the service learns (domain/tuning.py, ADR
# 0140, 0191) and what it serves until the first tuning: EASE, the strongest
# single model on both MovieLens-100K protocols, with small weights on ALS and
# item-kNN (an ensemble that stays near EASE where ALS is weak, random split,
# and gains where it is not, time-ordered). The tuner moves away from it only
# on evidence. Normalised component scores; CXLOOP_PERSONALIZATION_BLEND
# overrides.
DEFAULT_BLEND: Mapping[str, float] = {
    "ease": 1.0,
    "als": 0.1,
    "item_knn": 0.1,
    "content": 0.05,
    "popular": 0.0,
    "popular_in_context": 0.05,
    "trending": 0.0,
    "recent": 0.0,
    # Item-to-next-item transitions (ADR 0240): no weight until the tuner
    # finds evidence for one on the last-item validation split.
    "sequence": 0.0,
    # Request context (not personal data): always used, consent or not.
    "viewing_now": 3.0,
    "cart": 2.0,
}
# Customers with no usable history (no consent, anonymous, new): popularity,
# in context and trending, plus the request context above.
FALLBACK_BLEND: Mapping[str, float] = {
    "popular": 0.3,
    "popular_in_context": 0.15,
    "trending": 0.1,
    "viewing_now": 3.0,
    "cart": 2.0,
}


# Strategies that read the customer's history (cached per customer); the
# others read only shared signals and the request.
PERSONAL = frozenset({"ease", "als", "item_knn", "content", "recent", "sequence"})


class Hybrid:
    name = "hybrid"

    def __init__(self, blend: Mapping[str, float] | None = None) -> None:
        self.blend = dict(blend or DEFAULT_BLEND)
        self.parts: Sequence[Strategy] = (
            EaseStrategy(),
            AlsStrategy(),
            ItemKnn(),
            Content(),
            Popular(),
            Trending(),
            Recent(),
            NextItems(),
        )

    def uses(self, personal: bool) -> list[Strategy]:
        """The parts that contribute: personal ones only with a history,
        none with a zero weight (popularity always: the fallback's base)."""
        return [
            part
            for part in self.parts
            if (personal or part.name not in PERSONAL)
            and (self.blend.get(part.name, 0.0) > 0 or part.name == "popular")
        ]

    def components(self, st: State, q: Query, h: History | None) -> list[Component]:
        personal = h is not None and q.personalized and bool(h.weights)
        out: list[Component] = []
        for part in self.uses(personal):
            out.extend(part.components(st, q, h))
        return out


def _context_keys(q: Query) -> list[str]:
    keys = []
    if q.channel:
        keys.append(f"channel:{q.channel}")
    if q.store:
        keys.append(f"store:{q.store}")
    if q.hour is not None:
        keys.append(f"daypart:{daypart(q.hour)}")
    if q.weekday is not None:
        keys.append(f"week:{week_part(q.weekday)}")
    return keys


def _session_components(st: State, q: Query) -> list[Component]:
    """Request context: the item on the page and the cart (both sent by the
    frontend for this request, so usable without personalization consent)."""
    n = len(st.catalog)
    out = []
    cur = st.catalog.index.get(q.current_item) if q.current_item else None
    if cur is not None:
        one = np.asarray([cur], dtype=np.int64)
        s = _norm(_knn_scores(st, one, np.ones(1), n)) + 0.5 * _norm(
            st.content.profile_scores(one, np.ones(1), n)
        )
        out.append(Component("viewing_now", s, Reason.VIEWING_NOW, np.full(n, cur)))
    cart = [st.catalog.index[c] for c in q.cart if c in st.catalog.index]
    if cart:
        idx = np.asarray(cart, dtype=np.int64)
        out.append(
            Component("cart", _knn_scores(st, idx, np.ones(len(idx)), n), Reason.BOUGHT_TOGETHER)
        )
    return out


SINGLE: Mapping[str, Strategy] = {
    s.name: s
    for s in (
        Popular(),
        Trending(),
        ItemKnn(),
        EaseStrategy(),
        AlsStrategy(),
        Content(),
        NextItems(),
    )
}


@dataclass(slots=True)
class _PersonalList:
    """A customer's personal components, weighted and blended, kept for the
    ``candidates`` best items only (plus the history's size, so excluding
    what they saw still leaves enough). Valid while the customer's history
    and the models it was computed with are unchanged."""

    history: History
    version: int
    ease: object
    als: object
    content: int
    cand: I64  # item indexes, ascending
    total: F64  # blended personal score of each candidate
    best: I64  # which of ``comps`` contributes most to each candidate
    best_val: F64
    comps: list[Component]  # name, reason (scores dropped)


@dataclass(slots=True)
class _SharedScores:
    """The non-personal components (popularity, in context, trending) as
    weighted, normalised vectors; valid until the next event or catalogue change."""

    signals: int
    catalog: int
    comps: list[Component]  # scores: the weighted, normalised vector
    total: F64  # their sum, plus the tie-breaking priors
    new_items: F64 | None
    # The ``TOP_SHARED`` best items by ``total`` and the lowest total among
    # them: an item outside every candidate set scores at most ``floor``.
    top: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    floor: float = math.inf


TOP_SHARED = 1000


class Recommender:
    """Scores a request as: shared vectors (cached per context until the next
    event) + the customer's cached personal candidates + the request's own
    context (page item, cart); the business rules then rank."""

    # Personal candidates kept per customer (beyond their history's size).
    candidates = 300
    # Customers whose personal lists are kept (least recently used dropped).
    max_cached = 20_000

    def __init__(self, state: State, blend: Mapping[str, float] | None = None) -> None:
        self.state = state
        self.hybrid = Hybrid(blend)
        self._personal: OrderedDict[tuple[str, str], _PersonalList] = OrderedDict()
        self._shared: dict[tuple[object, ...], _SharedScores] = {}
        self.hits = 0
        self.misses = 0

    def strategy(self, name: str) -> Strategy:
        return self.hybrid if name == "hybrid" else SINGLE[name]

    def forget(self, customer_id: str) -> None:
        """Erasure / consent withdrawn: the customer's cached lists go too."""
        for key in [k for k in self._personal if k[0] == customer_id]:
            del self._personal[key]

    def _parts(self, name: str, personal: bool) -> list[Strategy]:
        if name == "hybrid":
            return self.hybrid.uses(personal)
        return [SINGLE[name]]

    def _weights(
        self, name: str, personal: bool, comps: Sequence[Component]
    ) -> Mapping[str, float]:
        if name != "hybrid":
            return {c.name: 1.0 for c in comps}
        return self.hybrid.blend if personal else FALLBACK_BLEND

    def personal_list(self, q: Query, h: History, n: int) -> _PersonalList | None:
        """The customer's personal candidates, from the cache when their
        history, the models and the content index are those it was built on."""
        st = self.state
        key = (q.customer_id, q.strategy)
        got = self._personal.get(key)
        gen = st.content.generation
        if (
            got is not None
            and got.history is h
            and got.version == h.version
            and got.ease is st.ease
            and got.als is st.als
            and got.content == gen
        ):
            self._personal.move_to_end(key)
            self.hits += 1
            return got
        self.misses += 1
        parts = [p for p in self._parts(q.strategy, True) if p.name in PERSONAL]
        if not parts:
            return None
        comps = [c for p in parts for c in p.components(st, q, h)]
        weights = self._weights(q.strategy, True, comps)
        total = np.zeros(n)
        vals = []
        for c in comps:
            v = weights.get(c.name, 0.0) * _norm(c.scores[:n])
            total += v
            vals.append(v)
        m = min(n, self.candidates + len(h.weights))
        cand = np.argpartition(-total, m - 1)[:m] if m < n else np.arange(n)
        cand.sort()
        stack = np.vstack(vals)[:, cand]
        best = np.argmax(stack, axis=0)
        entry = _PersonalList(
            h,
            h.version,
            st.ease,
            st.als,
            gen,
            cand,
            total[cand],
            best,
            stack[best, np.arange(len(cand))],
            [Component(c.name, np.zeros(0), c.reason, c.anchors) for c in comps],
        )
        self._personal[key] = entry
        self._personal.move_to_end(key)
        while len(self._personal) > self.max_cached:
            self._personal.popitem(last=False)
        return entry

    def personal_lists(
        self,
        customers: Sequence[tuple[str, History, int, I64, F64, list[int]]],
        n: int,
        ease: Ease | None,
        als: Als | None,
        knn_rows: Mapping[int, tuple[I64, F64]],
        text_rows: Mapping[int, tuple[I64, F64]],
        content_gen: int,
        next_rows: Mapping[int, tuple[I64, F64]] | None = None,
    ) -> list[tuple[str, _PersonalList]]:
        """The hybrid's personal lists of many customers at once, as
        ``personal_list`` computes them one by one (the same components,
        max-normalised, weighted, cut to the best candidates): matrix products
        over a batch instead of a dozen vector operations per customer. Pure
        computation over snapshots (``customers``: id, history object, its
        version, item indexes, weights, last 5 items; neighbour rows of every
        history item), so it runs outside the engine lock."""
        names = [p.name for p in self.hybrid.uses(True) if p.name in PERSONAL]
        if not customers:
            return []
        weights = self.hybrid.blend
        b = len(customers)
        rows = np.repeat(np.arange(b), [len(c[3]) for c in customers])
        idx = np.concatenate([c[3] for c in customers])
        w = np.concatenate([c[4] for c in customers])
        keep = idx < n
        comps: list[tuple[str, Reason, F64]] = []

        def sparse(values: F64, r: I64 = rows, i: I64 = idx, k: np.ndarray = keep) -> Any:
            return sp.csr_matrix((values[k], (r[k], i[k])), shape=(b, n))

        def ease_scores(r: I64, i: I64, v: F64) -> F64:
            s = np.zeros((b, n))
            if ease is not None:
                loc = np.full(len(i), -1, dtype=np.int64)
                inside = i < len(ease.local)
                loc[inside] = ease.local[i[inside]]
                ok = loc >= 0
                x = sp.csr_matrix(
                    (v[ok].astype(np.float32), (r[ok], loc[ok])), shape=(b, len(ease.cols))
                )
                s[:, ease.cols] = np.asarray(x @ ease.weights)
            return s

        if "ease" in names:
            comps.append(
                ("ease", Reason.SIMILAR_TO_HISTORY, ease_scores(rows, idx, np.ones(len(idx))))
            )
        if "als" in names:
            s = np.zeros((b, n))
            if als is not None:
                users = np.stack([als.user_vector(c[3], c[4]) for c in customers])
                m = min(n, len(als.item_factors))
                if als._y32 is None:
                    als._y32 = als.item_factors.astype(np.float32)
                s[:, :m] = users.astype(np.float32) @ als._y32[:m].T
            comps.append(("als", Reason.SIMILAR_TO_HISTORY, s))
        if "item_knn" in names:
            comps.append(
                ("item_knn", Reason.SIMILAR_TO_HISTORY, _rows_product(sparse(w), knn_rows, n))
            )
        if "content" in names:
            last = [(np.asarray(c[3][-20:]), np.asarray(c[4][-20:])) for c in customers]
            r20 = np.repeat(np.arange(b), [len(x[0]) for x in last])
            i20 = np.concatenate([x[0] for x in last])
            w20 = np.concatenate([x[1] for x in last])
            x20 = sparse(w20, r20, i20, i20 < n)
            comps.append(("content", Reason.CONTENT_MATCH, _rows_product(x20, text_rows, n)))
        if "recent" in names:  # the last few items, most recent weighted highest
            last5 = [np.asarray(c[5][-Recent.window :], dtype=np.int64) for c in customers]
            r5 = np.repeat(np.arange(b), [len(x) for x in last5])
            i5 = np.concatenate(last5)
            w5 = np.concatenate([np.linspace(0.5, 1.0, len(x)) for x in last5])
            s = _row_norm(_rows_product(sparse(w5, r5, i5, i5 < n), knn_rows, n))
            if ease is not None:
                s = s + _row_norm(ease_scores(r5, i5, w5))
            comps.append(("recent", Reason.SIMILAR_TO_HISTORY, s))
        if "sequence" in names:  # transitions out of the last few items
            lastk = [np.asarray(c[5][-NextItems.window :], dtype=np.int64) for c in customers]
            rk = np.repeat(np.arange(b), [len(x) for x in lastk])
            ik = np.concatenate(lastk)
            wk = np.concatenate([NextItems.weights(len(x)) for x in lastk])
            comps.append(
                (
                    "sequence",
                    Reason.SIMILAR_TO_HISTORY,
                    _rows_product(sparse(wk, rk, ik, ik < n), next_rows or {}, n),
                )
            )
        if not comps:
            return []
        vals = []
        total = np.zeros((b, n))
        for name, _reason, sc in comps:
            v = _row_norm(sc) * weights.get(name, 0.0)
            total += v
            vals.append(v)
        sizes = [min(n, self.candidates + len(c[3])) for c in customers]
        widest = max(sizes)
        if widest < n:
            top = np.argpartition(-total, widest - 1, axis=1)[:, :widest]
        else:
            top = np.tile(np.arange(n), (b, 1))
        order = np.argsort(-np.take_along_axis(total, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        stack = np.stack(vals)  # components x customers x items
        names_reasons = [Component(nm, np.zeros(0), rs) for nm, rs, _s in comps]
        out = []
        for r, (cid, h, version, *_arrays) in enumerate(customers):
            cand = np.sort(top[r, : sizes[r]])
            part = stack[:, r, cand]
            best = np.argmax(part, axis=0)
            out.append(
                (
                    cid,
                    _PersonalList(
                        h,
                        version,
                        ease,
                        als,
                        content_gen,
                        cand,
                        total[r, cand],
                        best,
                        part[best, np.arange(len(cand))],
                        list(names_reasons),
                    ),
                )
            )
        return out

    def install(self, entries: Sequence[tuple[str, _PersonalList]]) -> int:
        """Keeps lists computed by ``personal_lists`` whose history, models and
        content index are still current (call under the engine lock)."""
        st = self.state
        n = 0
        for cid, e in entries:
            h = st.signals.histories.get(cid)
            if (
                h is e.history
                and h.version == e.version
                and e.ease is st.ease
                and e.als is st.als
                and e.content == st.content.generation
            ):
                self._personal[(cid, "hybrid")] = e
                self._personal.move_to_end((cid, "hybrid"))
                n += 1
        while len(self._personal) > self.max_cached:
            self._personal.popitem(last=False)
        return n

    def shared_scores(self, q: Query, personal: bool, n: int) -> _SharedScores:
        st = self.state
        ctx = tuple(_context_keys(q))
        key = (q.strategy, personal, ctx)
        got = self._shared.get(key)
        if (
            got is not None
            and got.signals == st.signals.version
            and got.catalog == st.catalog.version
            and len(got.total) == n
        ):
            return got
        parts = [p for p in self._parts(q.strategy, personal) if p.name not in PERSONAL]
        raw = [c for p in parts for c in p.components(st, q, None)]
        weights = self._weights(q.strategy, personal, raw)
        comps = []
        total = np.zeros(n)
        for c in raw:
            v = weights.get(c.name, 0.0) * _norm(c.scores[:n])
            total += v
            comps.append(Component(c.name, v, c.reason, c.anchors))
        # Tiny popularity prior: a stable order among ties (cold start).
        total += 1e-6 * _norm(st.signals.popular.vector(n))
        new_items = self._new_arrivals(n)
        if new_items is not None:
            total += 1e-7 * new_items
        got = _SharedScores(st.signals.version, st.catalog.version, comps, total, new_items)
        if n > TOP_SHARED:
            got.top = np.argpartition(total, n - TOP_SHARED)[n - TOP_SHARED :].astype(np.int64)
            got.floor = float(total[got.top].min())
        if len(self._shared) > 256:  # context combinations are few; bound anyway
            self._shared.clear()
        self._shared[key] = got
        return got

    def recommend(self, q: Query) -> tuple[list[Recommended], bool]:
        """The ranked list, and whether it is non-personal (fallback)."""
        st = self.state
        n = len(st.catalog)
        if n == 0:
            return [], True
        h = st.signals.histories.get(q.customer_id) if q.personalized else None
        personal = h is not None and bool(h.weights)
        shared = self.shared_scores(q, personal, n)
        mine = self.personal_list(q, h, n) if (personal and h is not None) else None
        total = shared.total.copy()
        if mine is not None:
            total[mine.cand] += mine.total
        sess = _session_components(st, q)
        sess_parts = []
        for c in sess:
            v = self.hybrid.blend.get(c.name, 1.0) * _norm(c.scores[:n])
            total += v
            sess_parts.append(Component(c.name, v, c.reason, c.anchors))
        allowed = self._allowed(q, h, n)
        # Only items that could reach the top are partitioned: the shared top,
        # the personal candidates, the request's context neighbours.
        cand: I64 | None = None
        if len(shared.top):
            parts = [shared.top, *(np.flatnonzero(c.scores) for c in sess_parts)]
            if mine is not None:
                parts.append(mine.cand)
            mask = np.zeros(n, dtype=np.bool_)
            for part in parts:
                mask[part] = True
            cand = np.flatnonzero(mask)
        ranked = self._rank(total, allowed, q, cand, shared.floor)
        # Each ranked item's reason: the component contributing most to it.
        dense = shared.comps + sess_parts
        r_idx = np.asarray(ranked, dtype=np.int64)
        stack = np.vstack([c.scores[r_idx] for c in dense]) if dense else np.zeros((0, len(r_idx)))
        if mine is not None and len(r_idx):
            pos = np.minimum(np.searchsorted(mine.cand, r_idx), len(mine.cand) - 1)
            inside = mine.cand[pos] == r_idx
            p_val = np.where(inside, mine.best_val[pos], 0.0)
            p_best = mine.best[pos]
        hidx = h.arrays()[0] if (h is not None and personal) else np.zeros(0, dtype=np.int64)
        new_items = shared.new_items
        bests: list[tuple[Component | None, float]] = []
        for r in range(len(ranked)):
            best_c: Component | None = None
            best_v = 0.0
            if mine is not None and p_val[r] > 0:
                best_c, best_v = mine.comps[int(p_best[r])], float(p_val[r])
            for k, c in enumerate(dense):
                val = float(stack[k, r])
                if val > best_v:
                    best_c, best_v = c, val
            bests.append((best_c, best_v))
        h_recent = h.recent if (h is not None and personal) else []
        related = self._related_all([b[0] for b in bests], r_idx, hidx, q, h_recent)
        out = []
        for r, i in enumerate(ranked):
            best_c, best_v = bests[r]
            reason, name = Reason.POPULAR, "popular"
            if best_c is not None:
                reason, name = best_c.reason, best_c.name
            if (
                new_items is not None
                and new_items[i] > 0
                and reason is Reason.POPULAR
                and best_v <= 0
            ):
                reason, name = Reason.NEW_ARRIVAL, "new_arrival"
            item_id = st.catalog.ids[i]
            if item_id in q.rules.pins:
                reason = Reason.PINNED
            rel = st.catalog.ids[related[r]] if related[r] >= 0 else ""
            out.append(
                Recommended(
                    item_id,
                    float(total[i]),
                    reason,
                    name if q.strategy == "hybrid" else q.strategy,
                    rel,
                    explain(reason, rel, q),
                )
            )
        return self._pin(out, q), not personal

    def _new_arrivals(self, n: int) -> F64 | None:
        listed = self.state.catalog.listed_at[:n]
        if not listed.any():
            return None
        return _norm(np.where(listed > 0, listed - listed[listed > 0].min() + 1.0, 0.0))

    def _related_all(
        self,
        comps: Sequence[Component | None],
        items: I64,
        hidx: I64,
        q: Query,
        h_recent: Sequence[int] = (),
    ) -> list[int]:
        """The related item of each ranked item (the history item, page item or
        cart item explaining it; -1: none), item-based components in one
        vectorised pass each instead of a loop per item."""
        st = self.state
        out = [-1] * len(comps)
        ease_rows: list[int] = []
        co_rows: list[int] = []
        seq_rows: list[int] = []
        for r, c in enumerate(comps):
            if c is None:
                continue
            if c.anchors is not None:
                out[r] = int(c.anchors[int(items[r])])
            elif c.reason is Reason.BOUGHT_TOGETHER:
                cart = [st.catalog.index[x] for x in q.cart if x in st.catalog.index]
                out[r] = self._co_related(np.asarray(cart, dtype=np.int64), items[r : r + 1])[0]
            elif not len(hidx):
                continue
            elif c.name == "ease" and st.ease is not None:
                ease_rows.append(r)
            elif c.name == "content":
                out[r] = st.content.related(hidx, int(items[r]))
            elif c.name == "sequence":
                seq_rows.append(r)
            else:  # item_knn / als / recent: the history item most co-occurring
                co_rows.append(r)
        if ease_rows and st.ease is not None:
            got = st.ease.related_many(hidx, items[ease_rows])
            for r, g in zip(ease_rows, got.tolist(), strict=True):
                out[r] = g
        if co_rows:
            for r, g in zip(co_rows, self._co_related(hidx, items[co_rows]), strict=True):
                out[r] = g
        if seq_rows and h_recent:  # the recent item each most often came next after
            last = np.asarray(h_recent[-NextItems.window :], dtype=np.int64)
            got_seq = self._co_related(last, items[seq_rows], st.signals.transitions.neighbours)
            for r, g in zip(seq_rows, got_seq, strict=True):
                out[r] = g
        return out

    def _co_related(
        self,
        sources: I64,
        targets: I64,
        neighbours: Callable[[int], tuple[I64, F64]] | None = None,
    ) -> list[int]:
        """For each target, the source item with the highest co-occurrence
        similarity to it (the first on ties; -1 when none co-occurs);
        ``neighbours``: another item-item table (transitions)."""
        if not len(sources) or not len(targets):
            return [-1] * len(targets)
        uniq, inv = np.unique(targets, return_inverse=True)
        best = np.zeros((len(sources), len(uniq)))
        nbs = neighbours or self.state.signals.co.neighbours
        for r, j in enumerate(sources.tolist()):
            nb, sim = nbs(j)
            if not len(nb):
                continue
            p = np.minimum(np.searchsorted(uniq, nb), len(uniq) - 1)
            hit = uniq[p] == nb
            best[r, p[hit]] = sim[hit]
        arg = np.argmax(best, axis=0)
        top = best[arg, np.arange(len(uniq))]
        per = np.where(top > 0, sources[arg], -1)
        return [int(x) for x in per[inv].tolist()]

    def _allowed(self, q: Query, h: History | None, n: int) -> np.ndarray:
        st = self.state
        ok = st.catalog.available.copy()
        if h is not None:
            if q.exclude_seen:
                idx, _ = h.arrays()
                ok[idx[idx < n]] = False
            elif q.rules.exclude_purchased and h.purchased:
                ok[[i for i in h.purchased if i < n]] = False
        for x in (*q.exclude, *q.cart, q.current_item):
            i = st.catalog.index.get(x)
            if i is not None:
                ok[i] = False
        if q.price_min is not None or q.price_max is not None:
            p = st.catalog.price
            described = st.catalog.described()
            band = np.ones(n, dtype=np.bool_)
            if q.price_min is not None:
                band &= p >= q.price_min
            if q.price_max is not None:
                band &= p <= q.price_max
            ok &= band | ~described
            ok &= described  # a price band only admits items with a known price
        if q.category:
            cats = np.fromiter(
                (
                    (it is not None and it.category.startswith(q.category))
                    for it in st.catalog.items
                ),
                dtype=np.bool_,
                count=n,
            )
            ok &= cats
        return ok

    def _rank(
        self,
        total: F64,
        allowed: np.ndarray,
        q: Query,
        cand: I64 | None = None,
        floor: float = math.inf,
    ) -> list[int]:
        st = self.state
        pinned = {st.catalog.index[x] for x in q.rules.pins if x in st.catalog.index}
        want = q.n + len(pinned)
        size = len(total)
        pool = min(size, max(want * 5, want + 50))
        # Outside ``cand`` no item scores above ``floor`` (boosts aside): when
        # ``pool`` candidates reach it, partitioning them alone is exact, and
        # only their scores are read (no copy of the catalogue's).
        if cand is not None and not q.rules.boosts and pool < len(cand):
            sc = total[cand]
            sc[~allowed[cand]] = -np.inf
            if int((sc >= floor).sum()) >= pool:
                k = len(cand) - pool
                top = np.argpartition(sc, k)[k:]
                top = top[np.argsort(-sc[top], kind="stable")]
                return self._take(cand[top].tolist(), sc[top].tolist(), pinned, q)
        scores = total.copy()
        for key, factor in q.rules.boosts.items():
            if key.startswith("category:"):
                cat = st.catalog.category_codes.get(key.split(":", 1)[1])
                if cat is not None:
                    scores[st.catalog.category == cat] *= factor
            else:
                i = st.catalog.index.get(key)
                if i is not None:
                    scores[i] *= factor
        scores[~allowed] = -np.inf
        cand = (
            np.argpartition(scores, size - pool)[size - pool :] if pool < size else np.arange(size)
        )
        cand = cand[np.argsort(-scores[cand], kind="stable")]
        return self._take(cand.tolist(), scores[cand].tolist(), pinned, q)

    def _take(self, ranked: list[int], vals: list[float], pinned: set[int], q: Query) -> list[int]:
        """The first ``q.n`` of ``ranked`` (best first, with their scores)
        that are allowed and not pinned, at most ``max_per_category`` per
        category unless that would leave the list short."""
        st = self.state
        out: list[int] = []
        per_cat: dict[int, int] = {}
        cats = st.catalog.category
        limit = q.rules.max_per_category
        skipped: list[int] = []
        for i, v in zip(ranked, vals, strict=True):
            if not math.isfinite(v) or i in pinned:
                continue
            if limit:
                c = int(cats[i])
                if c and per_cat.get(c, 0) >= limit:
                    skipped.append(i)
                    continue
                per_cat[c] = per_cat.get(c, 0) + 1
            out.append(i)
            if len(out) >= q.n:
                break
        # Diversity never leaves the list short when only one category is left.
        for i in skipped:
            if len(out) >= q.n:
                break
            out.append(i)
        return out

    def _pin(self, recs: list[Recommended], q: Query) -> list[Recommended]:
        st = self.state
        if not q.rules.pins:
            return recs[: q.n]
        out = list(recs)
        for item_id, pos in sorted(q.rules.pins.items(), key=lambda kv: kv[1]):
            i = st.catalog.index.get(item_id)
            if i is None or not st.catalog.available[i] or item_id in q.exclude:
                continue
            rec = Recommended(
                item_id, 0.0, Reason.PINNED, "rule", "", explain(Reason.PINNED, "", q)
            )
            out.insert(min(max(pos, 0), len(out)), rec)
        return out[: q.n]

    def similar_items(self, item_id: str, n: int) -> list[tuple[str, float, str]]:
        """Items like ``item_id``: co-occurrence neighbours, content next to
        them, so a new item gets an answer too. (item, similarity, strategy)."""
        st = self.state
        i = st.catalog.index.get(item_id)
        if i is None:
            return []
        size = len(st.catalog)
        nb, sim = st.signals.co.neighbours(i)
        knn = np.zeros(size)
        keep = nb < size
        knn[nb[keep]] = sim[keep]
        content = st.content.similar_to(np.asarray([i], dtype=np.int64), np.ones(1), size)
        total = 0.7 * np.clip(knn, 0, 1) + 0.3 * np.clip(content, 0, 1)
        total[i] = -np.inf
        total[~st.catalog.available] = -np.inf
        order = np.argsort(-total, kind="stable")[:n]
        return [
            (st.catalog.ids[j], float(total[j]), "item_knn" if knn[j] >= content[j] else "content")
            for j in order.tolist()
            if math.isfinite(total[j]) and total[j] > 0
        ]


_FIXED = {
    Reason.POPULAR: "popular right now",
    Reason.TRENDING: "trending this week",
    Reason.NEW_ARRIVAL: "new arrival",
    Reason.PINNED: "featured",
}
_WITH_ITEM = {
    Reason.SIMILAR_TO_HISTORY: ("because you viewed {}", "based on your activity"),
    Reason.BOUGHT_TOGETHER: ("often bought with {} in your cart", "goes with your cart"),
    Reason.VIEWING_NOW: ("similar to {}, which you are viewing", "similar to this item"),
    Reason.CONTENT_MATCH: ("like {} you viewed", "matches your taste"),
}


def explain(reason: Reason, related: str, q: Query) -> str:
    """The sentence a frontend can show (only the one asked for is built)."""
    fixed = _FIXED.get(reason)
    if fixed is not None:
        return fixed
    pair = _WITH_ITEM.get(reason)
    if pair is not None:
        return pair[0].format(related) if related else pair[1]
    # POPULAR_IN_CONTEXT
    ctx = " ".join(
        x
        for x in (
            f"on {q.channel}" if q.channel else "",
            f"this {daypart(q.hour)}" if q.hour is not None else "",
        )
        if x
    )
    return f"popular {ctx}" if ctx else "popular here"
