from __future__ import annotations

from cxloop_libs.runtime import run_service
from loyalty.bootstrap import bootstrap


def main() -> None:
    run_service(bootstrap)
