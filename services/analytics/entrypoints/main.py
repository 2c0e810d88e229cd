from __future__ import annotations

from analytics.bootstrap import bootstrap
from analytics.config import GC_YOUNG_THRESHOLD
from cxloop_libs.runtime import collect_young_less_often, run_service


def main() -> None:
    # The process's collector, set here (not in bootstrap, which tests run
    # inside pytest's process): docs/adr/0245.
    collect_young_less_often(GC_YOUNG_THRESHOLD)
    run_service(bootstrap)
