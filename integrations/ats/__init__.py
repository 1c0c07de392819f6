"""ATS adapters: one per vendor, each verifying and translating that vendor's deliveries."""

from integrations.ats.ashby import AshbyAdapter
from integrations.ats.base import AtsAdapter
from integrations.ats.checkr import CheckrAdapter
from integrations.ats.generic import GenericAdapter
from integrations.ats.greenhouse import GreenhouseAdapter
from integrations.ats.lever import LeverAdapter
from integrations.ats.recruitee import RecruiteeAdapter
from integrations.ats.smartrecruiters import SmartRecruitersAdapter
from integrations.ats.teamtailor import TeamtailorAdapter
from integrations.ats.workable import WorkableAdapter

_ADAPTER_CLASSES: list[type[AtsAdapter]] = [
    GenericAdapter,
    GreenhouseAdapter,
    LeverAdapter,
    AshbyAdapter,
    SmartRecruitersAdapter,
    TeamtailorAdapter,
    WorkableAdapter,
    RecruiteeAdapter,
    CheckrAdapter,
]

ADAPTERS: dict[str, AtsAdapter] = {cls.vendor: cls() for cls in _ADAPTER_CLASSES}

__all__ = ["ADAPTERS", "AtsAdapter"]
