"""CPU per ``Recommend`` in-process: the service layer and the gRPC
response, no transport — the part of a request's cost that is
personalization's own, measurable on a busy machine (process CPU time, not
wall clock). Same catalogue, customers and request mix as the latency part
of ``bench/personalization.py`` (10,000 items, 100,000 customers' histories,
5,000 consented; 50 % consented, 30 % other known, 20 % anonymous; 30 % on a
product page).

    .venv/bin/python -m bench.personalization_cpu            # CPU/request
    CXLOOP_BENCH_PROFILE=1 .venv/bin/python -m bench.personalization_cpu  # + cProfile

Prints JSON: CPU µs per request for a first pass after a model swap (each
customer's first request computes their list unless warmed) and a second
pass over the same requests (cached)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("CXLOOP_BENCH_TREE", Path(__file__).resolve().parent.parent))
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "libs"), str(ROOT / "libs" / "gen")]

import numpy as np  # noqa: E402


def build(
    items: int = 10_000, customers: int = 100_000, per_customer: int = 8, consented: int = 5_000
) -> Any:
    import implicit.cpu.als  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")  # as the service (bootstrap)
    from bench.personalization import synthetic
    from personalization.domain.engine import Engine, EngineConfig
    from personalization.domain.interactions import Interaction, Kind
    from personalization.service_layer import messages as msg
    from personalization.service_layer.service import Personalization

    def may_use(c: str, _purpose: str = "personalization") -> bool:
        return c.startswith("u") and int(c[1:]) < consented

    catalog, rows = synthetic(items, customers, per_customer)
    engine = Engine(
        EngineConfig(korean_tokenizer="bigram", auto_tune=False), may_use=lambda c: may_use(c)
    )
    service = Personalization(engine, may_use=may_use)
    for m in catalog:
        engine.upsert_item(msg.item_from(m))
    for r in rows:
        if not may_use(r["customer_id"]):
            continue
        engine.learn(
            Interaction(
                r["event_id"],
                r["customer_id"],
                r["item_id"],
                Kind(r["kind"]),
                r["weight"],
                r["occurred_at"],
                channel=r["channel"],
            ),
            r["hour"],
            0,
        )
    engine.refresh_content()
    engine.retrain()
    return service


def requests(n: int, customers: int, consented: int, items: int, seed: int = 9) -> list[Any]:
    from cxloop.personalization.v1 import personalization_service_pb2 as pb

    from bench.personalization import request_mix

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        cid, ctx = request_mix(rng, k, consented, customers, items)
        out.append(pb.RecommendRequest(customer_id=cid, placement="home", limit=10, context=ctx))
    return out


def serve_all(service: Any, reqs: list[Any]) -> float:
    """CPU µs per request: the service layer, the served event and the response."""
    from personalization.adapters.grpc_servicer import response_of, served_event

    t0 = time.process_time()
    for req in reqs:
        recs, fallback, served, strategy = service.recommend(req)
        served_event(served, req.customer_id)
        response_of(recs, fallback, served, strategy).SerializeToString()
    return (time.process_time() - t0) * 1e6 / len(reqs)


def main() -> dict[str, Any]:
    t0 = time.perf_counter()
    service = build()
    setup_s = time.perf_counter() - t0
    reqs = requests(10_000, 100_000, 5_000, 10_000)
    engine = service.engine
    warm = getattr(engine, "warm", None)
    warm_s = None
    if warm is not None and os.environ.get("CXLOOP_BENCH_NO_WARM") != "1":
        c0 = time.process_time()
        warm()
        warm_s = round(time.process_time() - c0, 3)
    profile = os.environ.get("CXLOOP_BENCH_PROFILE")
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    first = serve_all(service, reqs)
    second = serve_all(service, reqs)
    if profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
    return {
        "setup_s": round(setup_s, 1),
        "warm_cpu_s": warm_s,
        "first_pass_us_per_request": round(first, 1),
        "second_pass_us_per_request": round(second, 1),
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
