from __future__ import annotations

import os
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from cxloop_libs.config import Environment, ServiceSettings, default_data_dir


class ConsentSettings(ServiceSettings):
    service_name: ClassVar[str] = "consent"

    # PEM private key (Ed25519 or P-256) that signs consent receipts:
    # CXLOOP_CONSENT_SIGNING_KEY. Required in production; in development a
    # key is generated once and kept under the data dir, in tests per process.
    signing_key: str = ""
    # Who the receipts name as controller (Kantara "piiControllers").
    controller_name: str = "cxloop"
    controller_contact: str = ""
    controller_email: str = ""
    controller_url: str = ""
    privacy_policy_url: str = ""
    receipt_issuer: str = "urn:cxloop:consent"
    # Jurisdiction stated on receipts (ISO 3166 country or "EU").
    jurisdiction: str = Field(default="KR", min_length=2, max_length=8)
    # Purposes a Global Privacy Control signal opts out of (sale/share and
    # targeted marketing): CXLOOP_CONSENT_GPC_PURPOSES, comma separated.
    gpc_purposes: str = (
        "third_party_provision,marketing_email,marketing_sms,marketing_push,marketing_app"
    )

    # Services that must answer every privacy request before it completes:
    # CXLOOP_CONSENT_PRIVACY_PARTICIPANTS, comma separated (docs/adr/0014).
    privacy_participants: str = "consent,identity,gateway"
    # A participant silent this long after a request was sent escalates it.
    privacy_answer_timeout_s: float = Field(default=3600.0, gt=0)
    # How often open requests are checked for silence and overdue due dates.
    privacy_check_interval_s: float = Field(default=60.0, gt=0)

    # A privacy request for a customer id that neither identity announced nor
    # consent's ledger knows is refused (NOT_FOUND):
    # CXLOOP_CONSENT_PRIVACY_REQUIRE_KNOWN_SUBJECT.
    privacy_require_known_subject: bool = True
    # GetPreferences from memory: the view also keeps every customer's last
    # state (~590 bytes more per customer than CheckBatch's projection alone;
    # docs/adr/0310). False: each call reads the ledger in a transaction.
    # CXLOOP_CONSENT_PREFERENCES_IN_MEMORY.
    preferences_in_memory: bool = True
    # Callers (token names, CXLOOP_GRPC_TOKENS "name:token") allowed to publish
    # notices, rotate the receipt key and export the audit log:
    # CXLOOP_CONSENT_ADMIN_CALLERS, comma separated. Empty: nobody, unless
    # gRPC auth is off (development without tokens).
    admin_callers: str = ""

    @property
    def admin_caller_set(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.admin_callers.split(",") if n.strip())

    @field_validator("privacy_participants")
    @classmethod
    def _known_participants(cls, v: str) -> str:
        from cxloop_libs.messaging.catalog import PRIVACY_PARTICIPANT_DOMAINS

        names = [n.strip() for n in v.split(",") if n.strip()]
        unknown = [n for n in names if n not in PRIVACY_PARTICIPANT_DOMAINS]
        if unknown:
            raise ValueError(
                f"unknown participant(s) {', '.join(unknown)}; "
                f"known: {', '.join(PRIVACY_PARTICIPANT_DOMAINS)}"
            )
        if not names:
            raise ValueError("at least one participant (consent itself) is required")
        return ",".join(names)

    @property
    def privacy_participant_list(self) -> list[str]:
        return [n for n in self.privacy_participants.split(",") if n]

    @field_validator("gpc_purposes")
    @classmethod
    def _purpose_list(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        if "essential_service" in names:
            raise ValueError("essential_service rests on the contract; GPC cannot refuse it")
        return ",".join(names)

    @property
    def gpc_purpose_list(self) -> list[str]:
        return [n for n in self.gpc_purposes.split(",") if n]

    @model_validator(mode="after")
    def _signing_key_outside_dev(self) -> Self:
        if self.env is Environment.PRODUCTION and not self.signing_key.strip():
            raise ValueError(
                "CXLOOP_CONSENT_SIGNING_KEY (a PEM Ed25519 or P-256 private key) is "
                "required outside development mode"
            )
        return self

    def signing_key_pem(self) -> str:
        """The configured key, or the development key (created on first use)."""
        if self.signing_key.strip():
            # One-line env files often carry the PEM with literal "\n".
            return self.signing_key.replace("\\n", "\n")
        from cxloop_libs.consent.receipts import generate_signing_key_pem

        if self.env is Environment.TEST:
            return generate_signing_key_pem()
        path = default_data_dir() / "consent-receipt-signing-key.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process of the suite was first
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(generate_signing_key_pem())
        return path.read_text()
