"""Tenancy, the pipeline mirror, failure definitions and the failure log."""

import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from simple_history.models import HistoricalRecords

from failures import crypto
from failures.choices import (
    PIPELINE_STAGE_CATEGORIES,
    VERSION_FIELDS_AFTER_APPROVAL,
    ApplicationStatus,
    AtsVendor,
    ChangeRequestStatus,
    DetectorKind,
    FailureKind,
    FailureSeverity,
    FailureStatus,
    MembershipRole,
    ReopenPolicy,
    ReviewDecision,
    StageCategory,
    StrategicPolicy,
    VersionStatus,
)

# --- Tenancy ----------------------------------------------------------------------------


class Organization(models.Model):
    """A tenant: one company whose recruiting failtrack watches."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Region(models.Model):
    """A geographic region an organization hires in (e.g. EMEA), with its working calendar."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="regions")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=120, blank=True)
    holiday_country = models.CharField(
        max_length=10,
        blank=True,
        help_text="ISO country code whose public holidays are not business days (e.g. DE).",
    )
    holiday_subdivision = models.CharField(
        max_length=10, blank=True, help_text="Optional state or province code (e.g. BY)."
    )
    timezone = models.CharField(
        max_length=60, default="UTC", help_text="Local time zone that decides where days begin."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "code"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="region_code_per_org")
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        from zoneinfo import available_timezones

        from failures.business_days import supported_countries

        if self.holiday_country and self.holiday_country not in supported_countries():
            raise ValidationError({"holiday_country": "Not a country the holiday calendars know."})
        if self.holiday_subdivision and not self.holiday_country:
            raise ValidationError({"holiday_subdivision": "Give the country first."})
        if self.timezone not in available_timezones():
            raise ValidationError({"timezone": "Not a known time zone (e.g. Europe/Berlin)."})


class Team(models.Model):
    """A hiring team of an organization (e.g. Platform)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=120)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="team_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A person's role in an organization, optionally limited to some regions or teams."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=MembershipRole.choices)
    regions = models.ManyToManyField(
        Region, blank=True, help_text="Leave empty for every region of the organization."
    )
    teams = models.ManyToManyField(
        Team, blank=True, help_text="Leave empty for every team of the organization."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[regions, teams])

    class Meta:
        ordering = ["organization", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_role_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.organization}"


# --- Connections and stage vocabulary ----------------------------------------------------


class AtsConnection(models.Model):
    """One ATS feeding one organization; the id is the webhook URL's connection id.

    Its signing secrets are `ConnectionSecret` rows, encrypted at rest; several may be active
    at once (key rotation, vendors that sign each event type with its own key).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="connections"
    )
    name = models.CharField(max_length=120)
    vendor = models.CharField(max_length=30, choices=AtsVendor.choices, default=AtsVendor.GENERIC)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "name"]
        verbose_name = "ATS connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vendor_display()})"

    def signing_secrets(self, event_type: str = "") -> list["ConnectionSecret"]:
        """Active secrets that may sign a delivery of `event_type`, newest first."""
        return [
            secret
            for secret in self.secrets.filter(is_active=True).order_by("-created_at", "-pk")
            if not secret.event_type or secret.event_type == event_type
        ]

    @property
    def secret(self) -> str:
        """The newest active secret's value (for code that signs, such as the demo banner)."""
        newest = self.secrets.filter(is_active=True).order_by("-created_at", "-pk").first()
        return newest.value if newest is not None else ""


def new_connection_secret() -> str:
    """A fresh random signing secret."""
    return secrets.token_urlsafe(32)


# Old migrations name the default of the plaintext column this model once had.
_new_connection_secret = new_connection_secret


class ConnectionSecret(models.Model):
    """A signing secret of a connection, encrypted at rest and never shown after entry."""

    connection = models.ForeignKey(AtsConnection, on_delete=models.CASCADE, related_name="secrets")
    label = models.CharField(max_length=80, default="primary")
    event_type = models.CharField(
        max_length=120,
        blank=True,
        help_text="Only for deliveries of this vendor event type (vendors with one key per "
        "event type); blank: any.",
    )
    ciphertext = models.TextField(editable=False)
    fingerprint = models.CharField(
        max_length=10, editable=False, help_text="Tells secrets apart without showing them."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords(excluded_fields=["ciphertext"])

    class Meta:
        ordering = ["connection", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "label"], name="connection_secret_label_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} (…{self.fingerprint})"

    @property
    def value(self) -> str:
        """The plaintext secret (decrypted on every read; never stored in clear)."""
        return crypto.decrypt(self.ciphertext)

    def set_value(self, plaintext: str) -> None:
        """Encrypt and keep a new plaintext secret."""
        self.ciphertext = crypto.encrypt(plaintext)
        self.fingerprint = crypto.fingerprint(plaintext)


class StageMapping(models.Model):
    """How one organization's own stage name maps onto a shared stage category."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="stage_mappings"
    )
    stage_name = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=StageCategory.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "stage_name"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("stage_name"), name="stage_name_per_org_ci"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage_name} → {self.get_category_display()}"


# --- Pipeline mirror ---------------------------------------------------------------------


class Job(models.Model):
    """A requisition as the ATS knows it."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="jobs")
    connection = models.ForeignKey(AtsConnection, on_delete=models.PROTECT, related_name="jobs")
    ats_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.SET_NULL)
    department = models.CharField(max_length=200, blank=True)
    job_family = models.CharField(max_length=200, blank=True)
    hiring_manager_ats_id = models.CharField(max_length=200, blank=True)
    recruiter_ats_id = models.CharField(max_length=200, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    is_strategic = models.BooleanField(
        default=False, help_text="Strategic hires may follow extended timelines."
    )
    seniority = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The ATS's seniority level of the role (higher: more senior).",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "ats_id"], name="job_ats_id_per_connection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title or 'Job'} [{self.ats_id}]"


class Candidate(models.Model):
    """A candidate, pseudonymous: only the ATS id, never a name, contact or protected trait."""

    # Not indexed on its own: the unique (organization, connection, ats_id) index leads with it.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="candidates", db_index=False
    )
    connection = models.ForeignKey(
        AtsConnection, on_delete=models.PROTECT, related_name="candidates"
    )
    ats_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "ats_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "ats_id"],
                name="candidate_ats_id_per_connection",
            )
        ]

    def __str__(self) -> str:
        return f"Candidate {self.ats_id}"


class Application(models.Model):
    """A candidate's application to a job, and where it stands in the pipeline now."""

    # Not indexed on its own: the unique and both tenant-first indexes below lead with it.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="applications", db_index=False
    )
    connection = models.ForeignKey(
        AtsConnection, on_delete=models.PROTECT, related_name="applications"
    )
    ats_id = models.CharField(max_length=200)
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="applications")
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="applications")
    source = models.CharField(max_length=200, blank=True)
    current_stage = models.CharField(max_length=200, blank=True)
    stage_category = models.CharField(max_length=20, choices=StageCategory.choices, blank=True)
    stage_entered_at = models.DateTimeField(null=True, blank=True)
    category_entered_at = models.DateTimeField(
        null=True, blank=True, help_text="When the application entered its current category."
    )
    status = models.CharField(
        max_length=20, choices=ApplicationStatus.choices, default=ApplicationStatus.ACTIVE
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_recruiter_action_at = models.DateTimeField(
        null=True, blank=True, help_text="When a recruiter last acted on it in the ATS."
    )
    offer_approved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current offer was approved."
    )
    hired_at = models.DateTimeField(null=True, blank=True, help_text="Start of employment.")

    class Meta:
        ordering = ["organization", "-applied_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "connection", "ats_id"],
                name="application_ats_id_per_connection",
            )
        ]
        indexes = [
            # Scans select one tenant's waiting applications: tenant first.
            models.Index(
                fields=["organization", "stage_category", "status", "category_entered_at"],
                name="application_org_wait_idx",
            ),
            models.Index(fields=["organization", "applied_at"], name="application_org_applied_idx"),
        ]

    def __str__(self) -> str:
        return f"Application {self.ats_id}"


class RecruitingEvent(models.Model):
    """One canonical recruiting event as received; the append-only log of the mirror."""

    # The log's references are kept by its only writers (services.event_record and
    # failures.bulk, which resolve them in the same transaction) and by Django's PROTECT,
    # not by database constraints: those cost three row checks an event at commit, a fifth
    # of a bulk import's time (decision 27). Not indexed on its own: event_org_occurred_idx
    # leads with it.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    connection = models.ForeignKey(
        AtsConnection, on_delete=models.PROTECT, related_name="events", db_constraint=False
    )
    event_id = models.CharField(max_length=200, help_text="The ATS's id of the event.")
    kind = models.CharField(max_length=80)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    application = models.ForeignKey(
        Application,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_constraint=False,
    )
    payload = models.JSONField(help_text="The canonical event, as validated.")

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="event_org_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}"


class EventKey(models.Model):
    """Each (connection, event id) once, ever: the dedupe rule of the event log.

    A separate small table because the event log is partitioned by month on PostgreSQL, and
    a unique constraint there would have to include the partition key.
    """

    # Not indexed on its own: the unique (connection, event_id) index leads with it. No
    # database constraint, as for the log (decision 27).
    connection = models.ForeignKey(
        AtsConnection,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    event_id = models.CharField(max_length=200)
    event_pk = models.BigIntegerField(help_text="The RecruitingEvent row.")
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "event_id"], name="event_once_per_connection"
            )
        ]

    def __str__(self) -> str:
        return self.event_id


class Interview(models.Model):
    """An interview of an application, as the ATS reports it."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="interviews"
    )
    ats_id = models.CharField(max_length=200)
    scheduled_at = models.DateTimeField(help_text="When it was scheduled.")
    scheduled_for = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    no_show_at = models.DateTimeField(null=True, blank=True)
    scorecard_submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["application", "scheduled_at"]
        constraints = [
            models.UniqueConstraint(fields=["application", "ats_id"], name="interview_once")
        ]

    def __str__(self) -> str:
        return f"Interview {self.ats_id}"


class IntegrationError(models.Model):
    """An external system (e.g. background checks) failing for an application."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="integration_errors"
    )
    system = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    recovered_at = models.DateTimeField(null=True, blank=True)
    event_id = models.CharField(max_length=200)

    class Meta:
        ordering = ["application", "occurred_at"]
        indexes = [
            models.Index(fields=["application", "system", "occurred_at"], name="integ_err_idx")
        ]

    def __str__(self) -> str:
        return f"{self.system} error for {self.application}"


class ApplicationHold(models.Model):
    """An interval an application spent on hold; SLA clocks stop meanwhile."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="holds")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["application", "started_at"]
        indexes = [models.Index(fields=["application", "started_at"], name="hold_app_start_idx")]

    def __str__(self) -> str:
        return f"Hold of {self.application} from {self.started_at:%Y-%m-%d}"


class StageTransition(models.Model):
    """An application moving from one stage to another."""

    # Not indexed on its own: transition_app_time_idx leads with it.
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="transitions", db_index=False
    )
    from_stage = models.CharField(max_length=200, blank=True)
    from_category = models.CharField(max_length=20, choices=StageCategory.choices, blank=True)
    to_stage = models.CharField(max_length=200)
    to_category = models.CharField(max_length=20, choices=StageCategory.choices)
    occurred_at = models.DateTimeField()
    actor_ats_id = models.CharField(max_length=200, blank=True)
    actor_role = models.CharField(max_length=60, blank=True)
    # No database constraint: a foreign key cannot point at the partitioned event log's id
    # alone (its key there is (id, occurred_at)). Retention clears these ids itself.
    event = models.ForeignKey(
        RecruitingEvent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        ordering = ["application", "occurred_at"]
        indexes = [
            models.Index(fields=["application", "occurred_at"], name="transition_app_time_idx"),
            models.Index(fields=["to_category", "occurred_at"], name="transition_cat_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '—'} → {self.to_stage}"


# --- Definitions and failures -------------------------------------------------------------


class FailureDefinition(models.Model):
    """What counts as a failure: a stable identity whose behaviour lives in versions."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="definitions"
    )
    code = models.CharField(max_length=40, help_text="Standard failure code, e.g. SCR-SLA-BREACH.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    stage_category = models.CharField(
        max_length=20, choices=[(c.value, c.label) for c in PIPELINE_STAGE_CATEGORIES]
    )
    kind = models.CharField(max_length=20, choices=FailureKind.choices)
    severity = models.CharField(
        max_length=20, choices=FailureSeverity.choices, default=FailureSeverity.MEDIUM
    )
    owner_role = models.CharField(
        max_length=20,
        choices=MembershipRole.choices,
        default=MembershipRole.TA_OPS,
        help_text="Who is accountable for acting on these failures.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization", "code"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="definition_code_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class ImmutableVersionError(ValidationError):
    """Raised on any attempt to change or delete an approved (or retired) version."""


_FROZEN_STATUSES = (VersionStatus.APPROVED, VersionStatus.RETIRED)


class DefinitionVersionQuerySet(models.QuerySet):
    """Bulk updates and deletes respect the immutability of approved versions too."""

    def update(self, **kwargs):  # type: ignore[no-untyped-def]
        # Retiring is the only change an approved version allows; a retired one allows none.
        retiring = (
            set(kwargs) <= VERSION_FIELDS_AFTER_APPROVAL
            and kwargs.get("status", VersionStatus.RETIRED) == VersionStatus.RETIRED
        )
        frozen = self.filter(status__in=_FROZEN_STATUSES)
        if (not retiring and frozen.exists()) or self.filter(status=VersionStatus.RETIRED).exists():
            raise ImmutableVersionError(
                "Approved versions are immutable: create a new version instead."
            )
        return super().update(**kwargs)

    def delete(self):  # type: ignore[no-untyped-def]
        if self.filter(status__in=(*_FROZEN_STATUSES, VersionStatus.PROPOSED)).exists():
            raise ImmutableVersionError("Only draft versions can be deleted.")
        return super().delete()


class DefinitionVersion(models.Model):
    """One version of a definition's behaviour: detector, parameters, lifecycle.

    Approved versions are immutable (save, queryset update and delete all refuse); the only
    change left to them is retirement.
    """

    definition = models.ForeignKey(
        FailureDefinition, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    detector = models.CharField(max_length=40, choices=DetectorKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    effective_from = models.DateTimeField(null=True, blank=True)
    compliance_note = models.TextField(blank=True)
    strategic_policy = models.CharField(
        max_length=10,
        choices=StrategicPolicy.choices,
        default=StrategicPolicy.APPLY,
        help_text="Strategic hires may follow extended timelines, or be exempt.",
    )
    strategic_multiplier = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.50"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("10"))],
        help_text="With the 'extend' policy, strategic jobs' time limits are multiplied by this.",
    )
    on_reopen = models.CharField(
        max_length=10,
        choices=ReopenPolicy.choices,
        default=ReopenPolicy.KEEP,
        help_text="What happens to open failures when the ATS re-opens their application.",
    )
    excluded_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Compliance: event reasons (e.g. accommodation, legal) that must never be labelled "
            "a candidate failure. Such detections are counted, never stored."
        ),
    )
    change_summary = models.TextField(
        blank=True, help_text="What this version changes and why, for the board."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()
    objects = DefinitionVersionQuerySet.as_manager()

    class Meta:
        ordering = ["definition", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "number"], name="version_number_once"),
            models.CheckConstraint(
                condition=~models.Q(status="approved") | models.Q(effective_from__isnull=False),
                name="approved_version_has_effective_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition.code} v{self.number}"

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if self.pk is not None:
            stored = DefinitionVersion.objects.filter(pk=self.pk).first()
            if stored is not None and stored.is_frozen:
                changed = {
                    f.attname
                    for f in self._meta.concrete_fields
                    if getattr(stored, f.attname) != getattr(self, f.attname)
                }
                retiring = self.status == VersionStatus.RETIRED
                if (
                    changed - VERSION_FIELDS_AFTER_APPROVAL
                    or ("status" in changed and not retiring)
                    or (stored.status == VersionStatus.RETIRED and changed)
                ):
                    raise ImmutableVersionError(
                        f"{stored} is {stored.get_status_display().lower()} and immutable: "
                        "create a new version instead."
                    )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Judge the stored status, not whatever the caller's copy says.
        stored = DefinitionVersion.objects.filter(pk=self.pk).values_list("status", flat=True)
        if self.status != VersionStatus.DRAFT or stored.first() not in (None, VersionStatus.DRAFT):
            raise ImmutableVersionError("Only draft versions can be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_frozen(self) -> bool:
        """True once approved: nothing but retirement may change."""
        return self.status in _FROZEN_STATUSES

    def clean(self) -> None:
        from failures.detectors import detector_for

        if self.detector:
            detector_for(self.detector).validate_parameters(self.parameters)
        reasons = self.excluded_reasons
        if not isinstance(reasons, list) or not all(
            isinstance(r, str) and 0 < len(r.strip()) <= 100 for r in reasons
        ):
            raise ValidationError(
                {"excluded_reasons": "A list of reasons, each 1 to 100 characters."}
            )
        if len(reasons) > 50:
            raise ValidationError({"excluded_reasons": "At most 50 reasons."})
        if self.status == VersionStatus.APPROVED and self.effective_from is None:
            raise ValidationError(
                {"effective_from": "An approved version needs an effective date."}
            )


# --- Governance -------------------------------------------------------------------------------


class ReviewBoard(models.Model):
    """An organization's governance review board: who votes on definition changes."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="review_board"
    )
    name = models.CharField(max_length=200, default="Governance review board")
    quorum = models.PositiveSmallIntegerField(
        default=2, help_text="Approvals needed to put a proposed version in force."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="quorum_at_least_one")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.organization})"


class BoardMember(models.Model):
    """A seat on a review board; only voting members approve or reject."""

    board = models.ForeignKey(ReviewBoard, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="board_seats"
    )
    can_vote = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["board", "user__username"]
        constraints = [models.UniqueConstraint(fields=["board", "user"], name="one_seat_per_board")]

    def __str__(self) -> str:
        return f"{self.user} on {self.board}"

    def clean(self) -> None:
        if self.board_id and self.user_id:
            organization_id = self.board.organization_id
            if not Membership.objects.filter(
                user_id=self.user_id, organization_id=organization_id
            ).exists():
                raise ValidationError(
                    {"user": "Board members must be members of the organization."}
                )


class ChangeRequest(models.Model):
    """A proposal to put a definition version in force, decided by the review board."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="change_requests"
    )
    version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="change_requests"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField()
    reason = models.TextField(help_text="Why the change is needed.")
    status = models.CharField(
        max_length=20, choices=ChangeRequestStatus.choices, default=ChangeRequestStatus.OPEN
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-proposed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(status="open"),
                name="one_open_request_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"Change request #{self.pk}: {self.version}"


class Review(models.Model):
    """One board member's vote on a change request, with the reason; never edited."""

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.PROTECT, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices)
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["change_request", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "reviewer"], name="one_review_per_member"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer}"


class Failure(models.Model):
    """One detected failure, naming the exact definition version that produced it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="failures"
    )
    definition = models.ForeignKey(
        FailureDefinition, on_delete=models.PROTECT, related_name="failures"
    )
    definition_version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="failures"
    )
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="failures")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="failures")
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="failures")
    dedupe_key = models.CharField(
        max_length=200, help_text="Identifies the occurrence, so detection records it once."
    )
    occurred_at = models.DateTimeField(help_text="When the failure happened.")
    detected_at = models.DateTimeField(help_text="When failtrack detected it.")
    status = models.CharField(
        max_length=20, choices=FailureStatus.choices, default=FailureStatus.OPEN
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        permissions = [
            ("change_failure_status", "Can acknowledge, resolve, exempt, dismiss or reopen"),
            ("view_dashboard", "Can view failure dashboards"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "application", "dedupe_key"], name="failure_once"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "occurred_at"], name="failure_org_occurred_idx"),
            models.Index(fields=["organization", "status"], name="failure_org_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.definition.code} on {self.application.ats_id}"


class SimulationTruth(models.Model):
    """A failure the ATS simulator caused on purpose: the ground truth detection is checked by."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="simulation_truths"
    )
    seed = models.IntegerField()
    definition_code = models.CharField(max_length=40)
    application_ats_id = models.CharField(max_length=200)
    dedupe_key = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    exempted = models.BooleanField(default=False, help_text="Expected as an exempted case.")
    excluded = models.BooleanField(
        default=False, help_text="Expected to be excluded for compliance (counted, not stored)."
    )

    class Meta:
        ordering = ["organization", "occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "definition_code", "application_ats_id", "dedupe_key"],
                name="truth_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.definition_code} on {self.application_ats_id}"


class DefinitionException(models.Model):
    """A documented exception: a job where a definition does not apply, for a period."""

    definition = models.ForeignKey(
        FailureDefinition, on_delete=models.PROTECT, related_name="exceptions"
    )
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="definition_exceptions")
    reason = models.TextField(help_text="Why the standard logic does not apply here.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until further notice.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["definition", "-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="exception_ends_after_it_starts",
            )
        ]

    def __str__(self) -> str:
        return f"{self.definition.code} exception for {self.job}"

    def clean(self) -> None:
        if (
            self.definition_id
            and self.job_id
            and self.definition.organization_id != self.job.organization_id
        ):
            raise ValidationError({"job": "The job belongs to another organization."})


class ComplianceExclusion(models.Model):
    """How many detections a version excluded for a compliance reason on a day (no one named)."""

    version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="compliance_exclusions"
    )
    day = models.DateField()
    reason = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "day", "reason"], name="one_exclusion_count_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version}: {self.count} excluded ({self.reason}) on {self.day}"
