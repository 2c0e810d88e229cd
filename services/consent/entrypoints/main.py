from __future__ import annotations

from consent.bootstrap import bootstrap
from cxloop_libs.runtime import run_service


def main() -> None:
    run_service(bootstrap)
