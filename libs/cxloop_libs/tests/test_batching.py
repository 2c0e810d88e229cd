from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cxloop_libs.batching import RequestBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def double(self, items: Sequence[int]) -> Sequence[int | BaseException]:
        self.batches.append(list(items))
        await asyncio.sleep(0)
        return [ValueError(f"odd {i}") if i == 13 else i * 2 for i in items]


async def test_concurrent_calls_share_one_batch_and_get_their_own_answer() -> None:
    rec = Recorder()
    b: RequestBatcher[int, int] = RequestBatcher(rec.double, max_batch=100, max_wait_s=0.01)
    results = await asyncio.gather(*(b.submit(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert rec.batches == [list(range(10))]


async def test_one_failing_item_fails_only_its_caller() -> None:
    rec = Recorder()
    b: RequestBatcher[int, int] = RequestBatcher(rec.double, max_wait_s=0.005)
    results = await asyncio.gather(*(b.submit(i) for i in (12, 13, 14)), return_exceptions=True)
    assert results[0] == 24 and results[2] == 28
    assert isinstance(results[1], ValueError) and "odd 13" in str(results[1])


async def test_full_batches_flush_without_waiting_and_keep_order() -> None:
    rec = Recorder()
    b: RequestBatcher[int, int] = RequestBatcher(rec.double, max_batch=4, max_wait_s=10.0)
    results = await asyncio.wait_for(asyncio.gather(*(b.submit(i) for i in range(8))), 2)
    assert results == [i * 2 for i in range(8)]
    assert rec.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]


async def test_a_raising_batch_fails_every_caller_instead_of_hanging() -> None:
    async def broken(items: Sequence[int]) -> Sequence[int | BaseException]:
        raise ConnectionError("database down")

    b: RequestBatcher[int, int] = RequestBatcher(broken, max_wait_s=0.001)
    results = await asyncio.gather(*(b.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_wrong_result_count_is_an_error_not_a_silent_mismatch() -> None:
    async def short(items: Sequence[int]) -> Sequence[int | BaseException]:
        return [1]

    b: RequestBatcher[int, int] = RequestBatcher(short, max_wait_s=0.001)
    with pytest.raises(RuntimeError, match="2 requests"):
        await asyncio.gather(b.submit(1), b.submit(2))


async def test_keyed_batches_group_by_key_and_forget_idle_keys() -> None:
    from cxloop_libs.batching import KeyedRequestBatcher

    seen: list[tuple[str, list[int]]] = []
    running: dict[str, int] = {}
    overlap: list[str] = []

    async def apply(key: str, items: Sequence[int]) -> Sequence[int | BaseException]:
        running[key] = running.get(key, 0) + 1
        if running[key] > 1:
            overlap.append(key)
        seen.append((key, list(items)))
        await asyncio.sleep(0.01)
        running[key] -= 1
        return [i + (100 if key == "b" else 0) for i in items]

    b: KeyedRequestBatcher[str, int, int] = KeyedRequestBatcher(apply)
    first = [asyncio.ensure_future(b.submit(k, i)) for k, i in (("b", 0), ("a", 1))]
    await asyncio.sleep(0.001)  # their batches are being applied
    results = [*await asyncio.gather(*(b.submit("a" if i % 2 else "b", i) for i in range(2, 10)))]
    results[:0] = await asyncio.gather(*first)
    assert results == [i + (0 if i % 2 else 100) for i in range(10)]
    # The first call of each key went alone; the rest queued behind it together.
    assert sorted(seen) == [("a", [1]), ("a", [3, 5, 7, 9]), ("b", [0]), ("b", [2, 4, 6, 8])]
    assert overlap == []  # never two batches of one key at once
    assert len(b) == 0
