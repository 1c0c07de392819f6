"""What adapters may read of our mirror while mapping a delivery.

Vendors omit things (Greenhouse sends no previous stage, Lever and SmartRecruiters send ids
only): adapters derive them from what earlier events recorded, and mark the event's
`derived` list so nobody mistakes a derived value for one the ATS sent.
"""

from dataclasses import dataclass

from django.db.models.functions import Lower

from failures.models import Application, AtsConnection, Job, StageMapping
from integrations.models import ConnectionReason, ConnectionStage


@dataclass(frozen=True)
class KnownApplication:
    """An application as our mirror knows it."""

    ats_id: str
    candidate_ats_id: str
    job_ats_id: str
    current_stage: str
    stage_category: str
    status: str


@dataclass(frozen=True)
class StageName:
    """A vendor stage resolved to a name and (when mapped) a category."""

    name: str
    category: str | None


class Mirror:
    """Read-only lookups for one connection, cached for the delivery being mapped."""

    def __init__(self, connection: AtsConnection) -> None:
        self.connection = connection
        self._stages: dict[str, StageName] = {}
        self._reasons: dict[str, str | None] = {}

    def stage(self, ats_stage: str) -> StageName:
        """The name and category of a stage the ATS names by id or by name.

        The connection's own mapping wins; then the organization's stage names; otherwise
        the stage keeps the name it came with and no category (the mirror records it, and
        the unmapped stage shows in the admin).
        """
        key = (ats_stage or "").strip()
        if key.lower() not in self._stages:
            row = (
                ConnectionStage.objects.filter(connection=self.connection)
                .annotate(lowered=Lower("ats_stage"))
                .filter(lowered=key.lower())
                .first()
            )
            if row is not None:
                resolved = StageName(name=row.stage_name or row.ats_stage, category=row.category)
            else:
                org_row = (
                    StageMapping.objects.filter(organization_id=self.connection.organization_id)
                    .annotate(lowered=Lower("stage_name"))
                    .filter(lowered=key.lower())
                    .first()
                )
                resolved = StageName(name=key, category=org_row.category if org_row else None)
            self._stages[key.lower()] = resolved
        return self._stages[key.lower()]

    def reason_outcome(self, ats_reason: str) -> str | None:
        """rejected / withdrawn / declined / hired for a mapped reason id or text, else None."""
        key = (ats_reason or "").strip().lower()
        if not key:
            return None
        if key not in self._reasons:
            row = (
                ConnectionReason.objects.filter(connection=self.connection)
                .annotate(lowered=Lower("ats_reason"))
                .filter(lowered=key)
                .first()
            )
            self._reasons[key] = row.outcome if row else None
        return self._reasons[key]

    def application(self, ats_id: str) -> KnownApplication | None:
        """What earlier events recorded about an application, or None if never seen."""
        row = (
            Application.objects.filter(connection_id=self.connection.pk, ats_id=str(ats_id))
            .values_list(
                "ats_id",
                "candidate__ats_id",
                "job__ats_id",
                "current_stage",
                "stage_category",
                "status",
            )
            .first()
        )
        return KnownApplication(*row) if row else None

    def job_exists(self, ats_id: str) -> bool:
        return Job.objects.filter(connection_id=self.connection.pk, ats_id=str(ats_id)).exists()
