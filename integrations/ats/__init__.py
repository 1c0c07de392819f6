"""ATS adapters: one per vendor, each verifying and translating that vendor's deliveries."""

from integrations.ats.base import AtsAdapter
from integrations.ats.generic import GenericAdapter

_ADAPTER_CLASSES: list[type[AtsAdapter]] = [
    GenericAdapter,
]

ADAPTERS: dict[str, AtsAdapter] = {cls.vendor: cls() for cls in _ADAPTER_CLASSES}

__all__ = ["ADAPTERS", "AtsAdapter"]
