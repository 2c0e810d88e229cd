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
