from __future__ import annotations

import base64
import json

import pytest
from joserfc.jwk import ECKey

from cxloop_libs.consent import (
    InvalidReceipt,
    ProofHasher,
    ReceiptSigner,
    generate_signing_key_pem,
    verify_receipt,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_signed_receipt_verifies_with_the_published_key_set() -> None:
    signer = ReceiptSigner(generate_signing_key_pem())
    token = signer.sign({"consentReceiptID": "r1", "purpose": "마케팅"})
    assert verify_receipt(token, signer.jwks()) == {"consentReceiptID": "r1", "purpose": "마케팅"}
    assert verify_receipt(token, json.dumps(signer.jwks()))["consentReceiptID"] == "r1"
    assert signer.public_jwk()["alg"] == "Ed25519"
    assert "d" not in signer.public_jwk()  # never the private part


def test_p256_keys_sign_es256() -> None:
    pem = ECKey.generate_key("P-256").as_pem(private=True).decode()
    signer = ReceiptSigner(pem)
    assert signer.alg == "ES256"
    assert verify_receipt(signer.sign({"a": 1}), signer.jwks()) == {"a": 1}


def test_tampered_payload_fails() -> None:
    signer = ReceiptSigner(generate_signing_key_pem())
    header, _, sig = signer.sign({"decision": "withdrawn"}).split(".")
    forged = _b64(json.dumps({"decision": "granted"}).encode())
    with pytest.raises(InvalidReceipt, match="signature"):
        verify_receipt(f"{header}.{forged}.{sig}", signer.jwks())


def test_other_key_unsigned_and_garbage_fail() -> None:
    signer = ReceiptSigner(generate_signing_key_pem())
    other = ReceiptSigner(generate_signing_key_pem())
    token = signer.sign({"a": 1})
    with pytest.raises(InvalidReceipt, match="kid"):
        verify_receipt(token, other.jwks())
    header = _b64(json.dumps({"alg": "none", "kid": signer.kid}).encode())
    with pytest.raises(InvalidReceipt, match="algorithm"):
        verify_receipt(f"{header}.{_b64(b'{}')}.", signer.jwks())
    with pytest.raises(InvalidReceipt):
        verify_receipt("not.a.jws!", signer.jwks())


def test_bad_signing_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        ReceiptSigner("not a pem")
    public_only = ECKey.generate_key("P-384").as_pem(private=True).decode()
    with pytest.raises(ValueError):
        ReceiptSigner(public_only)


def test_proof_hashes_are_keyed_and_never_raw() -> None:
    a = ProofHasher(b"k" * 32)
    b = ProofHasher(b"j" * 32)
    assert a.ip("203.0.113.7") == a.ip(" 203.0.113.7 ")
    assert a.ip("203.0.113.7") != b.ip("203.0.113.7")
    assert "203" not in a.ip("203.0.113.7") or len(a.ip("203.0.113.7")) == 64
    assert a.ip("x") != a.user_agent("x")
