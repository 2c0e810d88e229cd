"""Stopping feedback ends its periodic rounds (invitation dispatch, case
escalation, anomaly scan) instead of leaving them asleep until the
runtime's stop gives up on them and cancels them (it waits up to 5 s: every
stop, in a rolling deploy as in each test, took that long)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback.tests.integration.conftest import settings_for, start_feedback

pytestmark = pytest.mark.integration


async def test_stop_ends_every_background_task_without_cancelling_it(
    clean_nats: str, database_url: str, model_dir: Path
) -> None:
    runtime = await start_feedback(settings_for(clean_nats, database_url, model_dir))
    tasks = list(runtime._tasks)
    assert len(tasks) >= 4  # consumers and relay, the model load, three rounds
    await runtime.stop()
    assert all(t.done() for t in tasks)
    cancelled = [t.get_name() for t in tasks if t.cancelled()]
    assert cancelled == []
