"""The golden record: one value per trait, chosen from what every source said.

Sources disagree (the CRM has "Olivia Bennett", a till typed "Olivia Bennet",
a newer web form has a new address). Each statement is a `TraitObservation`;
a per-trait chain of survivorship rules picks the value that survives:

- ``most_recent``: the latest observation (record time, else receive time);
- ``most_trusted_source``: observations of the most trusted source present
  (an ordered trust list; unlisted sources rank below every listed one);
- ``most_frequent``: the value the most observations agree on.

Rules apply in order, each keeping the values tied best under it, until one
value is left; the rule that left it is reported. When every observation
agrees no rule was needed (``unanimous``); when the chain ends in a tie the
last observation received wins (``latest_received``), so the answer never
depends on row order. Values are compared by a normalised key (case, width,
spacing; digits only for dates and phones), and the winning group answers
with its most recent observation's value as written.

Pure domain code: no I/O, no decryption (the caller opens sealed values).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Rule(StrEnum):
    MOST_RECENT = "most_recent"
    MOST_TRUSTED_SOURCE = "most_trusted_source"
    MOST_FREQUENT = "most_frequent"


# How a value was chosen when no configured rule had to decide.
UNANIMOUS = "unanimous"
LATEST_RECEIVED = "latest_received"

# Traits a profile can carry, as ImportRecords and Resolve name them.
TRAITS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "full_name",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "state",
    "phone",
    "email",
)

_NAME_RULES = (Rule.MOST_TRUSTED_SOURCE, Rule.MOST_RECENT)
_ADDRESS_RULES = (Rule.MOST_RECENT, Rule.MOST_TRUSTED_SOURCE)
DEFAULT_RULES: dict[str, tuple[Rule, ...]] = {
    # A name is typed once, carefully, where the customer signs up (CRM),
    # and retyped in a hurry elsewhere (a till).
    "given_name": _NAME_RULES,
    "family_name": _NAME_RULES,
    "full_name": _NAME_RULES,
    # A birth date does not change: a typo in one source is outvoted.
    "date_of_birth": (Rule.MOST_FREQUENT, Rule.MOST_TRUSTED_SOURCE, Rule.MOST_RECENT),
    # People move and change numbers: the newest statement is the best one.
    # The address parts share the rule, so they come from one record.
    "street": _ADDRESS_RULES,
    "city": _ADDRESS_RULES,
    "postcode": _ADDRESS_RULES,
    "state": _ADDRESS_RULES,
    "phone": (Rule.MOST_RECENT,),
    "email": (Rule.MOST_RECENT,),
}
DEFAULT_SOURCE_TRUST: tuple[str, ...] = ("crm", "pos", "web")


@dataclass(frozen=True, slots=True)
class TraitObservation:
    trait: str
    value: str
    source: str
    observed_at: datetime
    # Arrival order (the row id): the last resort between equal statements.
    seq: int = 0


@dataclass(frozen=True, slots=True)
class GoldenTrait:
    trait: str
    value: str
    rule: str  # a Rule value, UNANIMOUS or LATEST_RECEIVED
    source: str  # of the observation whose value won
    observed_at: datetime
    observations: int  # how many observations of this trait there are


@dataclass(frozen=True, slots=True)
class SurvivorshipPolicy:
    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=lambda: dict(DEFAULT_RULES))
    source_trust: tuple[str, ...] = DEFAULT_SOURCE_TRUST
    # For a trait without rules of its own.
    default_rules: tuple[Rule, ...] = (Rule.MOST_RECENT,)

    def rules_for(self, trait: str) -> tuple[Rule, ...]:
        return self.rules.get(trait, self.default_rules)

    def trust_rank(self, source: str) -> int:
        """0 is most trusted; unlisted sources share the rank after the list."""
        try:
            return self.source_trust.index(source)
        except ValueError:
            return len(self.source_trust)

    @classmethod
    def from_config(
        cls, rules: Mapping[str, Sequence[str]] | None = None, source_trust: Sequence[str] = ()
    ) -> SurvivorshipPolicy:
        """Defaults overridden per trait. Raises ValueError naming the bad entry."""
        merged = dict(DEFAULT_RULES)
        for trait, names in (rules or {}).items():
            if trait not in TRAITS:
                raise ValueError(f"rules.{trait}: unknown trait; use one of {', '.join(TRAITS)}")
            if not names:
                raise ValueError(f"rules.{trait}: name at least one rule")
            chain = []
            for name in names:
                try:
                    chain.append(Rule(name))
                except ValueError:
                    known = ", ".join(r.value for r in Rule)
                    raise ValueError(f"rules.{trait}: unknown rule {name!r}; use {known}") from None
            if len(set(chain)) != len(chain):
                raise ValueError(f"rules.{trait}: a rule is listed twice")
            merged[trait] = tuple(chain)
        trust = tuple(s.strip().lower() for s in source_trust if s.strip())
        if len(set(trust)) != len(trust):
            raise ValueError("source_trust: a source is listed twice")
        return cls(rules=merged, source_trust=trust or DEFAULT_SOURCE_TRUST)


def value_key(trait: str, value: str) -> str:
    """What makes two statements of a trait the same value."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    if trait in ("date_of_birth", "phone"):
        return "".join(ch for ch in folded if ch.isdigit())
    return " ".join(folded.split())


def _latest(obs: Iterable[TraitObservation]) -> TraitObservation:
    return max(obs, key=lambda o: (o.observed_at, o.seq))


def _narrow(
    rule: Rule, groups: dict[str, list[TraitObservation]], policy: SurvivorshipPolicy
) -> dict[str, list[TraitObservation]]:
    """The values tied best under one rule, each with the observations that
    support it (for the next rule, only those)."""
    if rule is Rule.MOST_FREQUENT:
        best = max(len(g) for g in groups.values())
        return {k: g for k, g in groups.items() if len(g) == best}
    if rule is Rule.MOST_RECENT:
        newest = max(o.observed_at for g in groups.values() for o in g)
        kept = {k: [o for o in g if o.observed_at == newest] for k, g in groups.items()}
    else:
        top = min(policy.trust_rank(o.source) for g in groups.values() for o in g)
        kept = {k: [o for o in g if policy.trust_rank(o.source) == top] for k, g in groups.items()}
    return {k: g for k, g in kept.items() if g}


def choose(
    trait: str, observations: Sequence[TraitObservation], policy: SurvivorshipPolicy
) -> GoldenTrait | None:
    """The surviving value of one trait; None without observations."""
    obs = [o for o in observations if o.trait == trait and value_key(trait, o.value)]
    if not obs:
        return None
    groups: dict[str, list[TraitObservation]] = {}
    for o in obs:
        groups.setdefault(value_key(trait, o.value), []).append(o)
    rule: str = UNANIMOUS
    if len(groups) > 1:
        rule = LATEST_RECEIVED
        for r in policy.rules_for(trait):
            groups = _narrow(r, groups, policy)
            if len(groups) == 1:
                rule = r.value
                break
    # Among the values still tied, the last received wins; the winning value
    # is written as its most recent supporting observation wrote it.
    key = max(groups, key=lambda k: max(o.seq for o in groups[k]))
    winner = _latest(groups[key])
    return GoldenTrait(
        trait=trait,
        value=winner.value,
        rule=rule,
        source=winner.source,
        observed_at=winner.observed_at,
        observations=len(obs),
    )


def golden_record(
    observations: Sequence[TraitObservation], policy: SurvivorshipPolicy
) -> list[GoldenTrait]:
    """One surviving value per observed trait, in `TRAITS` order (then others)."""
    present = {o.trait for o in observations}
    order = [t for t in TRAITS if t in present] + sorted(present - set(TRAITS))
    by_trait: dict[str, list[TraitObservation]] = {}
    for o in observations:
        by_trait.setdefault(o.trait, []).append(o)
    out = []
    for trait in order:
        chosen = choose(trait, by_trait[trait], policy)
        if chosen is not None:
            out.append(chosen)
    return out
