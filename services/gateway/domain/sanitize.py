"""Values no consumer can store, found before a call is validated
(docs/adr/0037-ingest-value-hygiene.md).

Decided per field:

* **Lone UTF-16 surrogates** (``"\\udc00"``: valid JSON, not valid Unicode;
  UTF-8 cannot encode them) anywhere, in keys or values: the call (or the
  batch item) is refused naming the field. There is nothing sensible to
  replace them with and hashing or storing them fails.
* **NUL characters** (``\\u0000``; PostgreSQL ``text`` and ``jsonb`` refuse
  them): in an identifier (``userId``, ``anonymousId``, ``previousId``,
  ``groupId``, ``messageId``, identifier traits, ``context.externalIds``) the
  call is refused: stripping could turn one person's id into another's.
  Anywhere else (event and page names, property keys and values) they are
  stripped, the rest of the text kept.
* **Non-finite numbers** (``1e400`` parses as infinity) and integers beyond
  what a double holds: refused naming the field (JSON, protobuf's Struct and
  PostgreSQL ``jsonb`` have no infinity).
* **Nesting** deeper than ``MAX_DEPTH`` levels anywhere: refused (properties
  have their own, lower limit).

Absurd timestamps are corrected, not refused: see
``translation.occurred_at_of``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gateway.domain.errors import FieldProblem

MAX_DEPTH = 64
NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
_ID_TRAITS = r"(?:traits|context\.traits)\.(?:email|phone|loyaltyCard)"
_IDENTIFIER_PATH = re.compile(
    rf"^(?:userId|anonymousId|previousId|groupId|messageId|{_ID_TRAITS}"
    r"|context\.externalIds\[\d+\]\.(?:id|type|collection))$"
)
# Doubles hold every integer up to 2**1024; beyond, float() overflows.
_MAX_INT = 2**1023


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (lone surrogates)."""
    return _SURROGATE.search(text) is not None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def sanitize(value: Any, *, refuse_nul: bool = False) -> tuple[Any, list[FieldProblem]]:
    """``value`` with NUL stripped where allowed (nowhere with ``refuse_nul``),
    and every problem found (paths relative to ``value``, e.g. ``properties.note``)."""
    problems: list[FieldProblem] = []

    def text(s: str, path: str) -> str:
        if has_lone_surrogate(s):
            problems.append(FieldProblem(path or "body", "is not valid Unicode (lone surrogate)"))
            return s
        if NUL in s:
            if refuse_nul or _IDENTIFIER_PATH.match(path):
                problems.append(FieldProblem(path, "must not contain NUL characters"))
                return s
            return s.replace(NUL, "")
        return s

    def walk(v: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            problems.append(FieldProblem(path or "body", f"nested deeper than {MAX_DEPTH} levels"))
            return None
        if isinstance(v, str):
            return text(v, path)
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                problems.append(FieldProblem(path, "must be a finite number"))
            return v
        if isinstance(v, int):
            if abs(v) >= _MAX_INT:
                problems.append(FieldProblem(path, "is too large a number"))
            return v
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, item in v.items():
                if has_lone_surrogate(k):
                    problems.append(
                        FieldProblem(path or "body", "has a key that is not valid Unicode")
                    )
                    continue
                clean_key = k.replace(NUL, "")
                out[clean_key] = walk(item, _join(path, clean_key), depth + 1)
            return out
        if isinstance(v, list):
            return [walk(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(v)]
        return v

    return walk(value, "", 0), problems
