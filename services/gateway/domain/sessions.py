"""Console sessions: a person pastes an API key once, the gateway hands the
browser an opaque session id in a cookie (docs/adr/0110-console-sessions.md).
Plain rules, no I/O.

The session id is 256 random bits; only its SHA-256 is held, so a dump of
the book does not hand out live sessions. A session ends at logout, after
``idle_s`` without a request, after ``max_age_s`` whatever happens, and as
soon as its API key is revoked (the caller re-checks the key on every
request). Each session has its own CSRF token (synchronizer pattern): every
state-changing request made with the cookie must repeat it in a header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class ConsoleSession:
    key_id: str
    csrf_token: str
    created_at: float
    last_seen: float

    def csrf_matches(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token, given or "")


@dataclass
class SessionBook:
    """The sessions one gateway process knows (see the ADR for replicas)."""

    idle_s: float = 30 * 60
    max_age_s: float = 12 * 3600
    max_sessions: int = 10_000

    def __post_init__(self) -> None:
        self._by_digest: OrderedDict[str, ConsoleSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_digest)

    def open(self, key_id: str, now: float) -> tuple[str, ConsoleSession]:
        """A new session: (the id for the cookie, shown once; the session)."""
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(key_id, secrets.token_urlsafe(32), now, now)
        self._by_digest[_digest(session_id)] = session
        while len(self._by_digest) > self.max_sessions:
            self._by_digest.popitem(last=False)  # the oldest goes first
        return session_id, session

    def find(self, session_id: str | None, now: float) -> ConsoleSession | None:
        """The live session of this id (its idle clock restarts), else None."""
        if not session_id or len(session_id) > 128:
            return None
        digest = _digest(session_id)
        session = self._by_digest.get(digest)
        if session is None:
            return None
        if now - session.last_seen > self.idle_s or now - session.created_at > self.max_age_s:
            del self._by_digest[digest]
            return None
        session.last_seen = now
        return session

    def close(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        return self._by_digest.pop(_digest(session_id), None) is not None

    def close_key(self, key_id: str) -> int:
        """End every session opened with this key (it was revoked)."""
        gone = [d for d, s in self._by_digest.items() if s.key_id == key_id]
        for d in gone:
            del self._by_digest[d]
        return len(gone)


def same_origin(origin: str | None, fetch_site: str | None, host: str) -> bool:
    """Whether a browser request comes from the console's own origin.

    ``Sec-Fetch-Site`` (sent by every current browser) must be
    ``same-origin`` or ``none`` (typed in, a bookmark); ``Origin``, when
    sent, must name this host (``Host``: the scheme is left out, as a TLS
    proxy in front changes it). A request with neither header (curl, a
    script with a key) is not a browser's cross-origin request.
    """
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return False
    if origin is not None:
        _scheme, sep, netloc = origin.strip().lower().partition("://")
        if not sep or netloc.rstrip("/") != host.strip().lower():
            return False
    return True
