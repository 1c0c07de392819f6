"""Detector kinds: how a definition version turns events and timers into failures.

A detector only *finds* failures (as `Detection` values); `failures.services` records them,
so that recording, idempotency and side effects live in one place.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef

from failures.choices import ApplicationStatus, DetectorKind, EventKind, StrategicPolicy

if TYPE_CHECKING:
    from failures.events import CanonicalEvent
    from failures.models import Application, DefinitionVersion


@dataclass(frozen=True)
class Detection:
    """A failure a detector found; recorded once per (definition, application, dedupe_key)."""

    application_id: int
    candidate_id: int
    job_id: int
    dedupe_key: str
    occurred_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    # Set when the case is recorded as exempted (strategic hire, documented exception).
    exempt_reason: str | None = None
    # The reason the triggering event gave (compliance exclusions look at it).
    event_reason: str | None = None


@dataclass(frozen=True)
class EventContext:
    """What an event did to an application, as the detectors need to know it."""

    event: "CanonicalEvent"
    application: "Application"
    # Set when the event moved the application out of a stage category.
    left_category: str | None = None
    left_category_entered_at: datetime | None = None


@dataclass(frozen=True)
class IntParameter:
    """An integer parameter with bounds."""

    minimum: int
    maximum: int
    help: str

    def validate(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError({"parameters": f"{name}: must be a whole number."})
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(
                {"parameters": f"{name}: must be between {self.minimum} and {self.maximum}."}
            )
        return value


def event_reason(event: "CanonicalEvent") -> str | None:
    """The reason an event gives in `details.reason`, if any."""
    reason = event.details.get("reason") if isinstance(event.details, dict) else None
    return reason[:100] if isinstance(reason, str) and reason.strip() else None


def strategic_treatment(
    version: "DefinitionVersion", is_strategic: bool
) -> tuple[float, str | None]:
    """(time-limit multiplier, exemption reason) for an application's job under a version."""
    if not is_strategic or version.strategic_policy == StrategicPolicy.APPLY:
        return 1.0, None
    if version.strategic_policy == StrategicPolicy.EXTEND:
        return float(version.strategic_multiplier), None
    return 1.0, (f"Strategic hire: exempt under {version.definition.code} v{version.number}.")


class Detector:
    """Base class: a kind of detection with typed parameters."""

    kind: str = ""
    parameters: dict[str, IntParameter] = {}
    scans: bool = False

    def validate_parameters(self, parameters: Any) -> dict[str, Any]:
        """Check a version's parameters; raise ValidationError naming the bad one."""
        if not isinstance(parameters, dict):
            raise ValidationError({"parameters": "Must be a JSON object."})
        unknown = sorted(set(parameters) - set(self.parameters))
        if unknown:
            raise ValidationError({"parameters": f"{unknown[0]}: unknown parameter."})
        clean = {}
        for name, spec in self.parameters.items():
            if name not in parameters:
                raise ValidationError({"parameters": f"{name}: this parameter is required."})
            clean[name] = spec.validate(name, parameters[name])
        return clean

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        """Failures an event reveals; most detectors find none."""
        return []

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        """Failures found from timestamps alone, without an event."""
        return iter(())


class OfferDeclinedDetector(Detector):
    """Every declined offer is a failure of the offer stage."""

    kind = DetectorKind.OFFER_DECLINED

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        event = context.event
        if event.kind != EventKind.OFFER_DECLINED:
            return []
        application = context.application
        details = {"event_id": event.id}
        reason = event_reason(event)
        if reason:
            details["reason"] = reason
        _, exempt = strategic_treatment(version, application.job.is_strategic)
        return [
            Detection(
                application_id=application.pk,
                candidate_id=application.candidate_id,
                job_id=application.job_id,
                dedupe_key=f"event:{event.id}",
                occurred_at=event.occurred_at,
                details=details,
                exempt_reason=exempt,
                event_reason=reason,
            )
        ]


class StageSlaDetector(Detector):
    """An application that stays in the definition's stage category longer than max_days.

    Found when the application leaves the category late (by any event) and, while it is
    still waiting, by the periodic scan. "Longer than" is strict: exactly max_days is on time.
    """

    kind = DetectorKind.STAGE_SLA
    scans = True
    parameters = {
        "max_days": IntParameter(1, 365, "Days an application may spend in the stage category."),
    }

    @staticmethod
    def dedupe_key(category: str, entered_at: datetime) -> str:
        """One breach per stay in the category, named by when the stay began."""
        return f"{category}:{entered_at.isoformat()}"

    def _limit(self, version: "DefinitionVersion") -> timedelta:
        return timedelta(days=version.parameters["max_days"])

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        category = version.definition.stage_category
        entered = context.left_category_entered_at
        if context.left_category != category or entered is None:
            return []
        left_at = context.event.occurred_at
        application = context.application
        multiplier, exempt = strategic_treatment(version, application.job.is_strategic)
        limit = self._limit(version) * multiplier
        if left_at - entered <= limit:
            return []
        return [
            Detection(
                application_id=application.pk,
                candidate_id=application.candidate_id,
                job_id=application.job_id,
                dedupe_key=self.dedupe_key(category, entered),
                occurred_at=entered + limit,
                details={
                    "category_entered_at": entered.isoformat(),
                    "left_at": left_at.isoformat(),
                    "max_days": version.parameters["max_days"],
                    "limit_multiplier": multiplier,
                    "found_by": "transition",
                },
                exempt_reason=exempt,
                event_reason=event_reason(context.event),
            )
        ]

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import Application, Failure

        category = version.definition.stage_category
        # A breach already recorded for the current stay occurred after the stay began;
        # one for an earlier stay occurred before the application left it.
        already = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("pk"),
            occurred_at__gte=OuterRef("category_entered_at"),
        )
        for is_strategic in (False, True):
            multiplier, exempt = strategic_treatment(version, is_strategic)
            limit = self._limit(version) * multiplier
            waiting = (
                Application.objects.filter(
                    organization_id=version.definition.organization_id,
                    status=ApplicationStatus.ACTIVE,
                    stage_category=category,
                    category_entered_at__lt=now - limit,
                    job__is_strategic=is_strategic,
                )
                .filter(~Exists(already))
                .order_by("pk")
                .values_list("pk", "candidate_id", "job_id", "category_entered_at")
            )
            for app_id, candidate_id, job_id, entered in waiting.iterator(chunk_size=2000):
                yield Detection(
                    application_id=app_id,
                    candidate_id=candidate_id,
                    job_id=job_id,
                    dedupe_key=self.dedupe_key(category, entered),
                    occurred_at=entered + limit,
                    details={
                        "category_entered_at": entered.isoformat(),
                        "max_days": version.parameters["max_days"],
                        "limit_multiplier": multiplier,
                        "found_by": "scan",
                    },
                    exempt_reason=exempt,
                )


DETECTORS: dict[str, Detector] = {
    detector.kind: detector for detector in (OfferDeclinedDetector(), StageSlaDetector())
}


def detector_for(kind: str) -> Detector:
    """The detector of a kind; ValidationError for an unknown kind."""
    try:
        return DETECTORS[kind]
    except KeyError:
        raise ValidationError({"detector": f"Unknown detector kind {kind!r}."}) from None
