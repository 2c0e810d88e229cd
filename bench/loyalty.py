"""Loyalty ledger benchmarks (issue #11), loyalty running as its own process
on PostgreSQL and its own nats-server:

* accrual: purchase events through the `interaction resolved` consumer,
  postings/s, beside a raw batched-insert (COPY, 500 rows a transaction)
  baseline into the same database in the same run;
* exactness under faults: purchases and partial/full returns published
  while the loyalty process is SIGKILLed at random points (>= 5 times), NATS
  is restarted once and the consumer's durable is deleted (so the whole log
  is redelivered); afterwards every member's points are compared with an
  independent computation from the event log (lost / doubled counts);
* the same with two loyalty processes consuming the one durable at once
  (replicas), each killed in turn;
* Redeem latency at a paced 200 requests/s, all on one member, up to 50 in
  flight, and whether the member was ever overspent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import psycopg
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as ipb

from bench.common import RESULTS, percentile, write_result
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_testing import infra

NAME = "loyalty"
# Base points only (no tier multipliers), so the expected balance of each
# member follows from the event log alone, whatever order events are applied in.
RULES = {
    "return_window_days": 14,
    "return_policy": "within_balance",
    "tiers": [{"id": "member", "min_score": 0}],
    "rules": [{"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}}],
}


@dataclass(frozen=True)
class Ev:
    event_id: str
    customer: str
    name: str
    order_id: str
    amount: int | None  # KRW; None for a full return


def make_log(purchases: int, customers: int, seed: int) -> list[Ev]:
    rng = random.Random(seed)
    log: list[Ev] = []
    for i in range(purchases):
        cid = f"b{rng.randrange(customers)}"
        total = rng.randrange(1000, 500_000, 10)
        oid = f"o{seed}-{i}"
        log.append(Ev(str(uuid.uuid4()), cid, "Order Completed", oid, total))
        r = rng.random()
        if r < 0.15:
            log.append(Ev(str(uuid.uuid4()), cid, "Order Refunded", oid, None))
        elif r < 0.35:
            part = rng.randrange(10, total, 10)
            log.append(Ev(str(uuid.uuid4()), cid, "Order Refunded", oid, part))
            if rng.random() < 0.5:
                log.append(
                    Ev(str(uuid.uuid4()), cid, "Order Refunded", oid, rng.randrange(10, total, 10))
                )
    return log


def purchases_for(events: int, seed: int) -> int:
    """The fewest purchases whose log (with its returns) has at least ``events``
    events: about 1.45 events a purchase."""
    n = max(events * 100 // 146, 1)
    while len(make_log(n, max(n // 5, 1), seed)) < events:
        n += max((events - len(make_log(n, max(n // 5, 1), seed))) * 100 // 146, 1)
    return n


def expected_points(log: list[Ev]) -> dict[str, int]:
    """Independently of the service: 1 point per 100 won, floored per order;
    a return takes back round-half-up(points x refunded / total) of the
    cumulative refunded amount (capped at the total)."""
    orders: dict[str, tuple[str, int]] = {}
    refunded: dict[str, int] = {}
    for e in log:
        if e.name == "Order Completed":
            orders[e.order_id] = (e.customer, e.amount or 0)
        else:
            prev = refunded.get(e.order_id, 0)
            refunded[e.order_id] = -1 if prev < 0 or e.amount is None else prev + e.amount
    out: dict[str, int] = {}
    for oid, (cid, total) in orders.items():
        earned = total // 100
        cum = refunded.get(oid, 0)
        cum = total if cum < 0 else min(cum, total)
        back = min(earned, (2 * earned * cum + total) // (2 * total))
        out[cid] = out.get(cid, 0) + earned - back
    return out


def pending_event(e: Ev) -> PendingEvent:
    it = gw.InteractionRecorded(
        message_id=e.event_id, kind=gw.INTERACTION_KIND_TRACK, name=e.name, channel="web"
    )
    props: dict[str, Any] = {"order_id": e.order_id, "currency": "KRW"}
    if e.amount is not None:
        props["total"] = e.amount
    it.properties.update(props)
    it.occurred_at.FromDatetime(datetime.now(UTC))
    return PendingEvent.of(
        ev.INTERACTION_RESOLVED,
        ipb.InteractionResolved(customer_id=e.customer, interaction=it),
        subject=e.customer,
        event_id=e.event_id,
    )


async def publish(nats_url: str, events: list[Ev]) -> None:
    bus = NatsBus(nats_url, name="bench-identity", streams=[stream_for("identity")])
    await bus.connect(timeout=20)
    try:
        pub = EventPublisher(bus, source="/cxloop/identity")
        for i in range(0, len(events), 1000):
            chunk = [pending_event(e) for e in events[i : i + 1000]]
            for attempt in range(20):
                res = await pub.publish_many(chunk)
                failed = [
                    c for c, r in zip(chunk, res, strict=True) if isinstance(r, BaseException)
                ]
                if not failed:
                    break
                chunk = failed  # Nats-Msg-Id makes a resend safe
                await asyncio.sleep(0.5 * (attempt + 1))
    finally:
        await bus.close()


class Nats:
    """A nats-server with a fixed store, so a restart keeps the streams."""

    def __init__(self) -> None:
        self.port = infra.free_port()
        self.store = tempfile.mkdtemp(prefix="cxloop-bench-nats-")
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                infra.nats_server_binary(),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                self.store,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not infra.port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)


class Loyalty:
    def __init__(
        self,
        nats_url: str,
        database_url: str,
        log_dir: str,
        name: str = "loyalty",
        rules: dict[str, Any] | None = RULES,
    ) -> None:
        self.grpc_port = infra.free_port()
        self.env = {
            **os.environ,
            "CXLOOP_ENV": "development",
            "CXLOOP_NATS_URL": nats_url,
            "CXLOOP_LOYALTY_DATABASE_URL": database_url,
            "CXLOOP_LOYALTY_GRPC_PORT": str(self.grpc_port),
            "CXLOOP_LOYALTY_METRICS_PORT": "0",
            "CXLOOP_LOYALTY_RULES": json.dumps(rules) if rules else "",
            "CXLOOP_LOG_LEVEL": "WARNING",
            # As deployed on PostgreSQL: the outbox relay in a child process.
            "CXLOOP_OUTBOX_RELAY": "process",
        }
        self.log = open(os.path.join(log_dir, f"{name}.log"), "ab")
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loyalty"], env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while not infra.port_open("127.0.0.1", self.grpc_port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("loyalty did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    admin = infra.postgres_admin_url()
    if admin is None:
        raise RuntimeError("the loyalty benchmark needs PostgreSQL")
    with infra.fresh_postgres_database(admin) as url:
        yield url


def _pg(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def count(url: str, sql: str) -> int:
    try:
        with _pg(url) as c:
            row = c.execute(sql).fetchone()
            return int(row[0]) if row else 0
    except psycopg.errors.UndefinedTable:
        return 0


def member_points(url: str) -> dict[str, int]:
    with _pg(url) as c:
        rows = c.execute(
            "SELECT owner, SUM(amount) FROM loyalty_leg WHERE owner <> 'programme' "
            "AND book IN ('available','pending','reserved') GROUP BY owner"
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def books_balance(url: str) -> int:
    return count(url, "SELECT COALESCE(SUM(amount), 0) FROM loyalty_leg")


def wait_for(url: str, sql: str, target: int, timeout: float) -> float:
    start = time.monotonic()
    while count(url, sql) < target:
        if time.monotonic() - start > timeout:
            raise RuntimeError(
                f"timed out waiting for {sql} to reach {target} (at {count(url, sql)})"
            )
        time.sleep(0.2)
    return time.monotonic() - start


INBOX = "SELECT COUNT(*) FROM inbox_event WHERE consumer = 'loyalty-interactions'"

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of a process and its descendants (the outbox relay child)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parents[int(name)], cpu[int(name)] = st
    keep = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                grew = True
    return {p: cpu[p] for p in keep if p in cpu}


def backends_cpu(url: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving the database (same host)."""
    with _pg(url) as c:
        pids = [
            int(r[0])
            for r in c.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchall()
        ]
    out: dict[int, float] = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(p, 0.0) for p, v in after.items())


# -- accrual ------------------------------------------------------------------------------
def accrual(n: int) -> dict[str, Any]:
    nats_srv = Nats()
    nats_srv.start()
    logs = tempfile.mkdtemp(prefix="cxloop-bench-loyalty-")
    try:
        with database() as url:
            rng = random.Random(1)
            log = [
                Ev(
                    str(uuid.uuid4()),
                    f"a{rng.randrange(n // 4)}",
                    "Order Completed",
                    f"acc-{i}",
                    rng.randrange(1000, 300_000, 10),
                )
                for i in range(n)
            ]
            asyncio.run(publish(nats_srv.url, log))
            # The default rule set (tiers and their multipliers included).
            svc = Loyalty(nats_srv.url, url, logs, rules=None)
            svc.start()
            try:
                wait_for(url, "SELECT COUNT(*) FROM loyalty_posting", 1, 120)
                assert svc.proc is not None
                t0 = time.monotonic()
                cpu0, pg0 = tree_cpu(svc.proc.pid), backends_cpu(url)
                first = count(url, "SELECT COUNT(*) FROM loyalty_posting")
                wait_for(url, "SELECT COUNT(*) FROM loyalty_posting", n, 600)
                elapsed = time.monotonic() - t0
                # The outbox relay is still publishing the last events: CPU up
                # to the end of accrual only, like the rate.
                cpu1, pg1 = tree_cpu(svc.proc.pid), backends_cpu(url)
            finally:
                svc.stop()
            rate = (n - first) / elapsed
            done = n - first
            baseline = raw_insert_baseline(url, n)
            return {
                "purchase_events": n,
                "postings_per_s": round(rate, 1),
                # Process CPU per posting (robust to other load on the machine):
                # the loyalty process with its outbox-relay child, and the
                # PostgreSQL backends serving its database.
                "loyalty_cpu_us_per_posting": round(_spent(cpu0, cpu1) / done * 1e6, 1),
                "postgres_cpu_us_per_posting": round(_spent(pg0, pg1) / done * 1e6, 1),
                "wall_seconds": round(elapsed, 1),
                "raw_copy_rows_per_s": round(baseline, 1),
                "share_of_raw": round(rate / baseline, 4),
                "target_postings_per_s": 3000,
                "target_met": rate >= 3000,
                "books_sum": books_balance(url),
            }
    finally:
        nats_srv.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


def raw_insert_baseline(url: str, n: int) -> float:
    """Posting-shaped rows straight into PostgreSQL: COPY, 500 a transaction."""
    with _pg(url) as c:
        c.execute("CREATE TABLE raw_posting (LIKE loyalty_posting INCLUDING DEFAULTS)")
        c.execute("ALTER TABLE raw_posting ALTER COLUMN seq DROP NOT NULL")
    cols = (
        "posting_id",
        "customer_id",
        "kind",
        "available",
        "pending",
        "idempotency_key",
        "occurred_at",
    )
    now = datetime.now(UTC)
    rows = [
        (str(uuid.uuid4()), f"a{i % 1000}", "pending", 0, 100, f"raw:{i}", now) for i in range(n)
    ]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        t0 = time.monotonic()
        for i in range(0, n, 500):
            with (
                c.cursor() as cur,
                cur.copy(f"COPY raw_posting ({', '.join(cols)}) FROM STDIN") as cp,
            ):
                for r in rows[i : i + 500]:
                    cp.write_row(r)
            c.commit()
        return n / (time.monotonic() - t0)


# -- exactness under faults ----------------------------------------------------------------
def ledger_problems(url: str) -> list[str]:
    """The service's own invariants (legs sum to 0, every posting balances,
    account rows = legs per book, lots = balances), checked on the database."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from loyalty.service_layer.schedule import check_books

    engine = sa.create_engine(url)
    try:
        with Session(engine) as s:
            problems: list[str] = check_books(s)
            return problems
    finally:
        engine.dispose()


def exactness(
    purchases: int,
    replicas: int,
    *,
    restart_nats: bool,
    spread_kills: int = 6,
    seed: int = 7,
) -> dict[str, Any]:
    """The log is published in four chunks while loyalty runs, one SIGKILL
    (after a random 0.3-2 s) after each chunk. Consumption lags publishing,
    so the rest is a plan over the processing — the share of distinct events
    done: ``spread_kills`` SIGKILLs at uniform random points of 3-97 %, the
    NATS restart at a random point of 15-45 %, the durable's deletion at
    45-75 % (every process restarted, the whole log delivered again) and one
    more SIGKILL a random 1-8 s later, while events already processed are
    being redelivered. ``kill_progress`` records the share done at each kill."""
    nats_srv = Nats()
    nats_srv.start()
    logs = tempfile.mkdtemp(prefix="cxloop-bench-loyalty-")
    rng = random.Random(seed)
    try:
        with database() as url:
            log = make_log(purchases, max(purchases // 5, 1), seed)
            unique = len({e.event_id for e in log})
            procs = [Loyalty(nats_srv.url, url, logs, f"loyalty-{i}") for i in range(replicas)]
            for p in procs:
                p.start()
            chunks = [log[i : i + len(log) // 4 + 1] for i in range(0, len(log), len(log) // 4 + 1)]
            kills = 0
            progress: list[float] = []
            timeout = max(900.0, unique * 0.05)

            def done() -> float:
                return round(count(url, INBOX) / unique, 4)

            def kill(victim: Loyalty, restart_after: float = 0.5) -> None:
                nonlocal kills
                progress.append(done())
                victim.kill()
                kills += 1
                time.sleep(rng.uniform(0.0, restart_after))
                victim.start()

            for chunk in chunks:
                asyncio.run(publish(nats_srv.url, chunk))
                time.sleep(rng.uniform(0.3, 2.0))
                kill(procs[kills % replicas])
            published_at = time.monotonic()
            plan = [(rng.uniform(0.03, 0.97), "kill") for _ in range(spread_kills)]
            if restart_nats:
                plan.append((rng.uniform(0.15, 0.45), "nats"))
            plan.append((rng.uniform(0.45, 0.75), "durable"))
            nats_at: float | None = None
            durable_at: float | None = None
            for at, what in sorted(plan):
                with contextlib.suppress(RuntimeError):  # drained early: go on
                    wait_for(url, INBOX, int(at * unique), timeout)
                if what == "kill":
                    kill(procs[kills % replicas])
                elif what == "nats":
                    nats_at = done()
                    nats_srv.stop()
                    time.sleep(1.0)
                    nats_srv.start()
                else:
                    # The whole log again: the next subscribe re-creates the
                    # durable from the stream's start, every event redelivered.
                    durable_at = done()
                    asyncio.run(_delete_durable(nats_srv.url))
                    for p in procs:
                        kill(p, restart_after=0.0)
                    time.sleep(rng.uniform(1.0, 8.0))  # into the redelivery
                    kill(procs[kills % replicas])
            wait_for(url, INBOX, unique, max(900.0, unique * 0.05))
            elapsed = time.monotonic() - published_at
            time.sleep(1.0)
            for p in procs:
                p.stop()
            want = expected_points(log)
            got = member_points(url)
            everyone = set(want) | set(got)
            lost = sum(max(want.get(c, 0) - got.get(c, 0), 0) for c in everyone)
            doubled = sum(max(got.get(c, 0) - want.get(c, 0), 0) for c in everyone)
            wrong = sum(1 for c in everyone if want.get(c, 0) != got.get(c, 0))
            problems = ledger_problems(url)
            books = books_balance(url)
            return {
                "events": len(log),
                "purchases": purchases,
                "returns": len(log) - purchases,
                "members": len(want),
                "replicas": replicas,
                "sigkills": kills,
                "kill_progress": progress,
                "nats_restarts": 0 if nats_at is None else 1,
                "nats_restart_progress": nats_at,
                "durable_deleted_and_log_replayed": durable_at is not None,
                "durable_deleted_progress": durable_at,
                "events_processed": count(url, INBOX),
                "balances_compared": len(everyone),
                "members_wrong": wrong,
                "points_lost": lost,
                "points_doubled": doubled,
                "expected_total_points": sum(want.values()),
                "ledger_total_points": sum(got.values()),
                "books_sum": books,
                "ledger_invariant_problems": len(problems),
                "ledger_invariant_examples": problems[:5],
                "duplicate_postings": count(
                    url, "SELECT COUNT(*) - COUNT(DISTINCT idempotency_key) FROM loyalty_posting"
                ),
                "seconds_to_drain_after_last_publish": round(elapsed, 1),
                "exact": wrong == 0 and books == 0 and not problems,
            }
    finally:
        nats_srv.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


async def _delete_durable(nats_url: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_consumer("IDENTITY", "loyalty-interactions")
    finally:
        await nc.close()


# -- Redeem latency ------------------------------------------------------------------------------
def redeem_latency(rate: int = 200, seconds: float = 10.0, in_flight: int = 50) -> dict[str, Any]:
    nats_srv = Nats()
    nats_srv.start()
    logs = tempfile.mkdtemp(prefix="cxloop-bench-loyalty-")
    try:
        with database() as url:
            svc = Loyalty(nats_srv.url, url, logs)
            svc.start()
            try:
                return asyncio.run(
                    _redeem_run(f"127.0.0.1:{svc.grpc_port}", rate, seconds, in_flight, url)
                )
            finally:
                svc.stop()
    finally:
        nats_srv.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


async def _redeem_run(
    target: str, rate: int, seconds: float, in_flight: int, url: str
) -> dict[str, Any]:
    from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
    from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    total = int(rate * seconds)
    each = 10
    # Enough for 60 % of the requests: the rest must be refused, never overspent.
    balance = total * each * 6 // 10
    async with grpc.aio.insecure_channel(target) as ch:
        stub = pb_grpc.LoyaltyServiceStub(ch)
        when = Timestamp()
        when.FromDatetime(datetime(2020, 1, 1, tzinfo=UTC))
        for _ in range(100):
            try:
                await stub.PostPurchase(
                    pb.PostPurchaseRequest(
                        customer_id="hot",
                        order_id="hot-1",
                        currency_code="KRW",
                        idempotency_key="hot-1",
                        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=balance * 100)],
                        purchased_at=when,
                    ),
                    timeout=5,
                )
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)  # rules not loaded yet
        # Warm up the channel and the server's pools.
        for i in range(20):
            with contextlib.suppress(grpc.aio.AioRpcError):
                r = await stub.Redeem(
                    pb.RedeemRequest(customer_id="hot", points=1, idempotency_key=f"w{i}"),
                    timeout=5,
                )
                await stub.CancelRedemption(
                    pb.CancelRedemptionRequest(redemption_id=r.redemption_id), timeout=5
                )
        sem = asyncio.Semaphore(in_flight)
        lat: list[float] = []
        ok = refused = errors = 0
        peak = 0
        active = 0

        async def one(i: int) -> None:
            nonlocal ok, refused, errors, peak, active
            async with sem:
                active += 1
                peak = max(peak, active)
                t0 = time.perf_counter()
                try:
                    await stub.Redeem(
                        pb.RedeemRequest(customer_id="hot", points=each, idempotency_key=f"r{i}"),
                        timeout=10,
                    )
                    ok += 1
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        refused += 1
                    else:
                        errors += 1
                lat.append((time.perf_counter() - t0) * 1000)
                active -= 1

        tasks = []
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
        # 50 at once, all on the one member.
        burst = await asyncio.gather(
            *(
                stub.Redeem(
                    pb.RedeemRequest(customer_id="hot", points=each, idempotency_key=f"b{i}"),
                    timeout=10,
                )
                for i in range(in_flight)
            ),
            return_exceptions=True,
        )
        burst_ok = sum(1 for b in burst if not isinstance(b, BaseException))
        acct = await stub.GetAccount(pb.GetAccountRequest(customer_id="hot"), timeout=5)
    spent = (ok + burst_ok) * each
    return {
        "requests": total,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(total / wall, 1),
        "max_in_flight": peak,
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(max(lat), 2),
        "target_p99_ms": 20,
        "target_met": percentile(lat, 99) <= 20,
        "succeeded": ok,
        "refused_balance_too_low": refused,
        "errors": errors,
        "burst_of_50_succeeded": burst_ok,
        "balance_before": balance,
        "reserved_after": acct.reserved_points,
        "available_after": acct.available_points,
        "overspent": spent > balance
        or acct.available_points < 0
        or acct.available_points + acct.reserved_points != balance,
        "books_sum": books_balance(url),
    }


PARTS = ("accrual", "faults", "replicas", "redeem")
# The issue's exactness runs: "replay 100,000 purchase and return events".
ISSUE_SIZE_EVENTS = 100_000
ISSUE_SIZE_KEY = "exactness_at_issue_size"


def main(scale: float = 1.0) -> dict[str, Any]:
    """Accrual at the issue's scale (100,000 purchases). The exactness runs
    default to 12,000 and 8,000 purchases (~17,500 and ~11,700 events with
    their returns), so ``make bench`` stays short;
    ``CXLOOP_BENCH_LOYALTY_FAULT_EVENTS=100000`` sizes each exactness run to
    at least that many events, the issue's size (with
    ``CXLOOP_BENCH_LOYALTY_PARTS=faults,replicas`` to run only those two; the
    figures are counts, so a busy machine changes only how long it takes).
    ``CXLOOP_BENCH_LOYALTY_FAULT_PURCHASES`` sets the purchases instead.
    Runs of >= 100,000 events go to ``exactness_at_issue_size`` and stay
    there through later (smaller, or other parts') runs.

    ``CXLOOP_BENCH_LOYALTY_SCALE`` scales every count (0.2: a fifth);
    ``CXLOOP_BENCH_LOYALTY_PARTS`` runs only some parts (comma separated, of
    accrual, faults, replicas, redeem), the others kept from the last
    results file with their own ``measured_at``."""
    scale = float(os.environ.get("CXLOOP_BENCH_LOYALTY_SCALE", scale))
    events_env = os.environ.get("CXLOOP_BENCH_LOYALTY_FAULT_EVENTS")
    fault_env = os.environ.get("CXLOOP_BENCH_LOYALTY_FAULT_PURCHASES")
    if events_env:
        faults_n = purchases_for(int(events_env), 7)
        replicas_n = purchases_for(int(events_env), 11)
    else:
        faults_n = int(int(fault_env) if fault_env else 12_000 * scale)
        replicas_n = int(int(fault_env) if fault_env else 8_000 * scale)
    wanted = [
        p.strip() for p in os.environ.get("CXLOOP_BENCH_LOYALTY_PARTS", ",".join(PARTS)).split(",")
    ]
    unknown = set(wanted) - set(PARTS)
    if unknown:
        raise SystemExit(f"CXLOOP_BENCH_LOYALTY_PARTS: unknown {sorted(unknown)}; known {PARTS}")
    path = RESULTS / f"{NAME}.json"
    last: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    previous = last if set(wanted) != set(PARTS) else {}
    load = os.getloadavg()
    result: dict[str, Any] = {
        "note": (
            "loyalty as its own process on PostgreSQL and its own nats-server, the "
            "benchmark client in another process; load_average_at_start says how busy "
            "the machine was (2 cores)."
        ),
        "load_average_at_start": [round(x, 2) for x in load],
    }
    runs = {
        "accrual": ("accrual", lambda: accrual(int(100_000 * scale))),
        "faults": (
            "exactness_under_faults",
            lambda: exactness(faults_n, 1, restart_nats=True),
        ),
        "replicas": (
            "exactness_two_replicas",
            lambda: exactness(replicas_n, 2, restart_nats=True, seed=11),
        ),
        "redeem": ("redeem", redeem_latency),
    }
    if previous:
        # Only some parts: the rest of the last results stays as it was (its
        # notes and any figures added beside the parts).
        result = {k: v for k, v in previous.items() if k not in ("machine", "measured_at")}
    # Exactness at the issue's size (>= 100,000 events) is kept apart, and
    # kept by every later run (make bench's full run included) until measured
    # again at that size: the default parts are make bench's smaller runs.
    at_issue_size: dict[str, Any] = dict(last.get(ISSUE_SIZE_KEY) or {})
    now = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # noqa: E731
    for part in PARTS:
        key, run = runs[part]
        if part in wanted:
            at_start = [round(x, 2) for x in os.getloadavg()]
            got = {**run(), "load_average_at_start": at_start, "measured_at": now()}
            if key.startswith("exactness") and got["events"] >= ISSUE_SIZE_EVENTS:
                at_issue_size[key] = got
                if key in previous:
                    result[key] = {"measured_at": previous.get("measured_at"), **previous[key]}
            else:
                result[key] = got
        elif key in previous:
            result[key] = {"measured_at": previous.get("measured_at"), **previous[key]}
    if at_issue_size:
        result[ISSUE_SIZE_KEY] = at_issue_size
    write_result(NAME, result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0), indent=2))


def loyalty_rows() -> list[str]:
    """bench/README.md rows from bench/results/loyalty.json."""
    r = json.loads((RESULTS / f"{NAME}.json").read_text())
    big = r.get(ISSUE_SIZE_KEY) or {}
    a, d = r["accrual"], r["redeem"]
    f = big.get("exactness_under_faults") or r["exactness_under_faults"]
    t = big.get("exactness_two_replicas") or r["exactness_two_replicas"]
    cpu = (
        f" (CPU per posting: loyalty {a['loyalty_cpu_us_per_posting']:,.0f} µs,"
        f" PostgreSQL {a['postgres_cpu_us_per_posting']:,.0f} µs; load {r['load_average_at_start'][0]})"
        if "loyalty_cpu_us_per_posting" in a
        else ""
    )
    before = r.get("accrual_quiet_machine_before_adr_0120")
    if before:
        cpu += f"; {before['postings_per_s']:,.0f}/s quiet, before ADR 0120"
    return [
        f"| loyalty | accrual postings/s (PostgreSQL, {a['purchase_events']:,} purchases) | {a['postings_per_s']:,.0f}/s{cpu} | ≥ 3,000 | raw COPY {a['raw_copy_rows_per_s']:,.0f} rows/s |",
        f"| loyalty | exact under {f['sigkills']} SIGKILLs, {f['nats_restarts']} NATS restart, log replayed ({f['events']:,} events) | {f['members_wrong']} wrong, {f['points_lost']} lost, {f['points_doubled']} doubled | 0 / 0 / 0 | — |",
        f"| loyalty | exact with 2 replicas, {t['sigkills']} SIGKILLs, {t['nats_restarts']} NATS restart, log replayed ({t['events']:,} events) | {t['members_wrong']} wrong, {t['points_lost']} lost, {t['points_doubled']} doubled | 0 / 0 / 0 | — |",
        f"| loyalty | Redeem p50 / p99, one member, {d['target_rate_per_s']} req/s offered, ≤ {d['max_in_flight']} in flight | {d['p50_ms']} / {d['p99_ms']} ms (achieved {d['achieved_rate_per_s']}/s); overspent: {d['overspent']} | p99 ≤ 20 ms | — |",
    ]
