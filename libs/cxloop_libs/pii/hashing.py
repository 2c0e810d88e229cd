"""Keyed hashing of normalised identifiers.

Events and the identity graph carry HMAC-SHA256 of an identifier instead of the
identifier itself. A plain hash of an email or phone is reversible by
enumeration (there are only ~10^8 Korean mobile numbers), the key is what makes
the hash useless to anyone who gets hold of the data without it.
"""

from __future__ import annotations

import hashlib
import hmac

from cxloop.common.v1 import identifier_pb2

from cxloop_libs.pii.normalize import IdType, normalize_identifier

MIN_KEY_BYTES = 16


class IdentifierHasher:
    def __init__(self, key: bytes, *, default_region: str = "KR") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"identifier hash key must be at least {MIN_KEY_BYTES} bytes")
        # Hashing is on the ingestion hot path: keep the keyed inner/outer state
        # once and copy it per call instead of re-deriving it from the key.
        self._template = hmac.new(key, digestmod=hashlib.sha256)
        self._default_region = default_region

    def __repr__(self) -> str:
        return f"IdentifierHasher(default_region={self._default_region!r})"

    def hash_normalized(self, id_type: IdType, value: str, namespace: str = "") -> str:
        """Hash a value already normalised; the type is in the message so a value
        used as two kinds of identifier never links them."""
        mac = self._template.copy()
        mac.update(f"{id_type.value}:{namespace}:{value}".encode())
        return mac.hexdigest()

    def hash(
        self, id_type: IdType, value: str, namespace: str = "", *, field: str | None = None
    ) -> str:
        norm_value, norm_ns = normalize_identifier(
            id_type, value, namespace, field=field, default_region=self._default_region
        )
        return self.hash_normalized(id_type, norm_value, norm_ns)

    def hashed(
        self, id_type: IdType, value: str, namespace: str = "", *, field: str | None = None
    ) -> identifier_pb2.HashedIdentifier:
        norm_value, norm_ns = normalize_identifier(
            id_type, value, namespace, field=field, default_region=self._default_region
        )
        return identifier_pb2.HashedIdentifier(
            type=id_type.to_proto(),
            hash=self.hash_normalized(id_type, norm_value, norm_ns),
            namespace=norm_ns,
        )
