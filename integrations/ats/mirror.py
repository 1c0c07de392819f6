"""What adapters may read of our mirror while mapping a delivery.

Vendors omit things (Greenhouse sends no previous stage, Lever and SmartRecruiters send ids
only): adapters derive them from what earlier events recorded, and mark the event's
`derived` list so nobody mistakes a derived value for one the ATS sent.
"""

from dataclasses import dataclass

from django.db.models.functions import Lower

from failures.models import Application, AtsConnection, Job, StageMapping
from integrations.models import ConnectionReason, ConnectionStage


def _comparable(value: object) -> str | None:
    """The text of an id or name, or None when PostgreSQL cannot compare it (a NUL, a lone
    surrogate from a JSON escape): such a key matches no row, it must not crash the lookup."""
    text = str(value)
    if "\x00" in text:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


@dataclass(frozen=True)
class KnownApplication:
    """An application as our mirror knows it."""

    ats_id: str
    candidate_ats_id: str
    job_ats_id: str
    current_stage: str
    stage_category: str
    status: str
    # The connection that owns the application (filled where an add-on looks across them).
    connection_id: str | None = None


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
        if _comparable(key) is None:
            return StageName(name=key, category=None)
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
        if not key or _comparable(key) is None:
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
        if _comparable(ats_id) is None:
            return None
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
        if _comparable(ats_id) is None:
            return False
        return Job.objects.filter(connection_id=self.connection.pk, ats_id=str(ats_id)).exists()

    # --- Added for vendors that omit stages' categories or know candidates only (Workable,
    # Recruitee, Checkr). ---------------------------------------------------------------

    def stage_mapped(self, *ats_stages: str, field: str) -> StageName:
        """The first of `ats_stages` (e.g. an id, then a name) that maps onto a category.

        An unmapped stage cannot be placed in the pipeline: the delivery fails naming
        `field`, and can be replayed once the stage is mapped (connection stages in the
        admin, or the organization's stage mappings).
        """
        from integrations.ats.base import DeliveryInvalid

        tried = [str(stage).strip() for stage in ats_stages if str(stage or "").strip()]
        for key in tried:
            resolved = self.stage(key)
            if resolved.category:
                return resolved
        shown = " / ".join(repr(key) for key in tried) or "(none)"
        raise DeliveryInvalid(
            field,
            f"Stage {shown} is not mapped: add it to the connection's stages or the "
            "organization's stage mappings, then replay the delivery.",
        )

    def application_by_event_detail(self, key: str, value: str) -> KnownApplication | None:
        """The application of the organization's latest event whose `details[key]` is value.

        For vendors that name their own object but not the application (a Checkr
        candidate): the event that first linked the two recorded the vendor's id in its
        details, so later deliveries find the application through it.
        """
        from failures.models import RecruitingEvent

        if not key.isidentifier():
            raise ValueError(f"Not a details key: {key!r}")
        if _comparable(value) is None:
            return None
        row = (
            RecruitingEvent.objects.filter(
                organization_id=self.connection.organization_id,
                application__isnull=False,
                **{f"payload__details__{key}": str(value)},
            )
            .order_by("-occurred_at", "-pk")
            .values_list(
                "application__ats_id",
                "application__candidate__ats_id",
                "application__job__ats_id",
                "application__current_stage",
                "application__stage_category",
                "application__status",
                "application__connection_id",
            )
            .first()
        )
        return KnownApplication(*row) if row else None

    def organization_application(self, ats_id: str) -> KnownApplication | None:
        """An application with this ATS id fed by another connection of the same organization.

        For add-on systems (background checks) whose own connection knows no jobs: the
        ATS connection that owns the application does. Never looks outside the tenant.
        """
        if _comparable(ats_id) is None:
            return None
        row = (
            Application.objects.filter(
                organization_id=self.connection.organization_id, ats_id=str(ats_id)
            )
            .exclude(connection_id=self.connection.pk)
            .order_by("-applied_at", "-pk")
            .values_list(
                "ats_id",
                "candidate__ats_id",
                "job__ats_id",
                "current_stage",
                "stage_category",
                "status",
                "connection_id",
            )
            .first()
        )
        return KnownApplication(*row) if row else None

    def integration_error_open(self, application_ats_id: str, system: str) -> bool:
        """Whether an error of `system` is recorded, not yet recovered, for the application."""
        from failures.models import IntegrationError

        if _comparable(application_ats_id) is None:
            return False
        return IntegrationError.objects.filter(
            application__organization_id=self.connection.organization_id,
            application__ats_id=str(application_ats_id),
            system=system,
            recovered_at__isnull=True,
        ).exists()

    # --- Added for Greenhouse (interviews named by id only) and Lever (unarchiving names no
    # stage; archive reasons arrive as ids). -----------------------------------------------

    def interview_application(self, interview_ats_id: str) -> KnownApplication | None:
        """The application an interview of this connection belongs to, if it was recorded."""
        from failures.models import Interview

        if _comparable(interview_ats_id) is None:
            return None
        row = (
            Interview.objects.filter(
                application__connection_id=self.connection.pk, ats_id=str(interview_ats_id)
            )
            .order_by("-scheduled_at", "-pk")
            .values_list(
                "application__ats_id",
                "application__candidate__ats_id",
                "application__job__ats_id",
                "application__current_stage",
                "application__stage_category",
                "application__status",
            )
            .first()
        )
        return KnownApplication(*row) if row else None

    def stage_before_close(self, ats_id: str) -> StageName | None:
        """The last pipeline stage (not closed, not hired) an application was moved into."""
        from failures.choices import StageCategory
        from failures.models import StageTransition

        if _comparable(ats_id) is None:
            return None
        row = (
            StageTransition.objects.filter(
                application__connection_id=self.connection.pk, application__ats_id=str(ats_id)
            )
            .exclude(to_category__in=[StageCategory.CLOSED, StageCategory.HIRED])
            .order_by("-occurred_at", "-pk")
            .values_list("to_stage", "to_category")
            .first()
        )
        return StageName(name=row[0], category=row[1]) if row else None

    def reason_name(self, ats_reason: str) -> str | None:
        """The name an operator gave a mapped reason id (for compliance exclusions), if any."""
        key = (ats_reason or "").strip().lower()
        if not key or _comparable(key) is None:
            return None
        row = (
            ConnectionReason.objects.filter(connection=self.connection)
            .annotate(lowered=Lower("ats_reason"))
            .filter(lowered=key)
            .values_list("reason_name", flat=True)
            .first()
        )
        return row or None
