"""Consent waits, for every erasure, for exactly the services that answer
privacy requests: the services whose code joins a privacy participant are the
ones named in CXLOOP_CONSENT_PRIVACY_PARTICIPANTS by docker compose, every
Kubernetes overlay and `cxloop up` (personalization and feedback join the list
when their code starts answering)."""

from __future__ import annotations

import re

import pytest

from cxloop_cli.suite import PRIVACY_PARTICIPANTS
from cxloop_libs.config import SERVICE_ORDER
from cxloop_testing import deploy

VAR = "CXLOOP_CONSENT_PRIVACY_PARTICIPANTS"
JOINS = re.compile(r"\bjoin_privacy_requests\(|\bPrivacyParticipant\(")


def answering_services() -> set[str]:
    found = set()
    for service in SERVICE_ORDER:
        root = deploy.REPO / "services" / service
        for path in root.rglob("*.py"):
            if "tests" not in path.relative_to(root).parts and JOINS.search(path.read_text()):
                found.add(service)
                break
    return found


def named(value: str) -> set[str]:
    return {n.strip() for n in value.split(",") if n.strip()}


def test_cxloop_up_knows_every_answering_service() -> None:
    answering = answering_services()
    assert {"consent", "identity", "gateway"} <= answering
    assert set(PRIVACY_PARTICIPANTS) == answering


def test_compose_names_every_answering_service() -> None:
    env = deploy.compose_service_env({k: "x" for k in deploy.env_example_keys()})
    assert named(env["consent"].get(VAR, "")) == answering_services()
    assert answering_services() <= set(env), "a participant compose does not run"


@pytest.mark.parametrize("overlay", [p.name for p in deploy.overlays()])
def test_every_overlay_names_every_answering_service(overlay: str) -> None:
    docs = deploy.kustomize(deploy.K8S_OVERLAYS / overlay)
    secrets = {k: "x" for k in deploy.env_example_keys()}
    env = deploy.k8s_service_env(
        docs, secrets | {f"CXLOOP_{s.upper()}_DATABASE_URL": "x" for s in SERVICE_ORDER}
    )
    assert named(env["consent"].get(VAR, "")) == answering_services(), overlay
    assert answering_services() <= set(env), f"{overlay}: a participant is not deployed"
