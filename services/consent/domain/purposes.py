"""The purpose catalogue: what a customer is asked about, on which legal basis,
with which notice text.

Under PIPA every consent item is asked separately, so each purpose is its own
item with its own notice. A notice changes by a new version; a *substantive*
change (new recipient, new items, a wider purpose) moves the purpose's
re-consent baseline, and grants under older versions stop counting until the
customer decides again. Editorial changes (a typo, a translation fix) keep
earlier grants valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from cxloop_libs.consent.rules import LegalBasis, PurposeRule
from cxloop_libs.errors import InvalidArgument

THIRD_PARTY_PROVISION = "third_party_provision"
MAX_NOTICE_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class ThirdPartyProvision:
    """PIPA Art. 17(2): who receives the data, for what, which items, how long."""

    recipient: str
    purpose: str
    items: tuple[str, ...]
    retention: str

    def __post_init__(self) -> None:
        for name in ("recipient", "purpose", "retention"):
            if not getattr(self, name).strip():
                raise InvalidArgument(f"third_party.{name}", "must not be empty")
        if not self.items or not all(i.strip() for i in self.items):
            raise InvalidArgument("third_party.items", "must name at least one item")


@dataclass(frozen=True, slots=True)
class Notice:
    purpose: str
    version: int
    text_ko: str
    text_en: str
    substantive: bool
    published_at: datetime
    third_party: ThirdPartyProvision | None = None

    def __post_init__(self) -> None:
        if not self.text_ko.strip():
            raise InvalidArgument("text_ko", "a notice needs its Korean text")
        if not self.text_en.strip():
            raise InvalidArgument("text_en", "a notice needs its English text")


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    legal_basis: LegalBasis
    mandatory: bool
    # Default validity of a grant; 0 = until withdrawn.
    validity_days: int
    notices: tuple[Notice, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.notices:
            raise InvalidArgument("notices", f"purpose {self.key} has no notice")
        versions = [n.version for n in self.notices]
        if versions != sorted(versions) or len(set(versions)) != len(versions):
            raise InvalidArgument("notices", f"purpose {self.key}: versions must increase")
        if self.key == THIRD_PARTY_PROVISION and any(n.third_party is None for n in self.notices):
            raise InvalidArgument(
                "third_party",
                "third-party provision must name recipient, purpose, items, retention",
            )

    @property
    def current(self) -> Notice:
        return self.notices[-1]

    @property
    def reconsent_from(self) -> int:
        """Version of the latest substantive notice (the first one always is)."""
        for n in reversed(self.notices):
            if n.substantive:
                return n.version
        return self.notices[0].version

    @property
    def rule(self) -> PurposeRule:
        return PurposeRule(self.legal_basis, self.reconsent_from)

    def notice(self, version: int) -> Notice | None:
        for n in self.notices:
            if n.version == version:
                return n
        return None

    def revise(
        self,
        *,
        text_ko: str,
        text_en: str,
        substantive: bool,
        now: datetime,
        third_party: ThirdPartyProvision | None = None,
    ) -> tuple[Purpose, Notice]:
        """A new notice version; the purpose with it appended."""
        for name, text in (("text_ko", text_ko), ("text_en", text_en)):
            if not text.strip():
                raise InvalidArgument(name, "the notice text must not be empty")
            if len(text) > MAX_NOTICE_CHARS:
                raise InvalidArgument(name, f"at most {MAX_NOTICE_CHARS} characters")
        if third_party is not None and self.key != THIRD_PARTY_PROVISION:
            raise InvalidArgument("third_party", f"only for {THIRD_PARTY_PROVISION}")
        if self.key == THIRD_PARTY_PROVISION and third_party is None:
            third_party = self.current.third_party
        if third_party != self.current.third_party:
            # Another recipient, items or retention is never editorial.
            substantive = True
        notice = Notice(
            purpose=self.key,
            version=self.current.version + 1,
            text_ko=text_ko,
            text_en=text_en,
            substantive=substantive,
            published_at=now,
            third_party=third_party,
        )
        return replace(self, notices=(*self.notices, notice)), notice


class Catalogue:
    """Every purpose, by key."""

    def __init__(self, purposes: Iterable[Purpose]) -> None:
        self._by_key = {p.key: p for p in purposes}

    def __iter__(self) -> Iterator[Purpose]:
        return iter(sorted(self._by_key.values(), key=lambda p: p.key))

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> Purpose | None:
        return self._by_key.get(key)

    def require(self, key: str, *, field: str = "purpose") -> Purpose:
        if not key:
            raise InvalidArgument(field, "must not be empty")
        purpose = self._by_key.get(key)
        if purpose is None:
            raise InvalidArgument(field, f"unknown purpose {key[:64]!r}")
        return purpose

    def with_purpose(self, purpose: Purpose) -> Catalogue:
        return Catalogue([*(p for k, p in self._by_key.items() if k != purpose.key), purpose])

    def keys(self) -> list[str]:
        return sorted(self._by_key)
