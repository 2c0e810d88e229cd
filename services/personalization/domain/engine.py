"""The recommender as one object: learns items and interactions as they
arrive, retrains the scheduled models on demand, answers queries. No I/O;
the service layer feeds it from events and calls ``retrain`` on a schedule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from personalization.domain.catalog import F64, I64, Catalog, Item
from personalization.domain.interactions import Interaction
from personalization.domain.models import Als, ContentIndex, Ease, Tokenizer, interaction_matrix
from personalization.domain.recommender import (
    NextItems,
    Query,
    Recent,
    Recommended,
    Recommender,
    State,
)
from personalization.domain.signals import DAY_S, History, Signals
from personalization.domain.tuning import TuneConfig, Tuned, tune

# The last items a warmed list reads (``Recent`` and ``NextItems``).
_LAST = max(Recent.window, NextItems.window)


@dataclass(frozen=True)
class EngineConfig:
    half_life_days: float = 3.0  # customer history decay; 0: none
    popularity_half_life_days: float = 30.0
    trending_half_life_days: float = 2.0
    knn_k: int = 200
    ease_lambda: float = 300.0
    ease_max_items: int = 4000
    als_factors: int = 64
    als_regularization: float = 0.05
    als_alpha: float = 2.0
    als_iterations: int = 15
    use_als: bool = True
    blend: Mapping[str, float] | None = None
    korean_tokenizer: str = "kiwi"  # or "bigram"
    seed: int = 7
    # λ and blend learned on validation splits of the service's own data
    # (domain/tuning.py) at a retrain, when never tuned or when the data grew
    # by ``tune_growth`` and ``tune_interval_s`` passed; False: the configured
    # ``ease_lambda`` and ``blend`` are served as they are.
    auto_tune: bool = True
    tune_interval_s: float = 3600.0
    tune_growth: float = 0.1
    tune_max_customers: int = 3000


@dataclass
class ModelInfo:
    version: str = "none"
    trained_at: float = 0.0
    customers: int = 0
    items: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    ease_lambda: float = 0.0
    tuned: Tuned | None = None


class Engine:
    def __init__(
        self, config: EngineConfig | None = None, *, may_use: Callable[[str], bool] | None = None
    ) -> None:
        self.config = cfg = config or EngineConfig()
        self.may_use = may_use or (lambda _c: True)
        self.catalog = Catalog()
        self.signals = Signals(
            half_life_s=cfg.half_life_days * DAY_S,
            popularity_half_life_s=cfg.popularity_half_life_days * DAY_S,
            trending_half_life_s=cfg.trending_half_life_days * DAY_S,
            knn_k=cfg.knn_k,
        )
        self.content = ContentIndex(Tokenizer(cfg.korean_tokenizer))
        self.state = State(self.catalog, self.signals, self.content)
        self.recommender = Recommender(self.state, cfg.blend)
        self.model = ModelInfo()
        # Events and requests come from different threads (consumers, gRPC).
        self.lock = threading.RLock()
        self._trained_on = -1
        self.tuned: Tuned | None = None
        self._tuned_at = 0.0
        # A tuned λ and blend met on the stream (another replica's) that the
        # models served were not fitted with yet: the next retrain refits.
        self._adopted = False
        # This replica's own tuning results, for the service to publish.
        self.tuned_here: list[Tuned] = []
        # Set by an erasure or a withdrawal: the scheduled models still carry
        # that customer's share until the next fit, so it should come soon.
        self.erased = threading.Event()
        self._blended: dict[tuple[tuple[str, float], ...], Recommender] = {}

    # -- learning ------------------------------------------------------------
    def upsert_item(self, item: Item) -> None:
        with self.lock:
            i = self.catalog.upsert(item)
            self.content.set_text(i, item.text())

    def set_available(self, item_id: str, available: bool) -> bool:
        with self.lock:
            return self.catalog.set_available(item_id, available)

    def learn(
        self, inter: Interaction, hour: int | None = None, weekday: int | None = None
    ) -> bool:
        with self.lock:
            i = self.catalog.ensure(inter.item_id)
            return self.signals.add(inter, i, hour, weekday)

    def forget(self, customer_id: str) -> int:
        with self.lock:
            for r in (self.recommender, *self._blended.values()):
                r.forget(customer_id)
            n = self.signals.forget(customer_id)
            if n:
                self.erased.set()
            return n

    # -- scheduled models ------------------------------------------------------
    @property
    def stale(self) -> bool:
        return self.signals.version != self._trained_on or self._adopted

    def adopt(self, tuned: Tuned) -> bool:
        """A tuning result from the service's stream (any replica's, this
        one's included): served from the next retrain when it ranks above
        the one served (``Tuned.rank``), so replicas converge on one λ and
        blend. True if it was adopted."""
        with self.lock:
            if self.tuned is not None and tuned.rank() <= self.tuned.rank():
                return False
            self.tuned = tuned
            self._tuned_at = time.time()
            self._set_blend(tuned.blend)
            self._adopted = True
            return True

    def _tune_due(self, interactions: int) -> bool:
        cfg = self.config
        if not cfg.auto_tune:
            return False
        if self.tuned is None:
            return True
        grown = interactions >= (1.0 + cfg.tune_growth) * self.tuned.interactions
        shrunk = interactions < self.tuned.interactions  # erasures: re-learn without them
        return (grown or shrunk) and time.time() - self._tuned_at >= cfg.tune_interval_s

    def _fit_als(self, x: object) -> Als:
        cfg = self.config
        return Als.fit(
            x,
            factors=cfg.als_factors,
            regularization=cfg.als_regularization,
            alpha=cfg.als_alpha,
            iterations=cfg.als_iterations,
            seed=cfg.seed,
        )

    def retrain(self) -> ModelInfo:
        """Refits EASE (and ALS) on the consented customers' histories, after
        re-learning λ and the blend on validation splits when due; the swap
        is atomic, serving continues meanwhile. Deterministic in the data
        (customers in id order, hash-chosen validation), so replicas holding
        the same events fit the same models."""
        cfg = self.config
        t0 = time.perf_counter()
        with self.lock:
            self.erased.clear()
            version_seen = self.signals.version
            consented = sorted(
                c for c, h in self.signals.histories.items() if h.weights and self.may_use(c)
            )
            histories = [self.signals.histories[c] for c in consented]
            n = len(self.catalog)
            x = interaction_matrix(histories, n)
            xw = interaction_matrix(histories, n, binary=False) if cfg.use_als else None
            interactions = int(x.nnz)
            due = x.nnz > 0 and self._tune_due(interactions)
            # Tuning runs outside the lock: on copies (events keep arriving).
            snapshot = {c: _copy(self.signals.histories[c]) for c in consented} if due else {}
            base_blend = dict(self.recommender.hybrid.blend)
        if x.nnz == 0:
            with self.lock:
                self._trained_on = version_seen
                self._adopted = False
            return self.model
        tuned = self.tuned
        if due:
            got = tune(
                self.catalog,
                snapshot,
                base_blend=base_blend,
                base_lambda=cfg.ease_lambda,
                ease_max_items=cfg.ease_max_items,
                knn_k=cfg.knn_k,
                fit_als=self._fit_als if cfg.use_als else None,
                cfg=TuneConfig(max_customers=cfg.tune_max_customers),
            )
            if got is not None:
                got.at = time.time()
                with self.lock:
                    self.tuned_here.append(got)
                    # One met on the stream meanwhile may outrank it.
                    if self.tuned is None or got.rank() > self.tuned.rank():
                        tuned = got
                    else:
                        tuned = self.tuned
        with self.lock:
            # Adopted since this retrain began: fit with it.
            if self.tuned is not None and (tuned is None or self.tuned.rank() > tuned.rank()):
                tuned = self.tuned
            self._adopted = False
        lam = tuned.ease_lambda if tuned is not None else cfg.ease_lambda
        version = f"m{int(time.time())}-{version_seen}"
        ease = Ease.fit(x, lam=lam, max_items=cfg.ease_max_items, version=version)
        als = None
        if cfg.use_als and xw is not None and x.shape[0] >= 2:
            als = self._fit_als(xw)
            als.version = version
        with self.lock:
            self.state.ease = ease
            self.state.als = als
            self._trained_on = version_seen
            if tuned is not None and (self.tuned is None or tuned.rank() > self.tuned.rank()):
                self.tuned = tuned
                self._tuned_at = time.time()
                self._set_blend(tuned.blend)
            self.model = ModelInfo(
                version,
                time.time(),
                len(histories),
                n,
                time.perf_counter() - t0,
                ease_lambda=lam,
                tuned=self.tuned,
            )
        return self.model

    def warm(self, limit: int | None = None, batch: int = 64, chunk: int = 64) -> int:
        """After a model swap, computes the personal lists of the most
        recently active consenting customers in batches (ADR 0190), so their
        next request reads a cached list instead of paying for it. The lock is
        held only for snapshots (in chunks) and for installing: requests go on
        meanwhile, and a list whose customer, models or content index changed
        in between is not installed. Returns the lists installed."""
        rec = self.recommender
        limit = rec.max_cached if limit is None else limit
        with self.lock:
            st, rec = self.state, self.recommender
            if st.ease is None and st.als is None:
                return 0
            ease, als, gen, n = st.ease, st.als, st.content.generation, len(self.catalog)
            recent = sorted(
                (
                    (h.last_at, c)
                    for c, h in self.signals.histories.items()
                    if h.weights and self.may_use(c)
                ),
                reverse=True,
            )[:limit]
            todo = []
            for _at, c in recent:
                h = self.signals.histories[c]
                got = rec._personal.get((c, "hybrid"))
                if (
                    got is not None
                    and got.history is h
                    and got.version == h.version
                    and (got.ease is ease and got.als is als and got.content == gen)
                ):
                    continue
                idx, w = h.arrays()
                todo.append((c, h, h.version, idx, w, h.recent[-_LAST:]))
        installed = 0
        seq = rec.hybrid.blend.get("sequence", 0.0) > 0
        for start in range(0, len(todo), batch * chunk):
            part = todo[start : start + batch * chunk]
            items = sorted({int(i) for c in part for i in c[3].tolist()})
            last = sorted({int(i) for c in part for i in c[3][-20:].tolist()})
            lastk = sorted({int(i) for c in part for i in c[5]}) if seq else []
            knn_rows: dict[int, tuple[I64, F64]] = {}
            text_rows: dict[int, tuple[I64, F64]] = {}
            next_rows: dict[int, tuple[I64, F64]] = {}
            for k in range(0, max(len(items), len(last), len(lastk)), chunk):
                with self.lock:  # neighbour rows change with events: read under the lock
                    if rec is not self.recommender or self.state.ease is not ease:
                        return installed
                    for i in items[k : k + chunk]:
                        knn_rows[i] = self.signals.co.neighbours(i)
                    for i in last[k : k + chunk]:
                        text_rows[i] = self.content.neighbours(i)
                    for i in lastk[k : k + chunk]:
                        next_rows[i] = self.signals.transitions.neighbours(i)
            for b0 in range(0, len(part), batch):
                lists = rec.personal_lists(
                    part[b0 : b0 + batch], n, ease, als, knn_rows, text_rows, gen, next_rows
                )
                with self.lock:
                    if rec is not self.recommender:
                        return installed
                    installed += rec.install(lists)
        return installed

    def _set_blend(self, blend: Mapping[str, float]) -> None:
        """The served blend (under the lock): cached lists and the experiments'
        blends built over the old one are dropped."""
        self.recommender = Recommender(self.state, blend)
        self._blended.clear()

    def refresh_content(self) -> bool:
        """Tokenises new item texts (outside the lock: Korean morphology is
        slow) and rebuilds the TF-IDF index; False when nothing changed."""
        with self.lock:
            if not self.content.dirty:
                return False
            todo = self.content.pending()
        done = {i: self.content.tokenize(t) for i, t in todo.items()}
        with self.lock:
            self.content.tokenized(done)
            self.content.build(len(self.catalog))
        # Text neighbours of every item, outside the lock: requests then only
        # look them up (a similar-items page, content matches of a history).
        built, table = self.content.neighbour_table()
        with self.lock:
            self.content.install_neighbours(built, table)
        return True

    # -- answering -------------------------------------------------------------
    def recommend(
        self, q: Query, blend: Mapping[str, float] | None = None
    ) -> tuple[list[Recommended], bool]:
        with self.lock:
            if not blend:
                return self.recommender.recommend(q)
            key = tuple(sorted(blend.items()))
            r = self._blended.get(key)
            if r is None:
                r = self._blended[key] = Recommender(
                    self.state, {**self.recommender.hybrid.blend, **blend}
                )
            return r.recommend(q)

    def similar_items(self, item_id: str, n: int) -> list[tuple[str, float, str]]:
        with self.lock:
            return self.recommender.similar_items(item_id, n)


def _copy(h: History) -> History:
    out = History(ref=h.ref, last_at=h.last_at)
    out.weights = dict(h.weights)
    out.purchased = set(h.purchased)
    out.recent = list(h.recent)
    out.sequence = list(h.sequence)
    return out
