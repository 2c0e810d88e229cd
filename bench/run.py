"""`make bench`: run every benchmark, write results and the README table."""

from __future__ import annotations

import json
import sys

from bench import identity_accuracy, identity_realtime, identity_scale, ingest
from bench.report import write_readme


def main() -> None:
    only = set(sys.argv[1:])
    if not only or "ingest" in only:
        print(json.dumps(ingest.main(), indent=2))
    if not only or "identity_accuracy" in only:
        identity_accuracy.main()
    if not only or "identity_realtime" in only:
        identity_realtime.main()
    if not only or "identity_scale" in only:
        identity_scale.main()
    if not only or "consent" in only:
        try:
            from bench import consent
        except ImportError:
            pass
        else:
            consent.main()
    write_readme()


if __name__ == "__main__":
    main()
