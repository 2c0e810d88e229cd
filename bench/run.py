"""`make bench`: run every benchmark, write results and the README table."""

from __future__ import annotations

import json
import sys

from bench.report import write_readme

# Each benchmark is imported when it runs: benchmarks start client processes
# with multiprocessing's spawn, which re-imports this module, and a child
# carrying Splink, DuckDB and pandas pauses for garbage collection long enough
# to show in a latency percentile (consent's CheckBatch p99: 155 vs 6.6 ms).


def main() -> None:
    only = set(sys.argv[1:])
    if not only or "ingest" in only:
        from bench import ingest

        print(json.dumps(ingest.main(), indent=2))
    if not only or "identity_accuracy" in only:
        from bench import identity_accuracy

        identity_accuracy.main()
    if not only or "identity_realtime" in only:
        from bench import identity_realtime

        identity_realtime.main()
    if not only or "identity_households" in only:
        from bench import identity_households

        identity_households.main()
    if not only or "identity_scale" in only:
        from bench import identity_scale

        identity_scale.main()
    if not only or "consent" in only:
        try:
            from bench import consent
        except ImportError:
            pass
        else:
            consent.main()
    if not only or "loyalty" in only:
        from bench import loyalty

        loyalty.main()
    if not only or "analytics" in only:
        from bench import analytics

        analytics.main()
    if not only or "personalization" in only:
        from bench import personalization

        personalization.main()
    if not only or "feedback" in only:
        from bench import feedback

        feedback.main()
    if not only or "gateway" in only:
        from bench import gateway

        gateway.main()
    if not only or "intelligence" in only:
        from bench import intelligence

        intelligence.main()
    write_readme()


if __name__ == "__main__":
    main()
