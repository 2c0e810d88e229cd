"""Receipt signing keys with rotation: one current key signs, every key that
ever signed stays published (GetReceiptKeys), so a receipt keeps verifying
for as long as the ledger keeps it.

Two ways to rotate: ``RotateReceiptKey`` (a key is generated here, its
private half sealed under the master key in ``consent_receipt_key``), or a
new ``CXLOOP_CONSENT_SIGNING_KEY`` at start (a kid never seen becomes
current). Replicas pick up a rotation by another one at the next refresh
(``sync``); until then they sign with the previous key, which still verifies.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from consent.adapters.receipt_keys import ReceiptKeyStore
from cxloop_libs.consent.receipts import ReceiptSigner, generate_signing_key_pem
from cxloop_libs.pii.envelope import SubjectKeyring

log = logging.getLogger(__name__)
_CONTEXT = b"consent_receipt_signing_key"


def _keyring_subject(kid: str) -> str:
    return f"receipt-key:{kid}"[:64]


class ReceiptKeys:
    """Drop-in for :class:`ReceiptSigner` (sign, jwks, kid, alg) over every key."""

    def __init__(
        self,
        configured: ReceiptSigner,
        keyring: SubjectKeyring,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._configured = configured
        self._current = configured
        self._published: list[dict[str, Any]] = [configured.public_jwk()]
        self._keyring = keyring
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def kid(self) -> str:
        return self._current.kid

    @property
    def alg(self) -> str:
        return self._current.alg

    def sign(self, claims: dict[str, Any]) -> str:
        return self._current.sign(claims)

    def public_jwk(self) -> dict[str, Any]:
        return self._current.public_jwk()

    def jwks(self) -> dict[str, Any]:
        """Current key first, then the retired ones, newest first."""
        return {"keys": list(self._published)}

    def sync(self, session: Session) -> str:
        """Bring this process to the stored keys (registering the configured
        key when it is new, which makes it current); returns the current kid."""
        store = ReceiptKeyStore(session)
        rows = store.all()
        configured = self._configured
        if configured.kid not in {r.kid for r in rows}:
            now = self._clock()
            store.lock()
            store.insert(
                kid=configured.kid,
                alg=configured.alg,
                public_jwk=json.dumps(configured.public_jwk()),
                private_sealed=None,
                source="config",
                now=now,
            )
            store.retire_all_but(configured.kid, now)
            if rows:
                log.info("receipt signing key from configuration is new: now current")
            rows = store.all()
        current = next((r for r in rows if r.retired_at is None), rows[0])
        signer = self._signer_of(session, current)
        with self._lock:
            self._current = signer
            self._published = [signer.public_jwk()] + [
                json.loads(r.public_jwk) for r in rows if r.kid != signer.kid
            ]
        return signer.kid

    def _signer_of(self, session: Session, row: Any) -> ReceiptSigner:
        if row.kid == self._configured.kid:
            return self._configured
        if row.private_sealed is None:
            # A configured key of an earlier deployment that is still marked
            # current: only its public half is here. Sign with ours.
            return self._configured
        pem = self._keyring.open(
            session, _keyring_subject(row.kid), bytes(row.private_sealed), context=_CONTEXT
        )
        return ReceiptSigner(pem.decode())

    def rotate(self, session: Session) -> ReceiptSigner:
        """A new Ed25519 key becomes current; the others are retired (still published)."""
        store = ReceiptKeyStore(session)
        store.lock()
        pem = generate_signing_key_pem()
        signer = ReceiptSigner(pem)
        # Sealed under the master key; the keyring's data key for it is
        # created in this transaction too.
        sealed = self._keyring.seal(
            session, _keyring_subject(signer.kid), pem.encode(), context=_CONTEXT
        )
        now = self._clock()
        store.insert(
            kid=signer.kid,
            alg=signer.alg,
            public_jwk=json.dumps(signer.public_jwk()),
            private_sealed=sealed,
            source="generated",
            now=now,
        )
        store.retire_all_but(signer.kid, now)
        return signer
