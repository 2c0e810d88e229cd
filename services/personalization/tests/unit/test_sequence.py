"""The sequence strategy (ADR 0240): item-to-next-item transitions learned
on every event, scored from the customer's last items, forgotten exactly on
erasure, rebuilt the same way inside tuning, and computed alike by the
request path and the batched warm-up."""

from __future__ import annotations

import numpy as np

from personalization.domain.catalog import Item
from personalization.domain.engine import Engine, EngineConfig
from personalization.domain.interactions import Interaction, Kind
from personalization.domain.recommender import DEFAULT_BLEND, STRATEGIES, Query, Reason
from personalization.domain.signals import History, Transitions
from personalization.domain.tuning import BLEND_GRID, TuneConfig, holdout, shadow_state

T0 = 1_750_000_000.0


def _engine(**kw: object) -> Engine:
    e = Engine(EngineConfig(korean_tokenizer="bigram", use_als=False, **kw))  # type: ignore[arg-type]
    for j in range(12):
        e.upsert_item(Item(f"i{j}", title=f"item {j}", category=f"c{j % 3}", price=float(j)))
    return e


def _watch(e: Engine, customer: str, items: list[int], start: float = 0.0) -> None:
    for n, j in enumerate(items):
        e.learn(Interaction(f"{customer}-{n}", customer, f"i{j}", Kind.VIEW, 1.0, T0 + start + n))


def _row(e: Engine, item: str) -> dict[str, float]:
    nb, p = e.signals.transitions.neighbours(e.catalog.index[item])
    return {e.catalog.ids[int(i)]: float(x) for i, x in zip(nb, p, strict=True)}


def test_transitions_follow_the_order_items_were_met_on_every_event() -> None:
    e = _engine()
    _watch(e, "a", [0, 1, 2])
    # i0 -> i1 (next) and i0 -> i2 (two steps on: half the weight).
    assert _row(e, "i0") == {"i1": 1.0 / 1.5, "i2": 0.5 / 1.5}
    assert _row(e, "i2") == {}  # nothing came after i2 yet
    _watch(e, "b", [2, 3], start=10)
    assert _row(e, "i2") == {"i3": 1.0}  # the next event changed the row at once
    # A repeated item is no new step; its order is its first arrival.
    e.learn(Interaction("a-again", "a", "i0", Kind.VIEW, 1.0, T0 + 20))
    assert e.signals.histories["a"].sequence == [0, 1, 2]
    assert _row(e, "i2") == {"i3": 1.0}
    # The window: only the last ``window`` items lead to a new one.
    w = Transitions.window
    _watch(e, "c", list(range(4, 4 + w + 2)), start=30)
    assert "i10" not in _row(e, "i4") and "i10" in _row(e, "i5")


def test_erasure_subtracts_exactly_the_customers_transitions() -> None:
    e = _engine()
    _watch(e, "a", [0, 1, 2, 3])
    before = {k: dict(v) for k, v in e.signals.transitions.rows.items()}
    out_before = dict(e.signals.transitions.out)
    _watch(e, "eve", [3, 0, 5, 1, 7, 2, 9], start=100)
    assert _row(e, "i3").get("i0", 0.0) > 0
    assert e.forget("eve") == 7
    assert e.signals.transitions.rows == before
    assert e.signals.transitions.out == out_before
    assert "i0" not in _row(e, "i3")
    e.forget("a")
    assert e.signals.transitions.rows == {} and e.signals.transitions.out == {}


def test_sequence_strategy_recommends_what_comes_next_with_a_reason() -> None:
    e = _engine(auto_tune=False)
    # Many customers go i0 -> i1 -> i2 -> i3; as many others watch the same
    # items in the reverse order, so co-occurrence cannot tell the direction.
    for c in range(10):
        _watch(e, f"f{c}", [0, 1, 2, 3], start=10 * c)
        _watch(e, f"r{c}", [3, 2, 1, 0], start=10 * c + 5)
    _watch(e, "me", [0, 1], start=500)
    e.retrain()
    recs, fallback = e.recommend(Query("me", n=2, strategy="sequence", exclude_seen=True))
    assert not fallback and [r.item_id for r in recs] == ["i2", "i3"]
    assert recs[0].reason is Reason.SIMILAR_TO_HISTORY and recs[0].related_item_id == "i1"
    assert "i1" in recs[0].explanation
    # In the hybrid with a weight, the next item comes first, for that reason.
    e._set_blend({**DEFAULT_BLEND, "sequence": 2.0})
    top = e.recommend(Query("me", n=1, exclude_seen=True))[0][0]
    assert top.item_id == "i2" and top.strategy == "sequence"
    # Without consent nothing personal, so no sequence either.
    recs, fallback = e.recommend(Query("me", n=2, personalized=False, strategy="sequence"))
    assert fallback
    assert "sequence" in STRATEGIES and "sequence" in BLEND_GRID
    assert DEFAULT_BLEND["sequence"] == 0.0  # weight only on validation evidence


def test_tuning_rebuilds_transitions_from_the_held_out_sequences() -> None:
    hs: dict[str, History] = {}
    rng = np.random.default_rng(3)
    for c in range(60):
        h = History()
        for n, j in enumerate(rng.permutation(12)[:8].tolist()):
            h.add(int(j), 1.0, T0 + n, Kind.VIEW, 0.0)
        hs[f"c{c:02d}"] = h
    e = _engine()
    last = holdout(hs, TuneConfig(), len(e.catalog))[1]
    for c, held in last.truth.items():
        assert held == {hs[c].sequence[-1]}
        assert last.train[c].sequence == hs[c].sequence[:-1]
    st = shadow_state(e.catalog, last.train, 50)
    ref = Transitions(50)
    for c in sorted(last.train):
        ref.add_sequence(last.train[c].sequence)
    assert st.signals.transitions.rows == ref.rows


def test_warmed_lists_with_a_sequence_weight_match_the_request_path() -> None:
    e = Engine(EngineConfig(korean_tokenizer="bigram", use_als=False, auto_tune=False))
    rng = np.random.default_rng(5)
    for j in range(50):
        e.upsert_item(Item(f"i{j}", f"item {j % 7}", f"c{j % 5}", price=float(j)))
    for n in range(800):
        c, j = int(rng.integers(40)), int(rng.zipf(1.4)) % 50
        e.learn(Interaction(f"e{n}", f"c{c}", f"i{j}", Kind.VIEW, 1.0, T0 + n))
    e.retrain()
    e._set_blend({**DEFAULT_BLEND, "sequence": 0.5})
    e.recommender.candidates = 15
    customers = sorted(e.signals.histories)
    assert e.warm(batch=6, chunk=4) == len(customers)
    warmed = {c: e.recommender._personal[(c, "hybrid")] for c in customers}
    for c in customers:
        w = warmed[c]
        assert "sequence" in [x.name for x in w.comps]
        e.recommender._personal.clear()
        e.recommender.personal_list(Query(c), e.signals.histories[c], len(e.catalog))
        fresh = e.recommender._personal[(c, "hybrid")]
        common = np.intersect1d(w.cand, fresh.cand)
        assert len(common) >= len(fresh.cand) - 2
        a = w.total[np.searchsorted(w.cand, common)]
        b = fresh.total[np.searchsorted(fresh.cand, common)]
        assert np.allclose(a, b, atol=1e-5)
