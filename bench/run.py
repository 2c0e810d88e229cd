"""`make bench`: run every benchmark, write results and the README table."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

from bench.report import write_readme

# Each benchmark is imported when it runs: benchmarks start client processes
# with multiprocessing's spawn, which re-imports this module, and a child
# carrying Splink, DuckDB and pandas pauses for garbage collection long enough
# to show in a latency percentile (consent's CheckBatch p99: 155 vs 6.6 ms).


BENCHMARKS: tuple[str, ...] = (
    "ingest",
    "identity_accuracy",
    "identity_realtime",
    "identity_households",
    "identity_scale",
    "consent",
    "loyalty",
    "analytics",
    "analytics_clickhouse",
    "personalization",
    "feedback",
    "gateway",
    "intelligence",
)


def run_one(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    result = module.main()
    if name == "ingest":
        print(json.dumps(result, indent=2))


def main() -> None:
    only = set(sys.argv[1:])
    unknown = only - set(BENCHMARKS)
    if unknown:
        sys.exit(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}"
        )
    failed: list[str] = []
    for name in BENCHMARKS:
        if only and name not in only:
            continue
        started = time.monotonic()
        print(f"== bench {name}", flush=True)
        # One benchmark that fails (a timeout, a crash) must not take the
        # others' measurements with it: it is reported and make bench fails
        # at the end, after the README table is written from what was measured.
        try:
            run_one(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(
            f"== bench {name}: {'FAILED' if name in failed else 'done'} in {time.monotonic() - started:.0f} s",
            flush=True,
        )
    write_readme()
    if failed:
        sys.exit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
