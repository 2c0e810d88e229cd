from __future__ import annotations

from typing import ClassVar

from cxloop_libs.config import ServiceSettings


class ConsentSettings(ServiceSettings):
    service_name: ClassVar[str] = "consent"
