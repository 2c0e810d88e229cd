"""Who is calling: the authenticated caller, the person it acts for, and why.

The caller is the name of the bearer token it presented (``CXLOOP_GRPC_TOKENS``
entries ``name:token``, cxloop_libs.config.parse_grpc_tokens). A front end that
acts for a person (a call-centre desk for an agent) says so in two optional
metadata headers:

- ``x-cxloop-actor``: the person's id (an agent or employee id, not a name);
- ``x-cxloop-reason``: why, e.g. a ticket number. Non-ASCII text is sent
  percent-encoded (gRPC metadata is ASCII) and decoded here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cxloop_libs.errors import InvalidArgument
from cxloop_libs.grpcx.interceptors import bearer_token

ACTOR_HEADER = "x-cxloop-actor"
REASON_HEADER = "x-cxloop-reason"
MAX_REASON = 500
MAX_ACTOR = 100
ANONYMOUS = "anonymous"
# System actors: work a service does on its own, not for a caller.
PRIVACY_REQUEST = "privacy-request"

_ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]*")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it (``name``), for whom (``on_behalf_of``) and why (``reason``)."""

    name: str
    on_behalf_of: str = ""
    reason: str = ""


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def actor_from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None,
    token_names: Mapping[str, str],
) -> Actor:
    """The caller of a gRPC call; :class:`InvalidArgument` naming the header
    when ``x-cxloop-actor`` or ``x-cxloop-reason`` is malformed."""
    entries = [(k.lower(), _text(v)) for k, v in (metadata or ())]
    token = bearer_token(entries)
    # The auth interceptor has already refused unknown tokens where auth is on.
    name = token_names.get(token, ANONYMOUS) if token else ANONYMOUS
    on_behalf_of = reason = ""
    for key, value in entries:
        if key == ACTOR_HEADER:
            on_behalf_of = value.strip()
            if len(on_behalf_of) > MAX_ACTOR or (
                on_behalf_of and not _ACTOR_ID.fullmatch(on_behalf_of)
            ):
                raise InvalidArgument(
                    ACTOR_HEADER,
                    f"an id of at most {MAX_ACTOR} letters, digits and _.:@/- (not a name)",
                )
        elif key == REASON_HEADER:
            try:
                reason = unquote(value, errors="strict").strip()
            except UnicodeDecodeError:
                raise InvalidArgument(REASON_HEADER, "percent-encoded text must be UTF-8") from None
            if len(reason) > MAX_REASON:
                raise InvalidArgument(REASON_HEADER, f"at most {MAX_REASON} characters")
            if any(not c.isprintable() for c in reason):
                raise InvalidArgument(REASON_HEADER, "must not contain control characters")
    return Actor(name, on_behalf_of, reason)


def actor_from_grpc(context: Any, token_names: Mapping[str, str]) -> Actor:
    """:func:`actor_from_metadata` of a servicer's ``context``."""
    return actor_from_metadata(context.invocation_metadata(), token_names)
