"""Segments at scale (issue #15): trait + segment evaluation with
PostgreSQL for N customers and 50 segments, beside the same events with no
segments (traits only) in the same run.

Drives the consumer handler (`Intelligence.on_resolved`) directly in
500-event transactions, as the BatchConsumer does, so NATS is not measured;
"event → segment entered" is the time from an event's batch start to the
commit that holds its `segment entered` row in the outbox.

Both states of the membership table are measured in one run (ADR 0201):
*cold* — the 50 segments were just defined, memberships are empty, so an
event's customer enters every segment they already qualified for — and then,
after one sweep over everyone, *warm* — the steady state of a running
service, whose sweep keeps memberships current. Beside the CPU per event:
statements, COPY rows and PostgreSQL row writes per event (from
``pg_stat_user_tables``), and with ``CXLOOP_BENCH_INTEL_PROFILE=1`` the
handler's cProfile (calls and time per event of its top functions).
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def _counting(engine: sa.Engine) -> Iterator[Counter[str]]:
    """Statements the handler sends (SQLAlchemy's cursor executions; an
    executemany counts once, its parameter sets as rows) and COPY rows per
    table (``bulk_insert`` writes through the raw driver, past SQLAlchemy's
    events, so it is wrapped here for the count)."""
    import cxloop_libs.db.engine as dbe
    import cxloop_libs.messaging.outbox as ob

    n: Counter[str] = Counter()

    def on_exec(conn: Any, cur: Any, stmt: str, params: Any, ctx: Any, many: bool) -> None:
        n["statements"] += 1
        if many:
            n["executemany_rows"] += len(params)

    original = dbe.bulk_insert

    def counted(session: Any, table: Any, rows: Any, **kw: Any) -> None:
        n[f"bulk_rows:{table.name}"] += len(rows)
        n["bulk_statements"] += 1
        original(session, table, rows, **kw)

    sa.event.listen(engine, "before_cursor_execute", on_exec)
    # The outbox module's own reference to the function is replaced too.
    setattr(dbe, "bulk_insert", counted)  # noqa: B010
    setattr(ob, "bulk_insert", counted)  # noqa: B010
    try:
        yield n
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_exec)
        setattr(dbe, "bulk_insert", original)  # noqa: B010
        setattr(ob, "bulk_insert", original)  # noqa: B010


def _profile_top(prof: cProfile.Profile, events: int, top: int = 25) -> list[dict[str, Any]]:
    """The handler's functions by own time: calls and µs per event."""
    st = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}:{fn}" if file != "~" else fn,
                "calls_per_event": round(nc / events, 2),
                "own_us_per_event": round(tt / events * 1e6, 2),
                "cumulative_us_per_event": round(ct / events * 1e6, 2),
            }
        )
    rows.sort(key=lambda r: -r["own_us_per_event"])
    return rows[:top]


def _thread_sched() -> tuple[float, float]:
    """This thread's seconds on a CPU and waiting on the run queue for one
    (``/proc/thread-self/schedstat``; zeros where the kernel has none): the
    wait is what a busy machine adds to the wall time."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            on, wait, _ = f.read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on) / 1e9, int(wait) / 1e9


class _Sched:
    """Run-queue wait summed over the threads that run the handler (each
    adds its own delta: pool threads come and go with the run)."""

    def __init__(self) -> None:
        self.cpu = self.wait = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def measure(self) -> Iterator[None]:
        c0, w0 = _thread_sched()
        try:
            yield
        finally:
            c1, w1 = _thread_sched()
            with self._lock:
                self.cpu += c1 - c0
                self.wait += w1 - w0


def _pipelined(
    db: Any, intel: Any, evs: list[_Event], depth: int, sched: _Sched | None = None
) -> list[float]:
    """The events in 500-event transactions with up to ``depth`` in flight,
    as ``PipelinedBatchConsumer`` runs them: a batch takes its customers'
    locks after the batch before it took its own (the gate), and is
    committed in its own thread. Returns each batch's start → commit."""
    from concurrent.futures import Future, ThreadPoolExecutor
    from threading import Event

    def one(batch: list[_Event], prev: Event, mine: Event, b0: float) -> float:
        try:
            with sched.measure() if sched else contextlib.nullcontext(), db.session() as sess:
                prev.wait()
                intel.on_resolved(sess, batch, after_lock=mine.set)
        finally:
            mine.set()
        return time.perf_counter() - b0

    lat: list[float] = []
    inflight: list[Future[float]] = []
    last = Event()
    last.set()
    with ThreadPoolExecutor(depth) as pool:
        for i in range(0, len(evs), 500):
            if len(inflight) >= depth:
                lat.append(inflight.pop(0).result())
            mine = Event()
            inflight.append(pool.submit(one, evs[i : i + 500], last, mine, time.perf_counter()))
            last = mine
        lat.extend(f.result() for f in inflight)
    return lat


def segments_bench(
    customers: int,
    events: int = 20_000,
    segments: int = 50,
    *,
    phases: tuple[str, ...] = ("cold", "warm"),
) -> dict[str, dict[str, Any]]:
    """Runs the events once per phase, in order: ``cold`` right after the
    segments are defined (memberships empty); ``warm`` after the periodic
    sweep has run over every customer once, as it does in service.
    Returns one result per phase."""
    from cxloop_libs.db import Database
    from cxloop_libs.db.migrations import run_migrations
    from cxloop_libs.runtime import settle_heap
    from cxloop_testing.infra import postgres_admin_url
    from personalization.adapters import intelligence_store as st
    from personalization.bootstrap import MIGRATIONS
    from personalization.domain.traits import CustomerState, compute, seen_from_tracked
    from personalization.service_layer.intelligence import Intelligence

    admin = postgres_admin_url()
    assert admin, "PostgreSQL is needed (CXLOOP_TEST_DATABASE_URL or 127.0.0.1:5432)"
    name = f"bench_intel_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    # CXLOOP_BENCH_INTEL_TEMPLATE=1: the loaded customers are kept in a
    # template database (bench_intel_tpl_<customers>) and the next runs
    # clone it instead of loading again (257 s at 1,000,000). Each run
    # writes only its own clone; drop the template when done.
    template = (
        f"bench_intel_tpl_{customers}"
        if os.environ.get("CXLOOP_BENCH_INTEL_TEMPLATE") == "1"
        else ""
    )
    loaded_at: float | None = None
    with eng.connect() as c:
        row = (
            c.execute(
                sa.text(
                    "select shobj_description(oid, 'pg_database') from pg_database "
                    "where datname = :t"
                ),
                {"t": template},
            ).first()
            if template
            else None
        )
        if row is not None:
            loaded_at = float(row[0])
            for attempt in range(30):  # another run may be cloning it right now
                try:
                    c.execute(sa.text(f"create database {name} template {template}"))
                    break
                except sa.exc.OperationalError:
                    if attempt == 29:
                        raise
                    time.sleep(2.0)
        else:
            c.execute(sa.text(f"create database {name}"))
    url = admin.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    run_migrations(db.engine, MIGRATIONS)
    rng = random.Random(15)
    now = time.time() if loaded_at is None else loaded_at
    # Customers with a little history each.
    t0 = time.perf_counter()
    ids = [f"c{n:07d}" for n in range(customers)]
    for i in range(0, customers if loaded_at is None else 0, 5000):
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
    db_url = url

    def settle() -> None:
        # As autovacuum would in service: hint bits, visibility map and
        # statistics of freshly bulk-written tables, so the events' reads are
        # not the first ones (on a fresh table those set hint bits and write
        # full-page images: PostgreSQL CPU that is the load's, not the events').
        e = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            for t in ("pers_intel_state", "pers_segment_member", "outbox_event"):
                c.execute(sa.text(f"VACUUM ANALYZE {t}"))
        e.dispose()

    settle()
    if template and loaded_at is None:
        db.engine.dispose()
        with eng.connect() as c:
            try:
                c.execute(sa.text(f"create database {template} template {name}"))
                c.execute(sa.text(f"comment on database {template} is '{now!r}'"))
            except sa.exc.SQLAlchemyError:
                pass  # another run made it first, or this clone is busy: next time
    # The events: the same whether the customers were loaded or cloned.
    rng = random.Random(16)

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
                # Run-queue wait (ns) beside the CPU, under a negative key.
                with open(f"/proc/{pid}/schedstat") as f:
                    out[-pid] = int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None
        return out

    def table_rows() -> dict[str, dict[str, int]]:
        """Cumulative row writes per table of the bench database. Backends
        report their counts when they exit, so the pool is closed first."""
        db.engine.dispose()
        time.sleep(1.0)
        e = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            rows = c.execute(
                sa.text(
                    "select relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del "
                    "from pg_stat_user_tables"
                )
            ).all()
        e.dispose()
        return {
            r[0]: {"inserted": r[1], "updated": r[2], "hot_updated": r[3], "deleted": r[4]}
            for r in rows
        }

    profile = os.environ.get("CXLOOP_BENCH_INTEL_PROFILE") == "1"
    # Batches in flight, as the service's consumer (INTEL_PIPELINE_DEPTH,
    # ADR 0260); 1: one after the other. The profile runs them one at a time.
    depth = int(os.environ.get("CXLOOP_BENCH_INTEL_PIPELINE", "2"))

    def run(intel: Intelligence, evs: list[_Event]) -> dict[str, Any]:
        before = table_rows()
        # As run_service does once a service has started: what is alive now
        # (modules, and here the bench's customer ids and events) is frozen
        # out of the collector's sight; what the handler allocates is
        # collected as usual.
        settle_heap()
        lat = []
        # The pool's connections (one per batch in flight) exist before the
        # count: the PostgreSQL CPU is read from the backends alive at both ends.
        with contextlib.ExitStack() as held:
            for _ in range(1 if profile else depth):
                held.enter_context(db.session()).execute(sa.text("select 1"))
        p0 = pg_cpu()
        prof = cProfile.Profile() if profile else None
        sched = _Sched()
        with _counting(db.engine) as counts:
            start, c0 = time.perf_counter(), time.process_time()
            if prof is not None:
                prof.enable()
            if depth == 1 or prof is not None:
                with sched.measure():
                    for i in range(0, len(evs), 500):
                        b0 = time.perf_counter()
                        with db.session() as sess:
                            intel.on_resolved(sess, evs[i : i + 500])  # type: ignore[arg-type]
                        lat.append(time.perf_counter() - b0)
            else:
                with sched.measure():  # the main thread: waits on the batches
                    lat.extend(_pipelined(db, intel, evs, depth, sched))
            if prof is not None:
                prof.disable()
            # This process's CPU (the handler), and PostgreSQL's beside it.
            cpu_s, wall = time.process_time() - c0, time.perf_counter() - start
        p1 = pg_cpu()
        after = table_rows()
        n = len(evs)
        out: dict[str, Any] = {
            "events_per_s": n / wall,
            "us_per_event": cpu_s / n * 1e6,
            # Backends alive at both reads (the pool keeps the handler's).
            "pg_us_per_event": (
                sum(p1[k] - p0[k] for k in p0.keys() & p1.keys() if k > 0) / n * 1e6
                if p0 is not None and p1 is not None
                else float("nan")
            ),
            # Time runnable but waiting for a core (a busy machine's share of
            # the wall time): the handler's threads, the backends.
            "runq_us_per_event": sched.wait / n * 1e6,
            "pg_runq_us_per_event": (
                sum(p1[k] - p0[k] for k in p0.keys() & p1.keys() if k < 0) / n * 1e6
                if p0 is not None and p1 is not None
                else float("nan")
            ),
            "lat": lat,
            "per_event": {
                "statements": round(counts["statements"] / n, 3),
                "executemany_rows": round(counts["executemany_rows"] / n, 3),
                "copy_rows": {
                    k.split(":", 1)[1]: round(v / n, 2)
                    for k, v in sorted(counts.items())
                    if k.startswith("bulk_rows:")
                },
                # Rows PostgreSQL wrote (staging tables are temporary: not
                # in pg_stat_user_tables).
                "table_rows": {
                    t: {
                        k: round((v - before.get(t, {}).get(k, 0)) / n, 2)
                        for k, v in after[t].items()
                        if v - before.get(t, {}).get(k, 0)
                    }
                    for t in sorted(after)
                    if any(v - before.get(t, {}).get(k, 0) for k, v in after[t].items())
                },
            },
        }
        if prof is not None:
            out["profile_top"] = _profile_top(prof, n)
        return out

    intel = Intelligence(may_use=lambda c, p: True)
    # Baseline in the same run: traits only, no segments defined.
    base = run(intel, make_events(events // 4))
    with db.session() as sess:
        for i, rule in enumerate(_rules()[:segments]):
            intel.define_segment(sess, f"s{i:02d}", f"segment {i}", rule)

    def member_count() -> int:
        with db.session() as sess:
            return int(
                sess.execute(sa.select(sa.func.count()).select_from(st.members)).scalar_one()
            )

    results: dict[str, dict[str, Any]] = {}
    for phase in phases:
        sweep_s = 0.0
        if phase == "warm":
            t0, after = time.perf_counter(), ""
            while True:
                with db.session() as sess:
                    after = intel.sweep_segments(sess, after)
                if not after:
                    break
            sweep_s = time.perf_counter() - t0
            settle()
        before = member_count()
        r = run(intel, make_events(events))
        load = os.getloadavg()[0]
        entered = member_count()
        lat = r.pop("lat")
        results[phase] = {
            "customers": customers,
            "segments": segments,
            "events": events,
            "database": "PostgreSQL",
            "events_per_s": round(r["events_per_s"], 1),
            "handler_cpu_us_per_event": round(r["us_per_event"], 1),
            "postgres_cpu_us_per_event": round(r["pg_us_per_event"], 1),
            # Wall time per event beside what the machine's load added to it:
            # time the handler's threads and the backends spent runnable,
            # waiting for a core (/proc schedstat).
            "wall_us_per_event": round(1e6 / r["events_per_s"], 1),
            "handler_runqueue_wait_us_per_event": round(r["runq_us_per_event"], 1),
            "postgres_runqueue_wait_us_per_event": round(r["pg_runq_us_per_event"], 1),
            "baseline_handler_cpu_us_per_event": round(base["us_per_event"], 1),
            "baseline_postgres_cpu_us_per_event": round(base["pg_us_per_event"], 1),
            "load_average_1m": round(load, 2),
            "entered_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1),
            "entered_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
            "memberships_after": entered,
            "customer_load_s": round(load_s, 1),
            **(
                {
                    "customers_cloned_from": template,
                    "customers_loaded_s_ago": round(time.time() - now),
                }
                if loaded_at is not None
                else {}
            ),
            "baseline": f"traits only, no segments: {base['events_per_s']:,.0f} events/s",
            "memberships_before_events": before,
            "segment_entries_per_event": round((entered - before) / events, 2),
            "per_event": r["per_event"],
            "baseline_per_event": base["per_event"],
            **({"profile_top": r["profile_top"]} if "profile_top" in r else {}),
            **({"warm": True, "sweep_s": round(sweep_s, 1)} if phase == "warm" else {}),
            "pipeline_depth": 1 if profile else depth,
            "note": (
                "handler driven directly in 500-event transactions (NATS not measured), "
                f"{1 if profile else depth} in flight (ADR 0260); "
                "latency = batch start to commit; CPU per event: the handler process "
                "(time.process_time) and the PostgreSQL backends of the bench database "
                "(/proc utime+stime); "
                + (
                    "steady state: one sweep over every customer filled the memberships "
                    "before the events, as the periodic sweep keeps them in service; "
                    if phase == "warm"
                    else "cold: the segments were just defined and memberships are empty "
                    "(before the first sweep), so most events enter several segments; "
                )
                + "per_event: statements sent, COPY rows and PostgreSQL row writes "
                "(pg_stat_user_tables) per event; "
                "wall-clock figures depend on the machine's load (load_average_1m), compare CPU"
            ),
        }
    db.engine.dispose()
    with eng.connect() as c:
        c.execute(sa.text(f"drop database {name} with (force)"))
    return results
