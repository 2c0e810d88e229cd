"""Signed consent receipts: compact JWS over a Kantara-style receipt.

Only the consent service signs; anyone with the published key set (the
``GetReceiptKeys`` RPC) verifies, offline, without access to the ledger. The
key is Ed25519 (JWS ``alg`` "Ed25519", RFC 9864; the signature bytes are the
same as the older "EdDSA" name) or ECDSA P-256 ("ES256"), read from PEM.
"""

from __future__ import annotations

import json
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey

ALGORITHMS = ("Ed25519", "ES256")
RECEIPT_TYPE = "consent-receipt+jws"


class InvalidReceipt(Exception):
    """The receipt is malformed, signed by an unknown key, or altered."""


def generate_signing_key_pem() -> str:
    """A fresh Ed25519 private key, PKCS#8 PEM (development and tests)."""
    key = OKPKey.generate_key("Ed25519")
    return key.as_pem(private=True).decode()


def _load_private(pem: str) -> tuple[OKPKey | ECKey, str]:
    data = pem.encode()
    try:
        okp = OKPKey.import_key(data)
    except Exception:
        okp = None
    if okp is not None:
        if okp.curve_name != "Ed25519" or not okp.is_private:
            raise ValueError("signing key must be an Ed25519 or P-256 private key")
        return okp, "Ed25519"
    try:
        ec = ECKey.import_key(data)
    except Exception as exc:
        raise ValueError("signing key is not a PEM Ed25519 or P-256 private key") from exc
    if ec.curve_name != "P-256" or not ec.is_private:
        raise ValueError("signing key must be an Ed25519 or P-256 private key")
    return ec, "ES256"


class ReceiptSigner:
    """Signs receipts with the consent service's key."""

    def __init__(self, private_key_pem: str) -> None:
        self._key, self.alg = _load_private(private_key_pem)
        self.kid = self._key.thumbprint()

    def __repr__(self) -> str:  # never the key material
        return f"ReceiptSigner(alg={self.alg!r}, kid={self.kid!r})"

    def sign(self, claims: dict[str, Any]) -> str:
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        header = {"alg": self.alg, "kid": self.kid, "typ": RECEIPT_TYPE}
        return jws.serialize_compact(header, payload.encode(), self._key, algorithms=[self.alg])

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(self._key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def verify_receipt(token: str, jwks: dict[str, Any] | str) -> dict[str, Any]:
    """The receipt's claims if ``token`` is signed by a key of ``jwks``;
    raises :class:`InvalidReceipt` otherwise."""
    keyset_data = json.loads(jwks) if isinstance(jwks, str) else jwks
    try:
        keys = KeySet.import_key_set(keyset_data)  # type: ignore[arg-type]
        obj = jws.extract_compact(token.encode())
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidReceipt(f"not a compact JWS receipt: {exc}") from None
    header = obj.protected
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise InvalidReceipt(f"algorithm {alg!r} is not accepted for receipts")
    key = next((k for k in keys.keys if k.kid == kid), None)
    if key is None:
        raise InvalidReceipt(f"no published key with kid {kid!r}")
    try:
        verified = jws.deserialize_compact(token, key, algorithms=[str(alg)])
    except JoseError as exc:
        raise InvalidReceipt(f"signature does not verify: {exc.error}") from None
    try:
        claims: dict[str, Any] = json.loads(verified.payload)
    except ValueError:
        raise InvalidReceipt("payload is not JSON") from None
    return claims
