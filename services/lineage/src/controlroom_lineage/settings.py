from __future__ import annotations

from typing import ClassVar

from controlroom_runtime.settings import ServiceSettings


class LineageSettings(ServiceSettings):
    service_key: ClassVar[str] = "LINEAGE"

    port: int = 8793
