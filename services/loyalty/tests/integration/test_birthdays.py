"""Scheduled birthday rewards: granted once per member and year, even with
two loyalty replicas running the schedule at the same moment, and never
again by a `Birthday` track event."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc

from cxloop_libs.privacy import RequestKind
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx
from loyalty.service_layer import birthdays, membership
from loyalty.service_layer.schedule import check_books

from ..conftest import start_loyalty

pytestmark = pytest.mark.integration

# No yearly cap on the birthday rule: only the grant's claim keeps it to once.
RULES = {
    "return_window_days": 14,
    "tiers": [{"id": "member", "min_score": 0}],
    "rules": [
        {"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}},
        {"id": "bday", "kind": "engagement", "priority": 1, "activity": "birthday", "points": 300},
    ],
}
# 14 March 2027 in Seoul (the default programme time zone).
NOW = datetime(2027, 3, 14, 3, 0, tzinfo=UTC)


def points(runtime: ServiceRuntime) -> dict[str, int]:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return {
            r[0]: int(r[1])
            for r in s.execute(sa.select(t.account.c.customer_id, t.account.c.available))
        }


def grant(runtime: ServiceRuntime) -> int:
    """One scheduled round's birthday step, at NOW."""
    assert runtime.db is not None
    with runtime.db.session() as s:
        tx = Tx(s, now=NOW)
        n: int = runtime.handlers.grant_birthdays(tx)  # type: ignore[attr-defined]
        tx.flush()
        return n


async def test_two_replicas_grant_each_birthday_once(
    loyalty_nats: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await start_loyalty(loyalty_nats, postgres_url, rules=json.dumps(RULES))
    b = await start_loyalty(loyalty_nats, postgres_url, rules=json.dumps(RULES))
    try:
        assert a.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}") as ch:
            stub = pb_grpc.LoyaltyServiceStub(ch)
            for i in range(10):
                await stub.SetBirthday(
                    pb.SetBirthdayRequest(customer_id=f"bd{i}", month=3, day=14), timeout=10
                )
            await stub.SetBirthday(
                pb.SetBirthdayRequest(customer_id="other-day", month=3, day=15), timeout=10
            )
        # Both replicas pick the same members before either claims them.
        both_picked = threading.Barrier(2, timeout=30)
        due = birthdays.due

        def due_then_wait(*args: object, **kwargs: object) -> object:
            found = due(*args, **kwargs)  # type: ignore[arg-type]
            both_picked.wait()
            return found

        monkeypatch.setattr(birthdays, "due", due_then_wait)
        granted = await asyncio.gather(asyncio.to_thread(grant, a), asyncio.to_thread(grant, b))
        assert sorted(granted) == [0, 10]
        monkeypatch.setattr(birthdays, "due", due)
        assert grant(a) == grant(b) == 0  # and nothing on a later round
        got = points(a)
        assert {c: got[c] for c in got if c.startswith("bd")} == {f"bd{i}": 300 for i in range(10)}
        assert got["other-day"] == 0
        assert a.db is not None
        with a.db.session() as s:
            assert (
                s.execute(sa.select(sa.func.count()).select_from(t.birthday_grant)).scalar() == 10
            )
            assert check_books(s) == []
    finally:
        await b.stop()
        await a.stop()


async def test_birthday_is_checked_and_the_track_event_does_not_grant_twice(
    loyalty_nats: str, database_url: str, upstream
) -> None:  # type: ignore[no-untyped-def]
    runtime = await start_loyalty(loyalty_nats, database_url, rules=json.dumps(RULES))
    try:
        assert runtime.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            stub = pb_grpc.LoyaltyServiceStub(ch)
            for month, day, field in ((13, 1, "month"), (2, 30, "day"), (4, 31, "day")):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.SetBirthday(
                        pb.SetBirthdayRequest(customer_id="x", month=month, day=day), timeout=10
                    )
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert field in (err.value.details() or "")
            r = await stub.SetBirthday(
                pb.SetBirthdayRequest(customer_id="cake", month=3, day=14), timeout=10
            )
            assert r.birthday == "03-14"
        assert grant(runtime) == 1
        # The brand's own Birthday event the same year: no second reward.
        await upstream.track("cake", "Birthday", {}, when=NOW)
        # A member without a stored birthday gets it from the event, once.
        await upstream.track("pie", "Birthday", {}, when=NOW)
        await upstream.track("pie", "Birthday", {}, when=NOW)
        await eventually(lambda: points(runtime).get("pie") == 300)
        await eventually(lambda: loyalty_processed(runtime) >= 3)
        assert points(runtime)["cake"] == 300
        assert points(runtime)["pie"] == 300
        # Erasure forgets the day and leaves no grant under the member's id.
        assert runtime.db is not None
        with runtime.db.session() as s:
            membership.answer_privacy(Tx(s), "cake", RequestKind.ERASURE)
        with runtime.db.session() as s:
            assert (
                s.execute(
                    sa.select(sa.func.count()).where(t.account.c.birthday == "03-14")
                ).scalar_one()
                == 0
            )
            assert (
                s.execute(
                    sa.select(sa.func.count()).where(t.birthday_grant.c.customer_id == "cake")
                ).scalar_one()
                == 0
            )
    finally:
        await runtime.stop()


def loyalty_processed(runtime: ServiceRuntime) -> int:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.text("SELECT COUNT(*) FROM inbox_event WHERE consumer = 'loyalty-interactions'")
            ).scalar_one()
        )
