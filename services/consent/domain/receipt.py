"""The consent receipt: what the customer (or an auditor) keeps as proof of a
decision, shaped after the Kantara Initiative Consent Receipt v1.1 and the
record of ISO/IEC TS 27560. The consent service signs it (JWS); anyone
verifies it with the published key.

Standard claim names are kept as the specifications spell them; cxloop's
additions sit inside each purpose (``decision``, ``noticeVersion``,
``legalBasis``, ``mandatory``, ``recordId``, ``expiresAt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consent.domain.ledger import ConsentRecord
from consent.domain.purposes import Purpose

RECEIPT_VERSION = "KI-CR-v1.1.0"


@dataclass(frozen=True, slots=True)
class Controller:
    """The organisation that decides on the processing (the brand running cxloop)."""

    name: str
    contact: str = ""
    email: str = ""
    address: str = ""
    url: str = ""
    policy_url: str = ""


def receipt_claims(
    record: ConsentRecord,
    purpose: Purpose,
    *,
    controller: Controller,
    jurisdiction: str,
    issuer: str,
    language: str = "ko",
) -> dict[str, Any]:
    notice = purpose.notice(record.notice_version) or purpose.current
    third = notice.third_party
    entry: dict[str, Any] = {
        "purpose": purpose.key,
        "purposeCategory": [purpose.key],
        "consentType": "EXPLICIT" if purpose.legal_basis.value == "consent" else "NOT_REQUIRED",
        "piiCategory": list(third.items) if third else [],
        "primaryPurpose": purpose.mandatory,
        "termination": (record.expires_at.isoformat() if record.expires_at else "until withdrawn"),
        "thirdPartyDisclosure": third is not None,
        "thirdPartyName": third.recipient if third else "",
        # cxloop additions (ISO/IEC TS 27560 record fields)
        "decision": record.decision.value,
        "noticeVersion": str(record.notice_version),
        "legalBasis": purpose.legal_basis.value,
        "mandatory": purpose.mandatory,
        "recordId": record.record_id,
        "expiresAt": int(record.expires_at.timestamp()) if record.expires_at else None,
    }
    if third is not None:
        entry["thirdParty"] = {
            "recipient": third.recipient,
            "purpose": third.purpose,
            "items": list(third.items),
            "retention": third.retention,
        }
    return {
        "iss": issuer,
        "sub": record.customer_id,
        "iat": int(record.recorded_at.timestamp()),
        "jti": record.record_id,
        "version": RECEIPT_VERSION,
        "jurisdiction": jurisdiction,
        "consentTimestamp": int(record.decided_at.timestamp()),
        "collectionMethod": record.channel.value,
        "consentReceiptID": record.record_id,
        "language": language,
        "piiPrincipalId": record.customer_id,
        "piiControllers": [
            {
                "piiController": controller.name,
                "contact": controller.contact,
                "address": controller.address,
                "email": controller.email,
                "piiControllerUrl": controller.url,
            }
        ],
        "policyUrl": controller.policy_url,
        "services": [{"service": controller.name, "purposes": [entry]}],
        "sensitive": False,
        "spiCat": [],
        "actor": record.proof.actor,
    }
