"""Segment's JavaScript SDKs against the real gateway process (issue 10,
"Prove it"): `@segment/analytics-node` in Node, and `@segment/analytics-next`
in Debian's headless Chromium driven by Playwright from a page on another
origin (standard and batching delivery, a 503 followed by the browser's
retries through CORS). The packages are installed by `make sdk-tools` into
.cxloop/tools; without them (or without chromium) the tests skip and say so."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from cxloop_testing.gateway_process import (
    WRITE_KEY,
    RunningGateway,
    nats_paused,
    stored_events,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".cxloop" / "tools" / "node_modules"
HERE = Path(__file__).parent


def node_or_skip(package: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / package / "package.json").exists():
        pytest.skip(f"{package} is not installed: run `make sdk-tools`")
    return node


def stored_ids(gateway: RunningGateway, prefix: str) -> Counter[str]:
    events = asyncio.run(stored_events(gateway.nats.url))
    return Counter(m.message_id for m in events if m.message_id.startswith(prefix))


def run_node(node: str, script: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [node, str(script), *args],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_analytics_node_every_call_type_and_one_bad_event(gateway: RunningGateway) -> None:
    node = node_or_skip("@segment/analytics-node")
    prefix = f"node-{uuid.uuid4().hex[:8]}"
    result = finished(run_node(node, HERE / "sdk_node.cjs", gateway.url, WRITE_KEY, prefix))
    assert result["errors"] == []
    got = stored_ids(gateway, prefix)
    expected = {f"{prefix}-{x}" for x in ("identify", "track", "page", "screen", "group", "alias")}
    expected |= {f"{prefix}-t{i}" for i in range(10)}
    assert set(got) == expected
    assert all(n == 1 for n in got.values())


def test_analytics_node_retries_a_503_and_stores_once(gateway: RunningGateway) -> None:
    node = node_or_skip("@segment/analytics-node")
    prefix = f"node-stall-{uuid.uuid4().hex[:8]}"
    before = gateway.logs().count("events not stored")
    with nats_paused(gateway.nats):
        proc = run_node(node, HERE / "sdk_node.cjs", gateway.url, WRITE_KEY, prefix, "stall")
        deadline = time.monotonic() + 30
        while gateway.logs().count("events not stored") == before:
            assert time.monotonic() < deadline, "the gateway never answered 503"
            time.sleep(0.1)
    result = finished(proc)
    assert result["errors"] == []
    assert stored_ids(gateway, prefix) == {f"{prefix}-{i}": 1 for i in range(3)}
