from __future__ import annotations

from typing import ClassVar

from cxloop_libs.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"

    # Region assumed for phone numbers written without a country code.
    default_phone_region: str = "KR"
