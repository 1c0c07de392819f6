"""ATS adapters: one per vendor, each verifying and translating that vendor's deliveries."""

from integrations.ats.base import AtsAdapter
from integrations.ats.generic import GenericAdapter

ADAPTERS: dict[str, AtsAdapter] = {adapter.vendor: adapter for adapter in (GenericAdapter(),)}

__all__ = ["ADAPTERS", "AtsAdapter"]
