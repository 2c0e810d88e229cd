"""API keys for people and programs that read and act through the gateway
(the console, scripts): one record format, one store, for the gateway and for
`cxloop keys` (docs/adr/0100-console-keys-and-roles.md).

A key is ``cxk_<key id>_<secret>``: the id (12 hex digits) is public and names
the key in audit entries and listings; the secret (256 random bits) is shown
once, at creation, and only its SHA-256 is stored. A slow password hash would
buy nothing for a random 256-bit secret and would cost every request.

Records live in a NATS JetStream key-value bucket, the gateway's own store:
every gateway replica watches it, so a key created or revoked with the CLI is
known to all of them within a moment and no replica keeps a revoked key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from cxloop_libs.errors import InvalidArgument, NotFound
from cxloop_libs.messaging.streams import KeyValueBucketSpec, ensure_stream

log = logging.getLogger(__name__)

BUCKET = "cxloop_gateway_api_keys"
KEYS_BUCKET = KeyValueBucketSpec(name=f"KV_{BUCKET}", bucket=BUCKET)
PREFIX = "cxk_"
ROLES = ("admin", "marketer", "analyst", "agent", "privacy_officer")
DEFAULT_RATE_PER_S = 50
MAX_RATE_PER_S = 10_000
_KEY = re.compile(r"cxk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:@/-]{0,99}")


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    role: str
    secret_sha256: str
    created_at: str
    rate_per_s: int = DEFAULT_RATE_PER_S
    revoked_at: str = ""

    @property
    def active(self) -> bool:
        return not self.revoked_at

    def matches(self, secret: str) -> bool:
        return self.active and hmac.compare_digest(self.secret_sha256, _digest(secret))

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ApiKey:
        raw = json.loads(data)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    def public(self) -> dict[str, Any]:
        """What listings show: never the hash."""
        out = asdict(self)
        del out["secret_sha256"]
        out["active"] = self.active
        return out


def validate(name: str, role: str, rate_per_s: int) -> None:
    if not _NAME.fullmatch(name or ""):
        raise InvalidArgument(
            "name", "1-100 characters: letters, digits, space and _.:@/-, starting with one"
        )
    if role not in ROLES:
        raise InvalidArgument("role", f"one of {', '.join(ROLES)}")
    if not 1 <= rate_per_s <= MAX_RATE_PER_S:
        raise InvalidArgument("rate_per_s", f"from 1 to {MAX_RATE_PER_S}")


def new_key(name: str, role: str, rate_per_s: int = DEFAULT_RATE_PER_S) -> tuple[str, ApiKey]:
    """A new key: (the plaintext to hand out once, the record to store)."""
    validate(name, role, rate_per_s)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(key_id, name, role, _digest(secret), _now().isoformat(), rate_per_s)
    return f"{PREFIX}{key_id}_{secret}", record


def parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    m = _KEY.fullmatch(token.strip())
    return (m.group(1), m.group(2)) if m else None


class KeyStore:
    """The bucket: create, list, revoke (the CLI and tests use it directly)."""

    def __init__(
        self,
        js: JetStreamContext | Callable[[], JetStreamContext],
        *,
        replicas: int | None = None,
    ) -> None:
        # A service passes a function: its bus connects after it is built.
        self._js = js
        self.replicas = replicas
        self._kv: KeyValue | None = None

    @property
    def js(self) -> JetStreamContext:
        return self._js if isinstance(self._js, JetStreamContext) else self._js()

    async def kv(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self.js.key_value(BUCKET)
            except (BucketNotFoundError, NotFoundError):
                await ensure_stream(self.js, KEYS_BUCKET, self.replicas)
                self._kv = await self.js.key_value(BUCKET)
        return self._kv

    async def create(self, name: str, role: str, rate_per_s: int = DEFAULT_RATE_PER_S) -> str:
        plaintext, record = new_key(name, role, rate_per_s)
        kv = await self.kv()
        await kv.create(record.key_id, record.to_json())
        return plaintext

    async def get(self, key_id: str) -> ApiKey | None:
        kv = await self.kv()
        try:
            entry = await kv.get(key_id)
        except (KeyNotFoundError, NotFoundError):
            return None
        return ApiKey.from_json(entry.value) if entry.value else None

    async def list(self) -> list[ApiKey]:
        kv = await self.kv()
        try:
            ids = await kv.keys()
        except NoKeysError:
            return []
        out = [k for k in [await self.get(i) for i in ids] if k is not None]
        return sorted(out, key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> ApiKey:
        current = await self.get(key_id)
        if current is None:
            raise NotFound(f"no key {key_id!r}")
        if not current.active:
            return current
        revoked = replace(current, revoked_at=_now().isoformat())
        kv = await self.kv()
        await kv.put(key_id, revoked.to_json())
        return revoked


class KeyRegistry:
    """What one gateway process knows: every key, kept current by watching
    the bucket (a revocation reaches each replica through NATS)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.keys: dict[str, ApiKey] = {}
        self.ready = asyncio.Event()
        self._stopping = False
        self._watcher: Any = None
        self.on_change: list[Callable[[ApiKey], None]] = []

    def authenticate(self, token: str) -> ApiKey | None:
        parsed = parse(token)
        if parsed is None:
            return None
        key = self.keys.get(parsed[0])
        return key if key is not None and key.matches(parsed[1]) else None

    def _apply(self, records: Iterable[ApiKey]) -> None:
        for r in records:
            self.keys[r.key_id] = r
            for cb in self.on_change:
                cb(r)

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                kv = await self.store.kv()
                self._watcher = await kv.watchall()
                async for entry in self._watcher:
                    if entry is None:  # the initial values are all in
                        self.ready.set()
                        continue
                    if entry.value:
                        self._apply([ApiKey.from_json(entry.value)])
                    else:  # deleted or purged: forget it
                        self.keys.pop(entry.key, None)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    break
                log.warning("api key watch failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
