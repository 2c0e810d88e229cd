"""Keyed hashes for the proof kept with a consent record.

The IP address and user agent prove where a decision came from, but they are
personal data: only HMAC-SHA256 under the suite's PII key is stored, so the
proof can be checked ("was it this address?") and not read. Any service that
sees the raw values (the gateway) hashes them the same way.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_KEY_BYTES = 16


class ProofHasher:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"proof hash key must be at least {MIN_KEY_BYTES} bytes")
        self._template = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "ProofHasher()"

    def _hash(self, kind: str, value: str) -> str:
        mac = self._template.copy()
        # Domain-separated from identifier hashes, so a proof hash never
        # equals the hash of an identifier with the same text.
        mac.update(f"consent-proof:{kind}:{value}".encode())
        return mac.hexdigest()

    def ip(self, address: str) -> str:
        return self._hash("ip", address.strip().lower())

    def user_agent(self, value: str) -> str:
        return self._hash("ua", value.strip())


def is_proof_hash(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
