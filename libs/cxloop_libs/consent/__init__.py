"""Consent for every service: the rule (``rules``), the local projection that
answers ``may_use`` in microseconds (``projection``), signed consent receipts
(``receipts``) and keyed proof hashes (``proof``)."""

from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.proof import ProofHasher
from cxloop_libs.consent.receipts import (
    InvalidReceipt,
    ReceiptSigner,
    generate_signing_key_pem,
    verify_receipt,
)
from cxloop_libs.consent.rules import (
    CurrentDecision,
    Decision,
    LegalBasis,
    PurposeRule,
    Reason,
    evaluate,
    parse_notice_version,
)
from cxloop_libs.consent.state_bucket import STATE_BUCKET, StateBucketSpec

__all__ = [
    "STATE_BUCKET",
    "ConsentProjection",
    "CurrentDecision",
    "Decision",
    "InvalidReceipt",
    "LegalBasis",
    "ProofHasher",
    "PurposeRule",
    "Reason",
    "ReceiptSigner",
    "StateBucketSpec",
    "evaluate",
    "generate_signing_key_pem",
    "parse_notice_version",
    "verify_receipt",
]
