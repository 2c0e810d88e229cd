"""Segments at scale (issue #15): trait + segment evaluation with
PostgreSQL for N customers and 50 segments, beside the same events with no
segments (traits only) in the same run.

Drives the consumer handler (`Intelligence.on_resolved`) directly in
500-event transactions, as the BatchConsumer does, so NATS is not measured;
"event → segment entered" is the time from an event's batch start to the
commit that holds its `segment entered` row in the outbox.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

import numpy as np
import sqlalchemy as sa
from cxloop.gateway.v1 import events_pb2 as gev
from cxloop.identity.v1 import events_pb2 as iev
from google.protobuf.struct_pb2 import Struct

DAY = 86_400.0
CATEGORIES = ["shoes", "hats", "bags", "tops", "audio", "books", "toys", "garden"]


class _Event:
    def __init__(self, m: iev.InteractionResolved) -> None:
        self.id = m.interaction.message_id
        self._m = m

    def message(self) -> iev.InteractionResolved:
        return self._m


def _rules() -> list[str]:
    rules = []
    for i in range(50):
        c = CATEGORIES[i % len(CATEGORIES)]
        k = i % 5
        rules.append(
            [
                f'count(order_completed where category = "{c}" within 30d) >= 1',
                f'count(product_viewed where category = "{c}" within 7d) >= {1 + i % 3}',
                f"orders_90d >= {1 + i % 4} and revenue_30d > {10 * (i % 7)}",
                f'top_category_30d = "{c}" and count(product_added within 7d) >= 1',
                f'lifecycle in ("new", "active") and views_7d >= {i % 4}',
            ][k]
        )
    return rules


def segments_bench(
    customers: int, events: int = 20_000, segments: int = 50, *, warm: bool = False
) -> dict[str, Any]:
    """``warm``: the periodic sweep runs over every customer once after the
    segments are defined (as it would in service), so events meet existing
    memberships instead of entering several segments each."""
    from cxloop_libs.db import Database
    from cxloop_libs.db.migrations import run_migrations
    from cxloop_testing.infra import postgres_admin_url
    from personalization.adapters import intelligence_store as st
    from personalization.bootstrap import MIGRATIONS
    from personalization.domain.traits import CustomerState, compute, seen_from_tracked
    from personalization.service_layer.intelligence import Intelligence

    admin = postgres_admin_url()
    assert admin, "PostgreSQL is needed (CXLOOP_TEST_DATABASE_URL or 127.0.0.1:5432)"
    name = f"bench_intel_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"create database {name}"))
    url = admin.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    run_migrations(db.engine, MIGRATIONS)
    rng = random.Random(15)
    now = time.time()
    # Customers with a little history each.
    t0 = time.perf_counter()
    ids = [f"c{n:07d}" for n in range(customers)]
    for i in range(0, customers, 5000):
        rows = []
        for cid in ids[i : i + 5000]:
            s = CustomerState()
            for k in range(rng.randint(1, 4)):
                at = now - rng.uniform(0, 80) * DAY
                name_ = rng.choice(["Product Viewed", "Order Completed", "Product Added"])
                s.add(
                    f"{cid}-{k}",
                    seen_from_tracked(
                        name_,
                        {
                            "product_id": "p",
                            "category": rng.choice(CATEGORIES),
                            "price": 20,
                            "revenue": 20,
                        },
                        at,
                    ),
                    90 * DAY,
                )
            tr = compute(s, now)
            rows.append(
                {
                    "customer_id": cid,
                    "state": json.dumps(s.to_json()),
                    "traits": json.dumps(tr),
                    "lifecycle": tr["lifecycle"],
                    "updated_at": st.dt(now),
                }
            )
        with db.session() as sess:
            sess.execute(sa.insert(st.states), rows)
    load_s = time.perf_counter() - t0

    def settle() -> None:
        # As autovacuum would in service: hint bits, visibility map and
        # statistics of freshly bulk-written tables, so the events' reads are
        # not the first ones (on a fresh table those set hint bits and write
        # full-page images: PostgreSQL CPU that is the load's, not the events').
        e = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            for t in ("pers_intel_state", "pers_segment_member", "outbox_event"):
                c.execute(sa.text(f"VACUUM ANALYZE {t}"))
        e.dispose()

    settle()

    def make_events(n: int) -> list[_Event]:
        out = []
        for _ in range(n):
            cid = rng.choice(ids)
            name_ = rng.choice(
                ["Product Viewed", "Product Viewed", "Product Added", "Order Completed"]
            )
            props = Struct()
            props.update(
                {
                    "product_id": f"p{rng.randint(1, 500)}",
                    "category": rng.choice(CATEGORIES),
                    "price": 25,
                    "revenue": 25,
                }
            )
            it = gev.InteractionRecorded(
                message_id=str(uuid.uuid4()), name=name_, properties=props, channel="web"
            )
            it.occurred_at.FromSeconds(int(time.time()))
            out.append(_Event(iev.InteractionResolved(customer_id=cid, interaction=it)))
        return out

    cpu: dict[str, float] = {}

    def pg_cpu() -> dict[int, float] | None:
        """CPU seconds of each client backend serving this database (from
        /proc; None when the server is not on this machine). Autovacuum
        workers on the database are left out: they come and go, and their
        work after a bulk load is not the handler's."""
        with eng.connect() as c:
            pids = [
                int(p)
                for (p,) in c.execute(
                    sa.text(
                        "select pid from pg_stat_activity "
                        "where datname = :d and backend_type = 'client backend'"
                    ),
                    {"d": name},
                )
            ]
        out, tick = {}, os.sysconf("SC_CLK_TCK")
        try:
            for pid in pids:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            return None
        return out

    def run(intel: Intelligence, evs: list[_Event]) -> tuple[float, list[float]]:
        lat = []
        with db.session() as sess:  # the pool's connection exists before the count
            sess.execute(sa.text("select 1"))
        p0 = pg_cpu()
        start, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(evs), 500):
            b0 = time.perf_counter()
            with db.session() as sess:
                intel.on_resolved(sess, evs[i : i + 500])  # type: ignore[arg-type]
            lat.append(time.perf_counter() - b0)
        # This process's CPU (the handler), and PostgreSQL's beside it.
        cpu["us_per_event"] = (time.process_time() - c0) / len(evs) * 1e6
        p1 = pg_cpu()
        # Backends alive at both reads (the pool keeps the handler's).
        cpu["pg_us_per_event"] = (
            sum(p1[k] - p0[k] for k in p0.keys() & p1.keys()) / len(evs) * 1e6
            if p0 is not None and p1 is not None
            else float("nan")
        )
        return len(evs) / (time.perf_counter() - start), lat

    intel = Intelligence(may_use=lambda c, p: True)
    # Baseline in the same run: traits only, no segments defined.
    base_rate, _ = run(intel, make_events(events // 4))
    with db.session() as sess:
        for i, rule in enumerate(_rules()[:segments]):
            intel.define_segment(sess, f"s{i:02d}", f"segment {i}", rule)
    sweep_s = 0.0
    if warm:
        t0, after = time.perf_counter(), ""
        while True:
            with db.session() as sess:
                after = intel.sweep_segments(sess, after)
            if not after:
                break
        sweep_s = time.perf_counter() - t0
        settle()
    with db.session() as sess:
        before = int(sess.execute(sa.select(sa.func.count()).select_from(st.members)).scalar_one())
    base_cpu = dict(cpu)
    rate, lat = run(intel, make_events(events))
    cpu_us = cpu["us_per_event"]
    load = os.getloadavg()[0]
    with db.session() as sess:
        entered = (
            int(sess.execute(sa.text("select count(*) from cx_outbox")).scalar_one())
            if False
            else int(sess.execute(sa.select(sa.func.count()).select_from(st.members)).scalar_one())
        )
    db.engine.dispose()
    with eng.connect() as c:
        c.execute(sa.text(f"drop database {name} with (force)"))
    return {
        "customers": customers,
        "segments": segments,
        "events": events,
        "database": "PostgreSQL",
        "events_per_s": round(rate, 1),
        "handler_cpu_us_per_event": round(cpu_us, 1),
        "postgres_cpu_us_per_event": round(cpu["pg_us_per_event"], 1),
        "baseline_handler_cpu_us_per_event": round(base_cpu["us_per_event"], 1),
        "baseline_postgres_cpu_us_per_event": round(base_cpu["pg_us_per_event"], 1),
        "load_average_1m": round(load, 2),
        "entered_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1),
        "entered_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
        "memberships_after": entered,
        "customer_load_s": round(load_s, 1),
        "baseline": f"traits only, no segments: {base_rate:,.0f} events/s",
        "memberships_before_events": before,
        "segment_entries_per_event": round((entered - before) / events, 2),
        **({"warm": True, "sweep_s": round(sweep_s, 1)} if warm else {}),
        "note": (
            "handler driven directly in 500-event transactions (NATS not measured); "
            "latency = batch start to commit; CPU per event: the handler process "
            "(time.process_time) and the PostgreSQL backends of the bench database "
            "(/proc utime+stime); "
            + (
                "memberships swept in before the events (warm); "
                if warm
                else "memberships start empty (segments defined after the customers), so "
                "most events enter several segments; "
            )
            + "wall-clock figures depend on the machine's load (load_average_1m), compare CPU"
        ),
    }
