"""The image: multi-stage from a pinned base, dependencies from a hashed lock
file that covers pyproject.toml, no tests or dev tools inside, a HEALTHCHECK
that really asks the running service."""

from __future__ import annotations

import asyncio
import re
import tomllib

from cxloop_cli.healthcheck import check, running_service
from cxloop_libs.config import ServiceSettings
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_testing import deploy, infra

DOCKER = deploy.REPO / "deploy" / "compose"
DEV_TOOLS = ("pytest", "ruff", "mypy", "testcontainers", "grpcio-tools", "pip-tools")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dockerfile_is_multi_stage_from_a_pinned_base_with_a_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert base and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base.group(1)), (
        "pin a patch release"
    )
    assert "--require-hashes -r /tmp/requirements.lock" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*cxloop_cli\.healthcheck", text, re.M)
    assert re.search(r"^USER 10001$", text, re.M)


def test_no_tests_or_dev_tools_reach_the_image() -> None:
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    for pattern in ("**/tests", "libs/cxloop_testing", "tests", "bench"):
        assert pattern in ignored
    lock = (DOCKER / "requirements.lock").read_text()
    pinned = {_norm(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    assert not pinned & {_norm(t) for t in DEV_TOOLS}


def test_the_lock_file_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((deploy.REPO / "pyproject.toml").read_text())["project"]
    wanted = {_norm(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    lock = (DOCKER / "requirements.lock").read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", lock, re.M
    )
    pinned = {_norm(name) for name, _ in entries}
    missing = wanted - pinned
    assert not missing, f"requirements.lock is stale (make lock): {sorted(missing)}"
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9_.-]+==", lock, re.M)), (
        "every pin has hashes"
    )


def test_healthcheck_finds_the_service_and_asks_it() -> None:
    assert running_service({}, ["python", "-m", "identity"]) == "identity"
    assert running_service({"CXLOOP_SERVICE": "consent"}, ["sh"]) == "consent"

    async def scenario() -> None:
        server = grpc_server_from_settings(
            ServiceSettings(env="test", grpc_port=0, grpc_host="127.0.0.1"), [], []
        )
        port = await server.start()
        try:
            env = {"CXLOOP_GRPC_PORT": str(port)}
            up, detail = await asyncio.to_thread(check, "identity", env)
            assert up, detail
        finally:
            await server.stop(0)
        closed = {"CXLOOP_IDENTITY_GRPC_PORT": str(infra.free_port())}
        up, _ = await asyncio.to_thread(check, "identity", closed)
        assert not up

    asyncio.run(scenario())
