from __future__ import annotations

from analytics.bootstrap import bootstrap
from cxloop_libs.runtime import run_service


def main() -> None:
    run_service(bootstrap)
