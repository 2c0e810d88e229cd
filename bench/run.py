"""`make bench`: run every benchmark, write results and the README table."""

from __future__ import annotations

import json
import sys

from bench import ingest
from bench.report import write_readme


def main() -> None:
    only = set(sys.argv[1:])
    if not only or "ingest" in only:
        print(json.dumps(ingest.main(), indent=2))
    write_readme()


if __name__ == "__main__":
    main()
