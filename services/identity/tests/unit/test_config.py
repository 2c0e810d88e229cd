"""Merge protection settings come from CXLOOP_IDENTITY_* and become one
MergePolicy; a bad value stops the process naming the variable."""

from __future__ import annotations

import pytest

from cxloop_libs.config import ConfigError
from identity.config import IdentitySettings
from identity.domain.policy import DEFAULT_POLICY

DEV = {"CXLOOP_ENV": "development"}


def test_defaults_are_the_documented_policy() -> None:
    assert IdentitySettings.from_env(DEV).merge_policy() == DEFAULT_POLICY


def test_limits_threshold_and_priority_from_the_environment() -> None:
    policy = IdentitySettings.from_env(
        {
            **DEV,
            "CXLOOP_IDENTITY_MAX_EMAILS_PER_CUSTOMER": "2",
            "CXLOOP_IDENTITY_MAX_USER_IDS_PER_CUSTOMER": "0",
            "CXLOOP_IDENTITY_MAX_LOYALTY_CARDS_PER_CUSTOMER": "1",
            "CXLOOP_IDENTITY_SHARED_DEVICE_MAX_USER_IDS": "0",
            "CXLOOP_IDENTITY_IDENTIFIER_PRIORITY": "loyalty_card, user_id,email",
        }
    ).merge_policy()
    assert policy.limits == {"email": 2, "phone": 5, "loyalty_card": 1}
    assert policy.shared_device_max_user_ids is None
    assert policy.priority == ("loyalty_card", "user_id", "email")
    assert policy.rank("phone") == 3  # unlisted types rank last


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CXLOOP_IDENTITY_IDENTIFIER_PRIORITY", "user_id,fax"),
        ("CXLOOP_IDENTITY_IDENTIFIER_PRIORITY", "email,email"),
        ("CXLOOP_IDENTITY_MAX_PHONES_PER_CUSTOMER", "-1"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        IdentitySettings.from_env({**DEV, var: value})
    field = var.removeprefix("CXLOOP_IDENTITY_")
    assert f"CXLOOP_{field}" in str(err.value)


def test_blocked_identifiers_are_normalised_and_hashed() -> None:
    from cxloop_libs.pii import IdentifierHasher, IdType

    hasher = IdentifierHasher(b"k" * 32)
    settings = IdentitySettings.from_env(
        {
            **DEV,
            "CXLOOP_IDENTITY_BLOCKED_IDENTIFIERS": (
                "phone:02-555-0100, email:Front@Shop.kr,external:pos:walk-in"
            ),
        }
    )
    policy = settings.merge_policy(hasher)
    assert policy.ignored_hashes == {
        hasher.hash(IdType.PHONE, "+8225550100"),
        hasher.hash(IdType.EMAIL, "front@shop.kr"),
        hasher.hash(IdType.EXTERNAL, "walk-in", "pos"),
    }
    assert settings.merge_policy().ignored_hashes == frozenset()


@pytest.mark.parametrize("value", ["fax:123", "email:not-an-email", "phone"])
def test_bad_blocked_identifiers_stop_the_start(value: str) -> None:
    with pytest.raises(ConfigError):
        IdentitySettings.from_env({**DEV, "CXLOOP_IDENTITY_BLOCKED_IDENTIFIERS": value})


def test_survivorship_from_json_overrides_only_the_named_traits() -> None:
    from identity.domain.survivorship import Rule

    policy = IdentitySettings.from_env(
        {
            **DEV,
            "CXLOOP_IDENTITY_SURVIVORSHIP": (
                '{"source_trust": ["pos", "crm"], "rules": {"email": ["most_frequent"]}}'
            ),
        }
    ).survivorship_policy()
    assert policy.source_trust == ("pos", "crm")
    assert policy.rules_for("email") == (Rule.MOST_FREQUENT,)
    assert policy.rules_for("given_name") == (Rule.MOST_TRUSTED_SOURCE, Rule.MOST_RECENT)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "not JSON"),
        ('{"rulez": {}}', "rules"),
        ('{"rules": {"email": ["loudest"]}}', "unknown rule 'loudest'"),
        ('{"rules": {"shoe_size": ["most_recent"]}}', "unknown trait"),
        ('{"source_trust": "crm"}', "source_trust"),
    ],
)
def test_bad_survivorship_stops_the_start_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        IdentitySettings.from_env({**DEV, "CXLOOP_IDENTITY_SURVIVORSHIP": value})
    assert "CXLOOP_SURVIVORSHIP" in str(err.value) or "SURVIVORSHIP" in str(err.value)
    assert message in str(err.value)
