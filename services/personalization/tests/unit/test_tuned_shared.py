"""Replicas tune λ and the blend on the data each holds at its own retrain,
so two replicas can tune differently; the service shares each result on its
stream and every replica serves the latest it has met (docs/adr/0315)."""

from __future__ import annotations

import numpy as np

from personalization.domain.recommender import Query
from personalization.service_layer import messages as msg
from personalization.tests.unit.test_ease import _catalog_engine, _clustered, _feed


def test_replicas_that_tuned_on_different_data_converge_on_one_result() -> None:
    hs = _clustered(100)
    a, b = _catalog_engine(), _catalog_engine()
    # b retrains (and tunes) when it holds 60 customers, a when it holds all.
    _feed(b, list(range(60)), hs)
    b.retrain()
    _feed(b, list(range(60, 100)), hs)
    _feed(a, list(range(100)), hs)
    a.retrain()
    b.retrain()  # not due again: the tune interval has not passed
    assert a.tuned is not None and b.tuned is not None
    assert b.tuned.customers == 60 and a.tuned.customers == 100
    # The premise: alone, they serve different λ (and item-item weights).
    assert a.tuned.ease_lambda != b.tuned.ease_lambda
    assert a.state.ease is not None and b.state.ease is not None
    assert not np.array_equal(a.state.ease.weights, b.state.ease.weights)
    # Both results go through the stream (an event each, as published) and
    # reach the replicas in different orders.
    stream = [msg.tuned_pb(t) for t in (*b.tuned_here, *a.tuned_here)]
    for m in stream:
        t = msg.tuned_from(m)
        assert t is not None
        a.adopt(t)
    for m in reversed(stream):
        t = msg.tuned_from(m)
        assert t is not None
        b.adopt(t)
    assert a.tuned.rank() == b.tuned.rank()
    # a's own (later) result wins: a keeps its models, b refits with it.
    assert not a.stale and b.stale
    a.retrain()
    b.retrain()
    assert a.model.ease_lambda == b.model.ease_lambda
    assert a.state.ease is not None and b.state.ease is not None
    assert np.array_equal(a.state.ease.weights, b.state.ease.weights)
    for cid in ("c003", "c042", "c077"):
        q = Query(cid, n=8)
        assert [r.item_id for r in a.recommend(q)[0]] == [r.item_id for r in b.recommend(q)[0]]


def test_the_latest_result_wins_and_an_older_one_is_ignored() -> None:
    hs = _clustered(100)
    e = _catalog_engine()
    _feed(e, list(range(100)), hs)
    e.retrain()
    own = e.tuned
    assert own is not None and e.tuned_here == [own]
    # Its own result coming back on the stream changes nothing.
    back = msg.tuned_from(msg.tuned_pb(own))
    assert back is not None and back.rank() == own.rank()
    assert not e.adopt(back) and not e.stale
    older = msg.tuned_from(msg.tuned_pb(own))
    assert older is not None
    older.at, older.ease_lambda = own.at - 60, own.ease_lambda * 3
    assert not e.adopt(older) and e.tuned is own
    newer = msg.tuned_from(msg.tuned_pb(own))
    assert newer is not None
    # A re-tuning after erasures holds less data and still wins: it is later.
    newer.at, newer.interactions = own.at + 60, own.interactions - 10
    newer.ease_lambda, newer.blend = own.ease_lambda * 3, {**own.blend, "popular": 0.5}
    assert e.adopt(newer) and e.stale
    assert e.recommender.hybrid.blend["popular"] == 0.5  # served at once
    e.retrain()
    assert e.model.ease_lambda == newer.ease_lambda and not e.stale


def test_an_unservable_result_is_refused() -> None:
    e = _catalog_engine()
    hs = _clustered(100)
    _feed(e, list(range(100)), hs)
    e.retrain()
    assert e.tuned is not None
    good = msg.tuned_pb(e.tuned)
    for bad in (
        {"ease_lambda": 0.0},
        {"ease_lambda": float("nan")},
    ):
        m = type(good)()
        m.CopyFrom(good)
        for k, v in bad.items():
            setattr(m, k, v)
        assert msg.tuned_from(m) is None
    m = type(good)()
    m.CopyFrom(good)
    m.blend["no-such-model"] = 1.0
    assert msg.tuned_from(m) is None
    m = type(good)()
    m.CopyFrom(good)
    m.blend["ease"] = -1.0
    assert msg.tuned_from(m) is None
