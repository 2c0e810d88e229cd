from __future__ import annotations

from cxloop_libs.runtime import run_service
from feedback.bootstrap import bootstrap


def main() -> None:
    run_service(bootstrap)
