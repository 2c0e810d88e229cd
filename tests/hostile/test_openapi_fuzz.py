"""Schemathesis against the real gateway (issue 10 item 10): every phase,
every check (request and response conformance, negative data rejected,
no 5xx). `make test` runs a small budget, `make fuzz` a large one
(CXLOOP_FUZZ_MAX_EXAMPLES)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxloop_testing.gateway_process import WRITE_KEY, RunningGateway

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("CXLOOP_FUZZ_MAX_EXAMPLES", "5"))


@pytest.mark.timeout(int(os.environ.get("CXLOOP_FUZZ_TIMEOUT_S", "300")))
def test_schemathesis_finds_nothing(gateway: RunningGateway, tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    r = subprocess.run(
        [
            str(cli),
            "run",
            f"{gateway.url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--auth",
            f"{WRITE_KEY}:",
            "--workers",
            "1",
            "--suppress-health-check",
            "all",
            # The ingest API only: the privacy, loyalty, feedback,
            # recommendation and console routes take other credentials (the
            # console an API key) and answer 503 here (their services are not
            # running); fuzzing the whole API with keys against the whole
            # suite is issue #17's.
            "--exclude-path-regex",
            "^/v1/(privacy|loyalty|feedback|recommendations|items|me|customers|console)",
            "--seed",
            os.environ.get("CXLOOP_FUZZ_SEED", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert r.returncode == 0, r.stdout[-20_000:] + r.stderr[-5_000:]
    assert gateway.healthy()
