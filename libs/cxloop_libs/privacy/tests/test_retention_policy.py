"""The retention component without I/O: policy rules and batched rounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cxloop_libs.errors import InvalidArgument
from cxloop_libs.privacy.retention import (
    DEFAULT_CATEGORY_DAYS,
    DEFAULT_PURPOSE_DAYS,
    INTERACTIONS,
    RetentionPolicy,
    RetentionSchedule,
    purpose_key,
    validate_periods,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PURPOSES = frozenset({"analytics", "marketing_email"})


def policy(version: int = 1, **days: int) -> RetentionPolicy:
    return RetentionPolicy(version, {**DEFAULT_CATEGORY_DAYS, **days}, {"marketing_email": 730})


@pytest.mark.parametrize(
    ("categories", "purposes", "field", "reason"),
    [
        ({"interactions": -1}, {}, "category_days.interactions", "between 1 and 36500"),
        ({"interactions": 0}, {}, "category_days.interactions", "between 1 and 36500"),
        ({"audit_log": 40_000}, {}, "category_days.audit_log", "between 1 and 36500"),
        ({"forever": 10}, {}, "category_days.forever", "unknown category"),
        ({}, {"astrology": 10}, "purpose_days.astrology", "unknown purpose"),
        ({}, {"analytics": -5}, "purpose_days.analytics", "between 1 and 36500"),
    ],
)
def test_bad_periods_name_the_field(
    categories: dict[str, int], purposes: dict[str, int], field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_periods(categories, purposes, PURPOSES)
    assert exc.value.field == field
    assert reason in exc.value.reason


def test_the_defaults_are_valid() -> None:
    validate_periods(DEFAULT_CATEGORY_DAYS, DEFAULT_PURPOSE_DAYS, frozenset(DEFAULT_PURPOSE_DAYS))


def test_policy_travels_as_proto_and_answers_per_category_and_purpose() -> None:
    p = RetentionPolicy(3, {"interactions": 7}, {"marketing_email": 730}, NOW, "dpo")
    back = RetentionPolicy.from_proto(p.to_proto())
    assert back == RetentionPolicy(3, {"interactions": 7}, {"marketing_email": 730}, NOW, "dpo")
    assert back.period(INTERACTIONS) == timedelta(days=7)
    assert back.period(purpose_key("marketing_email")) == timedelta(days=730)
    assert back.period("identity_graph") is None


class OldRows:
    """A table of row ages; the purge deletes at most `limit` per call."""

    def __init__(self, old: int, new: int) -> None:
        self.rows = [NOW - timedelta(days=100)] * old + [NOW - timedelta(days=1)] * new
        self.calls: list[tuple[datetime, int, int]] = []

    def purge(self, session: object, cutoff: datetime, limit: int) -> int:
        doomed = [i for i, t in enumerate(self.rows) if t < cutoff][:limit]
        for i in reversed(doomed):
            del self.rows[i]
        self.calls.append((cutoff, limit, len(doomed)))
        return len(doomed)


def schedule(batch_size: int = 100) -> RetentionSchedule:
    return RetentionSchedule("loyalty", bus=None, batch_size=batch_size, clock=lambda: NOW)


async def test_a_round_deletes_in_bounded_batches_and_keeps_newer_rows() -> None:
    table = OldRows(old=250, new=7)
    s = schedule(batch_size=100)
    s.register(INTERACTIONS, table.purge)
    s.apply_policy(policy(interactions=30))
    report = await s.purge_now()
    assert report.rows == {INTERACTIONS: 250} and report.batches == {INTERACTIONS: 3}
    assert [n for _, _, n in table.calls] == [100, 100, 50, 0]
    assert all(limit == 100 for _, limit, _ in table.calls)
    assert table.calls[0][0] == NOW - timedelta(days=30)
    assert len(table.rows) == 7  # the newer ones stay


async def test_purpose_bound_data_follows_the_purpose_period() -> None:
    table = OldRows(old=3, new=2)
    s = schedule()
    s.register(purpose_key("marketing_email"), table.purge)
    s.apply_policy(RetentionPolicy(1, {}, {"marketing_email": 50}))
    assert (await s.purge_now()).rows == {"purpose.marketing_email": 3}
    # Data whose category has no period in the policy is left alone.
    other = OldRows(old=3, new=0)
    s2 = schedule()
    s2.register("audit_log", other.purge)
    s2.apply_policy(RetentionPolicy(1, {"interactions": 30}))
    assert (await s2.purge_now()).rows == {} and other.calls == []


async def test_a_failing_purge_is_reported_and_the_others_still_run() -> None:
    table = OldRows(old=5, new=0)

    def broken(session: object, cutoff: datetime, limit: int) -> int:
        raise RuntimeError("table locked")

    s = schedule()
    s.register("audit_log", broken)
    s.register(INTERACTIONS, table.purge)
    s.apply_policy(policy())
    report = await s.purge_now()
    assert report.failed == ["audit_log"] and report.rows[INTERACTIONS] == 5


def test_only_a_newer_policy_is_applied() -> None:
    s = schedule()
    assert s.apply_policy(policy(2, interactions=7))
    assert not s.apply_policy(policy(1, interactions=90))
    assert not s.apply_policy(policy(2, interactions=90))
    assert s.policy is not None and s.policy.days(INTERACTIONS) == 7


def test_unknown_categories_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="unknown retention category"):
        schedule().register("everything", OldRows(0, 0).purge)


async def test_nothing_is_purged_before_a_policy_is_known() -> None:
    table = OldRows(old=5, new=0)
    s = schedule()
    s.register(INTERACTIONS, table.purge)
    run = asyncio.ensure_future(s.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="no retention policy"):
        await s.purge_now()
    await s.stop()
    await run
    assert table.calls == [] and len(table.rows) == 5


async def test_a_policy_change_wakes_the_schedule_for_another_round() -> None:
    table = OldRows(old=0, new=4)  # 1 day old: kept at 30 days
    s = RetentionSchedule("loyalty", bus=None, interval_s=3600, clock=lambda: NOW)
    s.register(INTERACTIONS, table.purge)
    s.apply_policy(policy(1, interactions=30))
    run = asyncio.ensure_future(s.run())
    first = await s.wait_rounds(1, timeout=10)
    assert first.rows[INTERACTIONS] == 0 and len(table.rows) == 4
    table.rows = [NOW - timedelta(days=3)] * 4
    s.apply_policy(policy(2, interactions=2))  # no hour-long wait for the next round
    second = await s.wait_rounds(2, timeout=10)
    assert second.policy_version == 2 and second.rows[INTERACTIONS] == 4 and table.rows == []
    await s.stop()
    await run
