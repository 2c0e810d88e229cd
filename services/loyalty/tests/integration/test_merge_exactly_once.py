"""Identity merges combine two members' points exactly once: a merge event
delivered again (same id) or republished (new id) moves nothing more, and a
purchase racing the merge lands on the survivor, never on the merged-away
account (where its points would be stranded)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cxloop.identity.v1 import events_pb2 as ipb

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx
from loyalty.domain.rules import Line
from loyalty.service_layer import membership
from loyalty.service_layer.commands import PurchaseIn
from loyalty.service_layer.schedule import check_books

from ..conftest import start_loyalty

pytestmark = pytest.mark.integration


def books(runtime: ServiceRuntime) -> dict[str, tuple[int, int, str]]:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return {
            r[0]: (int(r[1]), int(r[2]), r[3])
            for r in s.execute(
                sa.select(
                    t.account.c.customer_id,
                    t.account.c.available,
                    t.account.c.pending,
                    t.account.c.merged_into,
                )
            )
        }


def inbox(runtime: ServiceRuntime) -> int:
    assert runtime.db is not None
    with runtime.db.session() as s:
        return int(
            s.execute(
                sa.text("SELECT COUNT(*) FROM inbox_event WHERE consumer = 'loyalty-profiles'")
            ).scalar_one()
        )


async def test_a_merge_delivered_again_or_republished_moves_points_once(
    loyalty: ServiceRuntime, upstream
) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=40)
    await upstream.purchase("x1", "xo-1", 10000, when=old)  # 100 available
    await upstream.purchase("x2", "xo-2", 30000, when=old)  # 300 available
    await upstream.purchase("x3", "xo-3", 5000)  # 50 pending
    await eventually(lambda: {"x1", "x2", "x3"} <= set(books(loyalty)))
    merge = ipb.ProfileMerged(
        surviving_customer_id="x1", merged_customer_ids=["x2", "x3"], cause_event_id="c-1"
    )
    await upstream.send(ev.PROFILE_MERGED, merge, event_id="merge-1")
    await eventually(lambda: books(loyalty)["x1"][:2] == (400, 50))
    # The same event again (a redelivery after a crash), and the same merge
    # republished under a new id, and a later merge of an already merged id.
    await upstream.send(ev.PROFILE_MERGED, merge, event_id="merge-1")
    await upstream.send(ev.PROFILE_MERGED, merge, event_id="merge-1-again")
    await upstream.send(
        ev.PROFILE_MERGED,
        ipb.ProfileMerged(surviving_customer_id="x1", merged_customer_ids=["x2"]),
        event_id="merge-2",
    )
    await eventually(lambda: inbox(loyalty) == 3)
    got = books(loyalty)
    assert got["x1"][:2] == (400, 50)
    assert got["x2"] == (0, 0, "x1") and got["x3"] == (0, 0, "x1")
    assert loyalty.db is not None
    with loyalty.db.session() as s:
        assert check_books(s) == []
        owners = s.execute(sa.select(t.lot.c.customer_id).where(t.lot.c.origin == "purchase"))
        assert set(owners.scalars()) == {"x1"}


async def test_a_purchase_racing_a_merge_lands_on_the_survivor(
    loyalty_nats: str, postgres_url: str
) -> None:
    runtime = await start_loyalty(loyalty_nats, postgres_url)
    try:
        db, h = runtime.db, runtime.handlers  # type: ignore[attr-defined]
        assert db is not None
        old = datetime.now(UTC) - timedelta(days=40)

        def buy(cid: str, order: str) -> None:
            with db.session() as s:
                tx = Tx(s)
                h.purchases(
                    tx, [PurchaseIn(cid, order, "KRW", (Line("", "", "", 1, 20000),), "web", old)]
                )
                tx.flush()

        buy("r1", "ro-1")
        buy("r2", "ro-2")

        def merge_while_a_purchase_waits() -> None:
            racer = threading.Thread(target=buy, args=("r2", "ro-3"))
            with db.session() as s:
                tx = Tx(s)
                membership.merge(tx, "r1", ["r2"], "race-merge")
                tx.flush()
                # The purchase for r2 starts while the merge holds r2's row...
                racer.start()
                deadline = time.monotonic() + 30
                while not _waiting_on_a_lock(postgres_url):
                    assert time.monotonic() < deadline, "the racing purchase never waited"
                    time.sleep(0.05)
                # ...and the merge commits first.
            racer.join(30)

        await asyncio.to_thread(merge_while_a_purchase_waits)
        got = books(runtime)
        assert got["r2"] == (0, 0, "r1")
        assert got["r1"][:2] == (600, 0)  # 200 + 200 moved + 200 from the racer
        with db.session() as s:
            assert (
                s.execute(
                    sa.select(t.order.c.customer_id).where(t.order.c.order_id == "ro-3")
                ).scalar_one()
                == "r1"
            )
            assert check_books(s) == []
    finally:
        await runtime.stop()


def _waiting_on_a_lock(url: str) -> bool:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        row = c.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])
