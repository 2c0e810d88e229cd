"""Tier decisions: upgrade at once, downgrade only at the end of the tier's
cycle and after a grace period, never below a manual floor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty.domain.rules import RuleSet


@dataclass(frozen=True, slots=True)
class TierState:
    tier: str
    valid_until: datetime | None
    grace_until: datetime | None
    floor: str = ""


@dataclass(frozen=True, slots=True)
class TierDecision:
    state: TierState
    # "upgrade", "downgrade" or "" (no change of tier).
    change: str


def decide_tier(rules: RuleSet, state: TierState, score: int, now: datetime) -> TierDecision:
    qualified = rules.tier_for_score(score).id
    if state.floor and rules.tier_rank(state.floor) > rules.tier_rank(qualified):
        qualified = state.floor
    cycle = timedelta(days=rules.tier_window_days)
    current = state.tier if rules.tier_rank(state.tier) >= 0 else rules.tiers[0].id
    if not state.tier or rules.tier_rank(qualified) > rules.tier_rank(current):
        change = "upgrade" if state.tier and qualified != state.tier else ""
        if not state.tier and qualified != rules.tiers[0].id:
            change = "upgrade"
        return TierDecision(TierState(qualified, now + cycle, None, state.floor), change)
    if state.valid_until is not None and now < state.valid_until:
        return TierDecision(state, "")
    if rules.tier_rank(qualified) >= rules.tier_rank(current):
        return TierDecision(TierState(current, now + cycle, None, state.floor), "")
    if state.grace_until is None:
        grace = now + timedelta(days=rules.tier_grace_days)
        return TierDecision(TierState(current, state.valid_until, grace, state.floor), "")
    if now < state.grace_until:
        return TierDecision(state, "")
    return TierDecision(TierState(qualified, now + cycle, None, state.floor), "downgrade")
