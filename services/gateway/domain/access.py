"""Who may do what through the console API: roles, permissions, and a
per-key rate limit (docs/adr/0100-console-keys-and-roles.md). Plain rules,
no I/O; keys themselves are cxloop_libs.apikeys."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    CUSTOMER_READ = "customer:read"  # one customer's 360 (personal data)
    CUSTOMER_ACT = "customer:act"  # adjust points, resolve a case
    PRIVACY = "privacy:manage"  # open and follow privacy requests
    ANALYTICS_READ = "analytics:read"  # funnels, retention, KPIs (aggregates)
    SEGMENTS = "segments:manage"  # define and preview segments, experiments
    KEYS = "keys:manage"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    # Marketers and analysts see aggregates, not one person's record.
    "marketer": frozenset({Permission.ANALYTICS_READ, Permission.SEGMENTS}),
    "analyst": frozenset({Permission.ANALYTICS_READ}),
    # A service agent has the customer on the line.
    "agent": frozenset({Permission.CUSTOMER_READ, Permission.CUSTOMER_ACT}),
    "privacy_officer": frozenset({Permission.CUSTOMER_READ, Permission.PRIVACY}),
}


def allowed(role: str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


@dataclass
class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``rate`` (one
    second's worth). Per gateway process: with N replicas behind a balancer a
    key gets up to N x rate in total, which the deploy docs say."""

    rate: float
    tokens: float = -1.0
    last: float = 0.0

    def take(self, now: float) -> float:
        """0 when allowed, else the seconds to wait before a token is free."""
        if self.tokens < 0:
            self.tokens, self.last = self.rate, now
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class RateLimits:
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key_id: str, rate: float, now: float) -> float:
        b = self.buckets.get(key_id)
        if b is None or b.rate != rate:
            b = self.buckets[key_id] = TokenBucket(rate)
        return b.take(now)
