"""Two processes (replicas on one cache volume, parallel test workers) that
train the sentiment model at the same moment both write it to the cache and
both start: each writes a temporary file of its own before the rename."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from feedback.adapters import sentiment_model as sm


def test_two_writers_at_once_both_store_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = threading.Barrier(2, timeout=30)
    written = threading.Barrier(2, timeout=30)
    real_dump = pickle.dump

    def train(limit: int, *, korean_morphemes: bool = True) -> sm.SentimentModel:
        trained.wait()  # both finish training together
        return sm.SentimentModel({})

    def dump(obj: Any, f: Any, protocol: int | None = None) -> None:
        real_dump(obj, f, protocol=protocol)
        f.flush()
        written.wait()  # both have written before either renames

    monkeypatch.setattr(sm, "train", train)
    monkeypatch.setattr(sm.pickle, "dump", dump)
    results: list[object] = []

    def load() -> None:
        try:
            results.append(sm.load_or_train(tmp_path, 7))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [type(r) for r in results] == [sm.SentimentModel, sm.SentimentModel]
    monkeypatch.setattr(sm.pickle, "dump", real_dump)
    stored = list(tmp_path.iterdir())
    assert [p.suffix for p in stored] == [".pkl"]  # no temporary file left
    assert isinstance(sm.load_or_train(tmp_path, 7), sm.SentimentModel)
