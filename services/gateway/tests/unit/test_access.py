"""Roles, permissions, the per-key token bucket and the key format."""

from __future__ import annotations

import pytest

from cxloop_libs.apikeys import ROLES, new_key, parse
from cxloop_libs.errors import InvalidArgument
from gateway.domain.access import ROLE_PERMISSIONS, Permission, RateLimits, TokenBucket, allowed


def test_every_role_has_permissions_and_only_people_roles_read_a_customer() -> None:
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    readers = {r for r in ROLES if allowed(r, Permission.CUSTOMER_READ)}
    assert readers == {"admin", "agent", "privacy_officer"}
    assert not allowed("analyst", Permission.SEGMENTS)
    assert not allowed("nobody", Permission.ANALYTICS_READ)


def test_bucket_allows_its_rate_then_says_how_long_to_wait() -> None:
    b = TokenBucket(2)
    assert [b.take(10.0), b.take(10.0)] == [0.0, 0.0]
    wait = b.take(10.0)
    assert wait == pytest.approx(0.5)
    assert b.take(10.5) == 0.0


def test_limits_are_per_key() -> None:
    limits = RateLimits()
    assert limits.take("a", 1, 0.0) == 0.0
    assert limits.take("a", 1, 0.0) > 0
    assert limits.take("b", 1, 0.0) == 0.0


def test_a_key_matches_its_secret_only_and_stops_when_revoked() -> None:
    plaintext, record = new_key("desk 1", "agent")
    key_id, secret = parse(plaintext) or ("", "")
    assert key_id == record.key_id and record.matches(secret)
    assert secret not in record.to_json().decode()
    assert not record.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    from dataclasses import replace

    assert not replace(record, revoked_at="2026-01-01T00:00:00+00:00").matches(secret)
    assert parse("cxk_short") is None and parse("Bearer " + plaintext) is None


@pytest.mark.parametrize(
    ("name", "role", "rate", "field"),
    [("", "agent", 5, "name"), ("ok", "boss", 5, "role"), ("ok", "agent", 0, "rate_per_s")],
)
def test_bad_key_requests_name_the_field(name: str, role: str, rate: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        new_key(name, role, rate)
    assert exc.value.field == field
