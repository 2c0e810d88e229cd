"""Two personalization replicas updating one customer's traits at once
(issue #15): the shared durable consumer can hand two events of one customer
to two replicas, whose batches then overlap. Real PostgreSQL; the replicas
are two `Intelligence` handlers on their own connections, as two processes
would be."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database
from cxloop_libs.db.migrations import run_migrations
from cxloop_libs.messaging import catalog as ev
from personalization.adapters import intelligence_store as st
from personalization.bootstrap import MIGRATIONS
from personalization.service_layer.intelligence import Intelligence
from personalization.tests.conftest import ResolvedEvent

pytestmark = pytest.mark.integration


def _event(cid: str, name: str, revenue: float) -> ResolvedEvent:
    return ResolvedEvent(cid, name, {"product_id": "p1", "category": "shoes", "revenue": revenue})


def _waiting_for_lock(db: Database) -> bool:
    with db.engine.connect() as c:
        q = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        return int(c.execute(sa.text(q)).scalar_one()) > 0


def test_overlapping_batches_of_two_replicas_keep_both_events(postgres_url: str) -> None:
    db = Database(postgres_url)
    run_migrations(db.engine, MIGRATIONS)
    a, b = (Intelligence(may_use=lambda c, p: True) for _ in range(2))
    with db.session() as s:
        a.define_segment(s, "buyers", "buyers", "count(order_completed within 30d) >= 1")
    cid = "c-race"
    staged, release, done_b = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def replica_a() -> None:
        try:
            with db.session() as s:
                a.on_resolved(s, [_event(cid, "Order Completed", 30.0)])  # type: ignore[list-item]
                staged.set()
                release.wait(20)  # the batch is not committed yet
        except BaseException as e:  # reported by the test
            errors.append(e)
            staged.set()

    def replica_b() -> None:
        try:
            with db.session() as s:
                b.on_resolved(s, [_event(cid, "Order Completed", 12.5)])  # type: ignore[list-item]
        except BaseException as e:  # reported by the test
            errors.append(e)
        finally:
            done_b.set()

    ta = threading.Thread(target=replica_a)
    ta.start()
    assert staged.wait(20)
    tb = threading.Thread(target=replica_b)
    tb.start()
    # B either waits for A's customer lock or (without one) runs through.
    deadline = time.monotonic() + 10
    while not done_b.is_set() and not _waiting_for_lock(db) and time.monotonic() < deadline:
        time.sleep(0.02)
    b_waited = not done_b.is_set()
    release.set()
    ta.join(20)
    tb.join(20)
    assert not errors, errors
    assert b_waited, "the second replica did not wait for the first one's batch"
    with db.session() as s:
        raw = st.load_states(s, [cid])[cid]
        traits = json.loads(raw[1])
        outbox = s.execute(
            sa.text("select ce_type from outbox_event where ce_subject = :c"), {"c": cid}
        ).all()
        members = st.customer_segments(s, cid)
    # Both orders are in the state and the traits: neither batch overwrote
    # the other's.
    assert traits["lifetime_orders"] == 2
    assert traits["lifetime_revenue"] == 42.5
    assert [r.segment_id for r in members] == ["buyers"]
    # One customer entered the segment once: one `segment entered` event.
    assert [r.ce_type for r in outbox].count(ev.SEGMENT_ENTERED.ce_type) == 1
    db.engine.dispose()


def test_pipelined_batches_apply_a_customers_events_in_delivery_order(postgres_url: str) -> None:
    # One process, two batches in flight (PipelinedBatchConsumer, ADR 0260):
    # batch 1 carts, batch 2 (delivered after it) orders. Even when batch 2's
    # thread runs first, it locks the customer only after batch 1 locked
    # it, and reads batch 1's commit: the order cancels the waiting
    # cart-abandonment action. Applied the other way round the cart add
    # would schedule the action after the order, and it would fire.
    from personalization.domain import triggers as tg
    from personalization.entrypoints.intelligence_consumer import _GATE, gated

    db = Database(postgres_url)
    run_migrations(db.engine, MIGRATIONS)
    intel = Intelligence(may_use=lambda c, p: True)
    with db.session() as s:
        intel.define_trigger(
            s,
            tg.Trigger(
                trigger_id="cart-abandoned",
                on="event:product_added",
                unless="order_completed",
                delay_s=1800,
                action="send_message",
            ),
        )
    cid = "c-order"
    handler = gated(intel.on_resolved)
    locked_1, locked_2 = threading.Event(), threading.Event()
    first_done = threading.Event()
    first_done.set()  # nothing before batch 1
    release, done_2 = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def batch(gate: tuple[threading.Event, threading.Event], e: ResolvedEvent, hold: bool) -> None:
        _GATE.set(gate)
        try:
            with db.session() as s:
                handler(s, [e])  # type: ignore[list-item]
                if hold:
                    release.wait(20)  # batch 1 not committed yet
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            gate[1].set()
            if not hold:
                done_2.set()

    t2 = threading.Thread(
        target=batch, args=((locked_1, locked_2), _event(cid, "Order Completed", 20.0), False)
    )
    t2.start()  # batch 2 first: it must wait for batch 1's locks
    assert not done_2.wait(1.0), "batch 2 ran before batch 1 took its locks"
    t1 = threading.Thread(
        target=batch, args=((first_done, locked_1), _event(cid, "Product Added", 0.0), True)
    )
    t1.start()
    deadline = time.monotonic() + 10
    while not done_2.is_set() and not _waiting_for_lock(db) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not done_2.is_set(), "batch 2 did not wait for batch 1's commit"
    release.set()
    t1.join(20)
    t2.join(20)
    assert not errors, errors
    with db.session() as s:
        traits = json.loads(st.load_states(s, [cid])[cid][1])
        waiting = s.execute(
            sa.select(sa.func.count())
            .select_from(st.pending)
            .where(st.pending.c.customer_id == cid)
        ).scalar_one()
    assert traits["lifetime_orders"] == 1 and traits["cart_adds_7d"] == 1
    assert waiting == 0, "the cart add was applied after the order"
    db.engine.dispose()
