"""What the strategies learn from, updated on every event: each customer's
decayed history, item popularity (global, trending, per context) and the
item-item co-occurrence table. Time decay keeps an exact exponentially
decayed sum per key relative to a reference time that moves forward, so
adding an event is O(1) and no timer is needed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from personalization.domain.catalog import F64, I64
from personalization.domain.interactions import Interaction, Kind

DAY_S = 86_400.0
# Rescale a decayed sum once its reference lags this many half-lives behind.
_RESCALE_AFTER = 40.0


def decay_factor(at: float, ref: float, half_life_s: float) -> float:
    """Weight of something at ``at`` relative to ``ref`` (1 without decay)."""
    if half_life_s <= 0:
        return 1.0
    return math.pow(2.0, (at - ref) / half_life_s)


def daypart(hour: int) -> str:
    if 5 <= hour < 11:
        return "morning"
    if 11 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def week_part(weekday: int) -> str:
    return "weekend" if weekday >= 5 else "weekday"


@dataclass
class History:
    """One customer's items with decayed weights (relative to ``ref``)."""

    ref: float = 0.0
    weights: dict[int, float] = field(default_factory=dict)
    purchased: set[int] = field(default_factory=set)
    # Distinct items, most recent last (for "because you viewed X").
    recent: list[int] = field(default_factory=list)
    # Distinct items in the order each was first met (the arrival order of
    # the service's own stream, the same on every replica): the item-to-
    # next-item transitions learned from this customer are a function of it,
    # so erasure subtracts exactly what was added.
    sequence: list[int] = field(default_factory=list)
    last_at: float = 0.0
    _arrays: tuple[I64, F64] | None = None
    # Bumped on every change: lists cached for this customer compare it.
    version: int = 0

    def add(self, i: int, weight: float, at: float, kind: Kind, half_life_s: float) -> bool:
        """Adds an event; True if the item is new to this customer."""
        if not self.weights:
            self.ref = at
        elif half_life_s > 0 and at - self.ref > _RESCALE_AFTER * half_life_s:
            f = decay_factor(self.ref, at, half_life_s)
            self.weights = {k: v * f for k, v in self.weights.items()}
            self.ref = at
        new = i not in self.weights
        if new:
            self.sequence.append(i)
        self.weights[i] = self.weights.get(i, 0.0) + weight * decay_factor(
            at, self.ref, half_life_s
        )
        if kind is Kind.PURCHASE:
            self.purchased.add(i)
        if self.recent and self.recent[-1] == i:
            pass
        else:
            if i in self.recent:
                self.recent.remove(i)
            self.recent.append(i)
            del self.recent[:-50]
        self.last_at = max(self.last_at, at)
        self._arrays = None
        self.version += 1
        return new

    def arrays(self) -> tuple[I64, F64]:
        """(item indexes, weights scaled to max 1)."""
        if self._arrays is None:
            idx = np.fromiter(self.weights.keys(), dtype=np.int64, count=len(self.weights))
            w = np.fromiter(self.weights.values(), dtype=np.float64, count=len(self.weights))
            if len(w):
                w = w / w.max()
            self._arrays = (idx, w)
        return self._arrays


class DecayedCounts:
    """A decayed weighted count per item."""

    def __init__(self, half_life_s: float) -> None:
        self.half_life_s = half_life_s
        self.ref = 0.0
        self.values: F64 = np.zeros(0)
        self.total = 0.0

    def add(self, i: int, weight: float, at: float) -> None:
        if i >= len(self.values):
            self.values = np.concatenate(
                [self.values, np.zeros(max(i + 1, 2 * len(self.values)) - len(self.values))]
            )
        if self.total == 0.0:
            self.ref = at
        elif self.half_life_s > 0 and at - self.ref > _RESCALE_AFTER * self.half_life_s:
            f = decay_factor(self.ref, at, self.half_life_s)
            self.values *= f
            self.total *= f
            self.ref = at
        v = weight * decay_factor(at, self.ref, self.half_life_s)
        self.values[i] += v
        self.total += v

    def remove(self, i: int, weight: float, at: float) -> None:
        if i < len(self.values):
            v = weight * decay_factor(at, self.ref, self.half_life_s)
            self.values[i] = max(0.0, self.values[i] - v)
            self.total = max(0.0, self.total - v)

    def vector(self, n: int) -> F64:
        out = np.zeros(n)
        m = min(n, len(self.values))
        out[:m] = self.values[:m]
        return out


class CoOccurrence:
    """Item-item co-occurrence over customers, updated on every event; cosine
    neighbours (top k per item) computed lazily for rows that changed."""

    def __init__(self, k: int = 200, shrink: float = 0.0) -> None:
        self.k = k
        self.shrink = shrink
        self.rows: dict[int, dict[int, float]] = {}
        # Customers per item, as an array: a row's norms are one gather.
        self.users: F64 = np.zeros(0)
        self._cache: dict[int, tuple[I64, F64]] = {}

    def _count(self, i: int, delta: float) -> None:
        if i >= len(self.users):
            grown = np.zeros(max(i + 1, 2 * len(self.users), 64))
            grown[: len(self.users)] = self.users
            self.users = grown
        self.users[i] = max(0.0, self.users[i] + delta)

    def add_user_item(self, i: int, others: list[int]) -> None:
        self._count(i, 1.0)
        row_i = self.rows.setdefault(i, {})
        for j in others:
            if j == i:
                continue
            row_i[j] = row_i.get(j, 0.0) + 1.0
            row_j = self.rows.setdefault(j, {})
            row_j[i] = row_j.get(i, 0.0) + 1.0
            self._cache.pop(j, None)
        self._cache.pop(i, None)

    def remove_user(self, items: list[int]) -> None:
        for a, i in enumerate(items):
            self._count(i, -1.0)
            for j in items[a + 1 :]:
                for x, y in ((i, j), (j, i)):
                    r = self.rows.get(x)
                    if r is not None and y in r:
                        r[y] -= 1.0
                        if r[y] <= 0:
                            del r[y]
                self._cache.pop(j, None)
            self._cache.pop(i, None)

    def neighbours(self, i: int) -> tuple[I64, F64]:
        got = self._cache.get(i)
        if got is not None:
            return got
        row = self.rows.get(i)
        if not row:
            got = (np.zeros(0, dtype=np.int64), np.zeros(0))
        else:
            idx = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            co = np.fromiter(row.values(), dtype=np.float64, count=len(row))
            n_i = self.users[i] if i < len(self.users) else 0.0
            n_j = np.zeros(len(idx))
            known = idx < len(self.users)
            n_j[known] = self.users[idx[known]]
            sim = co / (np.sqrt(max(n_i, 1.0) * np.maximum(n_j, 1.0)) + self.shrink)
            if len(idx) > self.k:
                top = np.argpartition(-sim, self.k)[: self.k]
                idx, sim = idx[top], sim[top]
            got = (idx, sim)
        self._cache[i] = got
        return got


class Transitions:
    """Item-to-next-item transitions over customers' sequences (ADR 0240):
    when a customer meets a new item j, each of the ``window`` items met
    just before it adds ``decay ** (distance - 1)`` to T[i, j]. Updated on
    every event; a row's neighbours (T[i, j] / sum_j T[i, j], the estimated
    chance that j comes next after i; top k) are recomputed lazily. The
    decay is a power of two, so subtracting a customer's share on erasure
    restores the sums exactly."""

    window = 5
    decay = 0.5

    def __init__(self, k: int = 200) -> None:
        self.k = k
        self.rows: dict[int, dict[int, float]] = {}
        self.out: dict[int, float] = {}
        self._cache: dict[int, tuple[I64, F64]] = {}

    def _step(self, seq: list[int], p: int, sign: float) -> None:
        """The transitions into ``seq[p]`` from the items before it."""
        j = seq[p]
        for d in range(1, min(self.window, p) + 1):
            i = seq[p - d]
            v = sign * self.decay ** (d - 1)
            row = self.rows.setdefault(i, {})
            x = row.get(j, 0.0) + v
            if x > 1e-12:
                row[j] = x
            else:
                row.pop(j, None)
                if not row:
                    del self.rows[i]
            t = self.out.get(i, 0.0) + v
            if t > 1e-12:
                self.out[i] = t
            else:
                self.out.pop(i, None)
            self._cache.pop(i, None)

    def add_last(self, seq: list[int]) -> None:
        """``seq``'s last item was just appended."""
        if seq:
            self._step(seq, len(seq) - 1, 1.0)

    def add_sequence(self, seq: list[int]) -> None:
        for p in range(1, len(seq)):
            self._step(seq, p, 1.0)

    def remove_sequence(self, seq: list[int]) -> None:
        for p in range(1, len(seq)):
            self._step(seq, p, -1.0)

    def neighbours(self, i: int) -> tuple[I64, F64]:
        got = self._cache.get(i)
        if got is not None:
            return got
        row = self.rows.get(i)
        if not row:
            got = (np.zeros(0, dtype=np.int64), np.zeros(0))
        else:
            idx = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            p = np.fromiter(row.values(), dtype=np.float64, count=len(row)) / self.out[i]
            if len(idx) > self.k:
                top = np.argpartition(-p, self.k)[: self.k]
                idx, p = idx[top], p[top]
            got = (idx, p)
        self._cache[i] = got
        return got


class Signals:
    """Everything learned from interactions, kept current event by event."""

    def __init__(
        self,
        *,
        half_life_s: float = 60 * DAY_S,
        popularity_half_life_s: float = 30 * DAY_S,
        trending_half_life_s: float = 2 * DAY_S,
        knn_k: int = 200,
    ) -> None:
        self.half_life_s = half_life_s
        self.histories: dict[str, History] = {}
        self.popular = DecayedCounts(popularity_half_life_s)
        self.trending = DecayedCounts(trending_half_life_s)
        self.by_context: dict[str, DecayedCounts] = {}
        self.co = CoOccurrence(knn_k)
        self.transitions = Transitions(knn_k)
        self.seen_events: set[str] = set()
        self.events = 0
        self.version = 0

    @staticmethod
    def context_keys(
        inter: Interaction, hour: int | None = None, weekday: int | None = None
    ) -> list[str]:
        keys = []
        if inter.channel:
            keys.append(f"channel:{inter.channel}")
        if inter.store:
            keys.append(f"store:{inter.store}")
        if hour is not None:
            keys.append(f"daypart:{daypart(hour)}")
        if weekday is not None:
            keys.append(f"week:{week_part(weekday)}")
        return keys

    def add(
        self, inter: Interaction, i: int, hour: int | None = None, weekday: int | None = None
    ) -> bool:
        """Learns one interaction (item index ``i``); False if already learned."""
        if inter.event_id in self.seen_events:
            return False
        self.seen_events.add(inter.event_id)
        h = self.histories.get(inter.customer_id)
        if h is None:
            h = self.histories[inter.customer_id] = History()
        others = list(h.weights) if i not in h.weights else []
        if h.add(i, inter.weight, inter.at, inter.kind, self.half_life_s):
            self.co.add_user_item(i, others)
            self.transitions.add_last(h.sequence)
        self.popular.add(i, inter.weight, inter.at)
        self.trending.add(i, inter.weight, inter.at)
        for key in self.context_keys(inter, hour, weekday):
            c = self.by_context.get(key)
            if c is None:
                c = self.by_context[key] = DecayedCounts(self.popular.half_life_s)
            c.add(i, inter.weight, inter.at)
        self.events += 1
        self.version += 1
        return True

    def forget(self, customer_id: str) -> int:
        """Removes a customer's history and its share of the co-occurrences
        (erasure, consent withdrawn). Popularity keeps no per-customer trace
        beyond anonymous decayed counts; those are reduced too."""
        h = self.histories.pop(customer_id, None)
        if h is None:
            return 0
        items = list(h.weights)
        self.co.remove_user(items)
        self.transitions.remove_sequence(h.sequence)
        for i, w in h.weights.items():
            # w is relative to h.ref: convert to the counters' scale.
            self.popular.remove(i, w, h.ref)
            self.trending.remove(i, w, h.ref)
        self.version += 1
        return len(items)
