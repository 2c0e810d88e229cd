"""The environment `cxloop up` gives consent: it waits, for a privacy
request, for the participants that run, and an operator's own setting wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxloop_cli.suite import plan_suite, service_env

VAR = "CXLOOP_CONSENT_PRIVACY_PARTICIPANTS"


def consent_env(services: list[str]) -> dict[str, str]:
    plans = plan_suite(Path("d"), services, environ={})
    (consent,) = [p for p in plans if p.name == "consent"]
    return service_env(consent, Path("d"), "nats://127.0.0.1:1", peers=plans)


def test_the_whole_suite_waits_for_every_participant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    env = consent_env(
        ["identity", "consent", "personalization", "loyalty", "analytics", "feedback", "gateway"]
    )
    assert env[VAR] == "consent,identity,gateway,loyalty,analytics,personalization,feedback"


def test_only_the_started_participants_are_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert consent_env(["identity", "consent"])[VAR] == "consent,identity"
    assert consent_env(["consent"])[VAR] == "consent"


def test_an_explicit_setting_is_left_to_the_inherited_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VAR, "consent,identity")
    assert VAR not in consent_env(["identity", "consent", "loyalty"])


def test_other_services_get_no_participant_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    plans = plan_suite(Path("d"), ["identity", "consent"], environ={})
    assert VAR not in service_env(plans[0], Path("d"), "nats://127.0.0.1:1", peers=plans)
