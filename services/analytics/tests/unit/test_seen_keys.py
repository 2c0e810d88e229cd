"""The seen-event-key index: after any sequence of additions of keys not
seen before (ingest_batch adds only those; a batch may repeat one) it
answers as a plain set of every key added, the recent part merged into the
main one as it grows."""

from __future__ import annotations

import numpy as np

from analytics.adapters import event_store
from analytics.adapters.event_store import SeenKeys, _merge_sorted


def test_merge_is_the_sorted_union() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        a = np.unique(rng.integers(0, 60, rng.integers(0, 40)).astype(np.uint64))
        b = np.unique(rng.integers(0, 60, rng.integers(0, 40)).astype(np.uint64))
        assert np.array_equal(_merge_sorted(a, b), np.union1d(a, b))


def test_answers_as_a_set_of_everything_added(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    start = rng.integers(0, 2**64, 500, dtype=np.uint64)
    seen = SeenKeys(start)
    truth = set(start.tolist())
    # A small recent part, so that it is merged into the main part often.
    monkeypatch.setattr(event_store, "_RECENT_MAX", 700)
    for _ in range(40):
        batch = rng.integers(0, 2**64, 150, dtype=np.uint64)
        batch = np.concatenate((batch, batch[:5]))  # repeats inside a batch
        seen.add(batch)
        truth.update(batch.tolist())
        probe = np.concatenate((batch, rng.integers(0, 2**64, 50, dtype=np.uint64)))
        assert seen.contains(probe).tolist() == [k in truth for k in probe.tolist()]
        assert len(seen) == len(truth)
    assert len(seen.main) > len(start)  # the recent part was merged at least once
