from __future__ import annotations

from typing import ClassVar

from cxloop_libs.config import ServiceSettings


class PersonalizationSettings(ServiceSettings):
    service_name: ClassVar[str] = "personalization"
