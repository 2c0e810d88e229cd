"""Write keys: the only thing the gateway owns.

A write key names the source (web shop, app, kiosk ...) that sends events, the
way Segment's write keys do. It is not a user credential: it ships inside
frontends, so it only decides which source an event is attributed to and
keeps strangers from writing into the pipeline.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_SOURCE = "default"
DEV_SOURCE = "dev"
_SOURCE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_write_keys(spec: str) -> dict[str, str]:
    """Parse ``"key=source,key2=source2,key3"`` into ``{key: source}``.

    A bare key belongs to the source ``default``. Raises ValueError naming the
    problem (never the key itself: keys are secrets and errors end up in logs).
    """
    keys: dict[str, str] = {}
    for n, raw in enumerate(spec.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        key, sep, source = item.partition("=")
        key, source = key.strip(), source.strip()
        if not sep:
            source = DEFAULT_SOURCE
        if not key:
            raise ValueError(f"entry {n} has an empty write key")
        if not _SOURCE_RE.fullmatch(source):
            raise ValueError(
                f"entry {n}: the source name must be 1-64 characters of A-Z, a-z, 0-9, _ . or -"
            )
        if key in keys:
            raise ValueError(f"entry {n} repeats a write key")
        keys[key] = source
    return keys


@dataclass(frozen=True, slots=True)
class WriteKeys:
    """Accepted write keys and the source each one stands for."""

    sources: Mapping[str, str] = field(default_factory=dict)

    def source_for(self, key: str) -> str | None:
        """The source of ``key``, or None if it is not accepted.

        Compares against every key in constant time per key, so response
        timing does not reveal how much of a guessed key was right.
        """
        found: str | None = None
        # surrogatepass: a key with a lone surrogate (valid JSON) is simply unknown.
        candidate = key.encode("utf-8", "surrogatepass")
        for known, source in self.sources.items():
            if hmac.compare_digest(known.encode(), candidate):
                found = source
        return found

    def __len__(self) -> int:
        return len(self.sources)

    def __repr__(self) -> str:
        # Never print the keys themselves.
        return f"WriteKeys(sources={sorted(set(self.sources.values()))!r})"
