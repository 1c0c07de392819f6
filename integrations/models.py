"""What arrives from other systems, as it arrived, and how a connection's vocabulary maps.

On PostgreSQL `InboundDelivery` is partitioned by month of `received_at` (see the
migrations and docs/decisions.md); its primary key there is (id, received_at), while Django
keeps seeing the single `id`. Dedupe lives in the small `DeliveryKey` table because a unique
constraint on a partitioned table would have to include the partition key.
"""

import hashlib
import secrets

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from simple_history.models import HistoricalRecords

from failures.choices import AtsVendor, StageCategory
from failures.models import AtsConnection, Organization


class DeliveryState(models.TextChoices):
    """Where one delivery stands; the database, not the broker, is the source of truth."""

    RECEIVED = "received", "Received, waiting to be processed"
    PROCESSED = "processed", "Processed into events"
    IGNORED = "ignored", "Processed: nothing to record (ping, test or unknown event type)"
    FAILED = "failed", "Failed (kept; replay after fixing the cause)"


class InboundDelivery(models.Model):
    """One verified webhook delivery, stored before we answer the vendor."""

    id = models.BigAutoField(primary_key=True)
    received_at = models.DateTimeField(default=timezone.now)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="deliveries"
    )
    connection = models.ForeignKey(
        AtsConnection, on_delete=models.PROTECT, related_name="deliveries"
    )
    vendor = models.CharField(max_length=30, choices=AtsVendor.choices)
    event_type = models.CharField(
        max_length=120, blank=True, help_text="The vendor's own name of the event."
    )
    dedupe_key = models.CharField(max_length=300)
    body = models.BinaryField(help_text="The raw request body, byte for byte.")
    body_sha256 = models.CharField(max_length=64)
    headers = models.JSONField(
        default=dict, help_text="Request headers as received, without credentials."
    )
    verified_with = models.CharField(
        max_length=200, help_text="Which scheme and key verified the signature."
    )
    spooled = models.BooleanField(
        default=False, help_text="Kept in the local spool while the database was down."
    )
    state = models.CharField(
        max_length=20, choices=DeliveryState.choices, default=DeliveryState.RECEIVED
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    events_recorded = models.PositiveIntegerField(default=0)
    event_ids = models.JSONField(
        default=list, blank=True, help_text="Canonical events this delivery produced."
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "inbound delivery"
        verbose_name_plural = "inbound deliveries"
        indexes = [
            models.Index(fields=["connection", "received_at"], name="delivery_conn_received_idx"),
            models.Index(fields=["state", "received_at"], name="delivery_state_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.event_type or 'delivery'} #{self.pk}"

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()


class DeliveryKey(models.Model):
    """The dedupe key of a stored delivery: one row per (connection, key), ever."""

    connection = models.ForeignKey(AtsConnection, on_delete=models.PROTECT, related_name="+")
    dedupe_key = models.CharField(max_length=300)
    delivery_id = models.BigIntegerField()
    received_at = models.DateTimeField()
    body_sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "dedupe_key"], name="delivery_key_once_per_connection"
            )
        ]

    def __str__(self) -> str:
        return self.dedupe_key


class ConnectionStage(models.Model):
    """How one connection's stage (by the id or name the ATS sends) maps onto our categories.

    Checked before the organization-wide stage mapping; vendors that send stage ids only
    (Lever, SmartRecruiters) need these rows to name and place their stages.
    """

    connection = models.ForeignKey(AtsConnection, on_delete=models.CASCADE, related_name="stages")
    ats_stage = models.CharField(max_length=200, help_text="The stage id or name the ATS sends.")
    stage_name = models.CharField(
        max_length=200, blank=True, help_text="The stage's name, when the ATS sends only an id."
    )
    category = models.CharField(max_length=20, choices=StageCategory.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "ats_stage"]
        constraints = [
            models.UniqueConstraint(
                "connection", Lower("ats_stage"), name="connection_stage_once_ci"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage_name or self.ats_stage} → {self.get_category_display()}"


class ReasonOutcome(models.TextChoices):
    """What a rejection or archive reason of the ATS means for us."""

    REJECTED = "rejected", "Rejected by the company"
    WITHDRAWN = "withdrawn", "Withdrawn by the candidate"
    DECLINED = "declined", "Offer declined by the candidate"
    HIRED = "hired", "Hired"


class ConnectionReason(models.Model):
    """How one connection's rejection/archive reason (id or text) maps onto an outcome."""

    connection = models.ForeignKey(AtsConnection, on_delete=models.CASCADE, related_name="reasons")
    ats_reason = models.CharField(max_length=200, help_text="The reason id or text the ATS sends.")
    reason_name = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=20, choices=ReasonOutcome.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "ats_reason"]
        constraints = [
            models.UniqueConstraint(
                "connection", Lower("ats_reason"), name="connection_reason_once_ci"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason_name or self.ats_reason} → {self.get_outcome_display()}"


def new_tracking_token() -> str:
    return "ftk_" + secrets.token_urlsafe(24)


class TrackingKey(models.Model):
    """A public token an ATS page embeds to report user-driven events with sendBeacon.

    Only the SHA-256 of the token is stored; requests must come from one of the origins.
    """

    connection = models.ForeignKey(
        AtsConnection, on_delete=models.CASCADE, related_name="tracking_keys"
    )
    label = models.CharField(max_length=80)
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False)
    allowed_origins = models.JSONField(
        default=list, help_text='Origins allowed to report, e.g. ["https://ats.example.com"].'
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.token_prefix}…)"

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
