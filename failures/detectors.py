"""Detector kinds: how a definition version turns events and timers into failures.

A detector only *finds* failures (as `Detection` values); `failures.services` records them,
so that recording, idempotency and side effects live in one place.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Coalesce

from failures.business_days import (
    DAY,
    Hold,
    WorkingCalendar,
    weekdays_valid,
)
from failures.choices import ApplicationStatus, DetectorKind, EventKind, SlaUnit, StrategicPolicy

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
    left_stage: str | None = None


@dataclass(frozen=True)
class IntParameter:
    """A whole-number parameter with bounds; required unless it has a default."""

    minimum: int
    maximum: int
    help: str
    default: int | None = None

    def validate(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError({"parameters": f"{name}: must be a whole number."})
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(
                {"parameters": f"{name}: must be between {self.minimum} and {self.maximum}."}
            )
        return value


@dataclass(frozen=True)
class ChoiceParameter:
    """A parameter taking one of a few named values."""

    choices: tuple[str, ...]
    help: str
    default: str | None = None

    def validate(self, name: str, value: Any) -> str:
        if value not in self.choices:
            raise ValidationError(
                {"parameters": f"{name}: must be one of {', '.join(self.choices)}."}
            )
        return value


@dataclass(frozen=True)
class WeekdaysParameter:
    """A list of ISO weekdays (1 = Monday ... 7 = Sunday)."""

    help: str
    default: tuple[int, ...] | None = None

    def validate(self, name: str, value: Any) -> list[int]:
        if not isinstance(value, list) or not weekdays_valid(value):
            raise ValidationError(
                {"parameters": f"{name}: a list of distinct weekdays 1 (Monday) to 7 (Sunday)."}
            )
        return sorted(value)


@dataclass(frozen=True)
class TextListParameter:
    """A list of short texts (compared without regard to case)."""

    help: str
    default: tuple[str, ...] | None = None

    def validate(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(
            isinstance(item, str) and 0 < len(item.strip()) <= 100 for item in value
        ):
            raise ValidationError(
                {"parameters": f"{name}: a list of texts of 1 to 100 characters."}
            )
        return value


Parameter = IntParameter | ChoiceParameter | WeekdaysParameter | TextListParameter


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
    parameters: dict[str, Parameter] = {}
    scans: bool = False

    def validate_parameters(self, parameters: Any) -> dict[str, Any]:
        """Check a version's parameters; raise ValidationError naming the bad one.

        Returns them complete: optional parameters that were left out get their defaults.
        """
        if not isinstance(parameters, dict):
            raise ValidationError({"parameters": "Must be a JSON object."})
        unknown = sorted(set(parameters) - set(self.parameters))
        if unknown:
            raise ValidationError({"parameters": f"{unknown[0]}: unknown parameter."})
        clean: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            if name not in parameters:
                if spec.default is None:
                    raise ValidationError({"parameters": f"{name}: this parameter is required."})
                clean[name] = (
                    list(spec.default) if isinstance(spec.default, tuple) else spec.default
                )
            else:
                clean[name] = spec.validate(name, parameters[name])
        return clean

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        """Failures an event reveals; most detectors find none."""
        return []

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        """Failures found from timestamps alone, without an event."""
        return iter(())


class OfferDeclinedDetector(Detector):
    """A declined offer, optionally only from a seniority level up or for given reasons."""

    kind = DetectorKind.OFFER_DECLINED
    parameters: dict[str, Parameter] = {
        "min_seniority": IntParameter(
            0, 20, "Only jobs at this seniority level or above (0: every job).", default=0
        ),
        "reasons": TextListParameter(
            "Only declines giving one of these reasons (empty: every decline).", default=()
        ),
    }

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        event = context.event
        if event.kind != EventKind.OFFER_DECLINED:
            return []
        parameters = self.validate_parameters(version.parameters)
        application = context.application
        reason = event_reason(event)
        if (
            parameters["min_seniority"]
            and (application.job.seniority or 0) < parameters["min_seniority"]
        ):
            return []
        wanted = {r.strip().lower() for r in parameters["reasons"]}
        if wanted and (reason or "").strip().lower() not in wanted:
            return []
        details = {"event_id": event.id}
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


def sla_calendar(parameters: dict[str, Any], region: Any | None) -> WorkingCalendar:
    """The working calendar a time limit is counted in, for a job's region."""
    if parameters["unit"] == SlaUnit.CALENDAR_DAYS:
        return WorkingCalendar()
    weekdays = frozenset(parameters["working_days"])
    if region is None:
        return WorkingCalendar(working_weekdays=weekdays)
    return WorkingCalendar(
        working_weekdays=weekdays,
        country=region.holiday_country,
        subdivision=region.holiday_subdivision,
        timezone=region.timezone or "UTC",
    )


class StageSlaDetector(Detector):
    """An application that stays in the definition's stage category beyond its limit.

    The limit is `max_days` calendar days, or business days (working weekdays, the public
    holidays of the job's region left out); time on hold never counts. Found when the
    application leaves the category late (by any event) and, while it is still waiting, by
    the periodic scan. "Beyond" is strict: exactly the limit is on time.
    """

    kind = DetectorKind.STAGE_SLA
    scans = True
    parameters: dict[str, Parameter] = {
        "max_days": IntParameter(1, 365, "Days an application may spend in the stage category."),
        "unit": ChoiceParameter(
            tuple(SlaUnit.values), "What the limit counts.", default=SlaUnit.CALENDAR_DAYS
        ),
        "working_days": WeekdaysParameter(
            "Business days of the week, ISO numbers (1 = Monday).", default=(1, 2, 3, 4, 5)
        ),
    }

    clock_label = "category_entered_at"

    @staticmethod
    def dedupe_key(category: str, entered_at: datetime) -> str:
        """One breach per stay in the category, named by when the stay began."""
        return f"{category}:{entered_at.isoformat()}"

    def scan_key(self, category: str, clock_start: datetime) -> str:
        """The dedupe key of a breach found by the scan."""
        return self.dedupe_key(category, clock_start)

    def waiting(self, version: "DefinitionVersion", cutoff: datetime) -> QuerySet:
        """Active applications whose clock started before the cutoff, with `clock_start`."""
        from failures.models import Application, Failure

        # A breach already recorded for the current stay occurred after the stay began;
        # one for an earlier stay occurred before the application left it.
        already = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("pk"),
            occurred_at__gte=OuterRef("category_entered_at"),
        )
        return (
            Application.objects.filter(
                organization_id=version.definition.organization_id,
                status=ApplicationStatus.ACTIVE,
                stage_category=version.definition.stage_category,
                category_entered_at__lt=cutoff,
            )
            .filter(~Exists(already))
            .annotate(clock_start=F("category_entered_at"))
        )

    def calendar(self, parameters: dict[str, Any], region: Any | None) -> WorkingCalendar:
        """The working calendar a version's limit is counted in, for a job's region."""
        return sla_calendar(parameters, region)

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        from failures.models import ApplicationHold

        category = version.definition.stage_category
        entered = context.left_category_entered_at
        if context.left_category != category or entered is None:
            return []
        left_at = context.event.occurred_at
        application = context.application
        parameters = self.validate_parameters(version.parameters)
        multiplier, exempt = strategic_treatment(version, application.job.is_strategic)
        limit = parameters["max_days"] * DAY * multiplier
        calendar = self.calendar(parameters, application.job.region)
        holds = [
            Hold(h.started_at, h.ended_at)
            for h in ApplicationHold.objects.filter(
                application_id=application.pk, started_at__lt=left_at
            )
        ]
        if calendar.active_seconds(entered, left_at, holds) <= limit:
            return []
        occurred = calendar.deadline(entered, limit, holds)
        assert occurred is not None  # more active time than the limit: the clock got there
        return [
            Detection(
                application_id=application.pk,
                candidate_id=application.candidate_id,
                job_id=application.job_id,
                dedupe_key=self.dedupe_key(category, entered),
                occurred_at=occurred,
                details={
                    "category_entered_at": entered.isoformat(),
                    "left_at": left_at.isoformat(),
                    "max_days": parameters["max_days"],
                    "unit": parameters["unit"],
                    "limit_multiplier": multiplier,
                    "found_by": "transition",
                },
                exempt_reason=exempt,
                event_reason=event_reason(context.event),
            )
        ]

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import Region

        parameters = self.validate_parameters(version.parameters)
        organization_id = version.definition.organization_id
        regions: list[Any | None] = [None]
        if parameters["unit"] == SlaUnit.BUSINESS_DAYS:
            regions += list(Region.objects.filter(organization_id=organization_id))
        for is_strategic in (False, True):
            multiplier, exempt = strategic_treatment(version, is_strategic)
            limit = parameters["max_days"] * DAY * multiplier
            for region in regions:
                yield from self._scan_group(
                    version, parameters, now, limit, exempt, is_strategic, region, len(regions) > 1
                )

    def _scan_group(
        self,
        version: "DefinitionVersion",
        parameters: dict[str, Any],
        now: datetime,
        limit: float,
        exempt: str | None,
        is_strategic: bool,
        region: Any | None,
        by_region: bool,
    ) -> Iterator[Detection]:
        """Applications of one (strategic flag, region) group waiting beyond the limit."""

        category = version.definition.stage_category
        calendar = self.calendar(parameters, region)
        # Everyone who entered before the cutoff has more working time than the limit;
        # holds can only take some of it back, which is checked one by one below.
        cutoff = calendar.cutoff(now, limit)
        waiting = self.waiting(version, cutoff).filter(job__is_strategic=is_strategic)
        if by_region:
            waiting = (
                waiting.filter(job__region=region)
                if region is not None
                else waiting.filter(job__region__isnull=True)
            )
        rows = waiting.order_by("pk").values_list("pk", "candidate_id", "job_id", "clock_start")
        chunk: list[tuple] = []
        for row in rows.iterator(chunk_size=2000):
            chunk.append(row)
            if len(chunk) == 2000:
                yield from self._scan_chunk(
                    chunk, calendar, parameters, now, limit, exempt, category
                )
                chunk = []
        if chunk:
            yield from self._scan_chunk(chunk, calendar, parameters, now, limit, exempt, category)

    def _scan_chunk(
        self,
        chunk: list[tuple],
        calendar: WorkingCalendar,
        parameters: dict[str, Any],
        now: datetime,
        limit: float,
        exempt: str | None,
        category: str,
    ) -> Iterator[Detection]:
        from failures.models import ApplicationHold

        holds: dict[int, list[Hold]] = {}
        for hold in ApplicationHold.objects.filter(
            application_id__in=[row[0] for row in chunk], started_at__lt=now
        ):
            holds.setdefault(hold.application_id, []).append(Hold(hold.started_at, hold.ended_at))
        for app_id, candidate_id, job_id, entered in chunk:
            stay_holds = [h for h in holds.get(app_id, ()) if h.end is None or h.end > entered]
            if stay_holds:
                occurred = calendar.deadline(entered, limit, stay_holds)
                if occurred is None or occurred >= now:
                    continue  # on hold, or the held time pushed the deadline past now
            else:
                occurred = calendar.add_working_time(entered, limit)
            yield Detection(
                application_id=app_id,
                candidate_id=candidate_id,
                job_id=job_id,
                dedupe_key=self.scan_key(category, entered),
                occurred_at=occurred,
                details={
                    self.clock_label: entered.isoformat(),
                    "max_days": parameters["max_days"],
                    "unit": parameters["unit"],
                    "limit_multiplier": limit / (parameters["max_days"] * DAY),
                    "found_by": "scan",
                },
                exempt_reason=exempt,
            )


class RecruiterInactivityDetector(StageSlaDetector):
    """An active application nobody in a recruiter role has acted on for the limit.

    Counts from the last recruiter action (or the application date when there was none), in
    any pipeline stage, in calendar or business days; time on hold does not count.
    """

    kind = DetectorKind.RECRUITER_INACTIVITY
    clock_label = "last_recruiter_action_at"
    parameters: dict[str, Parameter] = {
        "max_days": IntParameter(1, 365, "Days without a recruiter action."),
        "unit": ChoiceParameter(
            tuple(SlaUnit.values), "What the limit counts.", default=SlaUnit.BUSINESS_DAYS
        ),
        "working_days": WeekdaysParameter(
            "Business days of the week, ISO numbers (1 = Monday).", default=(1, 2, 3, 4, 5)
        ),
    }

    def scan_key(self, category: str, clock_start: datetime) -> str:
        return f"recruiter-idle:{clock_start.isoformat()}"

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        return []  # inactivity is the absence of events: only the scan finds it

    def waiting(self, version: "DefinitionVersion", cutoff: datetime) -> QuerySet:
        from failures.models import Application, Failure

        applications = Application.objects.filter(
            organization_id=version.definition.organization_id,
            status=ApplicationStatus.ACTIVE,
        ).annotate(clock_start=Coalesce("last_recruiter_action_at", "applied_at"))
        already = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("pk"),
            occurred_at__gte=OuterRef("clock_start"),
        )
        return applications.filter(clock_start__lt=cutoff).filter(~Exists(already))


class CandidateDropOffDetector(Detector):
    """A candidate leaves at the definition's stage: withdraws, or goes silent for N days.

    The failure records the last stage reached; a partial pipeline is normal, not an error.
    """

    kind = DetectorKind.CANDIDATE_DROP_OFF
    scans = True
    parameters: dict[str, Parameter] = {
        "inactive_days": IntParameter(
            0, 365, "Days without any activity that count as dropping off (0: off).", default=0
        ),
    }

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        event = context.event
        if event.kind != EventKind.APPLICATION_WITHDRAWN:
            return []
        if context.left_category != version.definition.stage_category:
            return []
        application = context.application
        _, exempt = strategic_treatment(version, application.job.is_strategic)
        reason = event_reason(event)
        details: dict[str, Any] = {"last_stage": context.left_stage, "found_by": "withdrawal"}
        if reason:
            details["reason"] = reason
        return [
            Detection(
                application_id=application.pk,
                candidate_id=application.candidate_id,
                job_id=application.job_id,
                dedupe_key=f"withdrawn:{event.id}",
                occurred_at=event.occurred_at,
                details=details,
                exempt_reason=exempt,
                event_reason=reason,
            )
        ]

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import Application, Failure

        days = self.validate_parameters(version.parameters)["inactive_days"]
        if days == 0:
            return
        limit = timedelta(days=days)
        already = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("pk"),
            occurred_at__gte=OuterRef("last_event_at"),
        )
        silent = (
            Application.objects.filter(
                organization_id=version.definition.organization_id,
                status=ApplicationStatus.ACTIVE,
                stage_category=version.definition.stage_category,
                last_event_at__lt=now - limit,
            )
            .filter(~Exists(already))
            .order_by("pk")
            .values_list(
                "pk",
                "candidate_id",
                "job_id",
                "last_event_at",
                "current_stage",
                "job__is_strategic",
            )
        )
        for app_id, candidate_id, job_id, last, stage, strategic in silent.iterator(
            chunk_size=2000
        ):
            _, exempt = strategic_treatment(version, strategic)
            yield Detection(
                application_id=app_id,
                candidate_id=candidate_id,
                job_id=job_id,
                dedupe_key=f"inactive:{last.isoformat()}",
                occurred_at=last + limit,
                details={"last_stage": stage, "inactive_days": days, "found_by": "inactivity"},
                exempt_reason=exempt,
            )


DETECTORS: dict[str, Detector] = {
    detector.kind: detector
    for detector in (
        OfferDeclinedDetector(),
        StageSlaDetector(),
        CandidateDropOffDetector(),
        RecruiterInactivityDetector(),
    )
}


def detector_for(kind: str) -> Detector:
    """The detector of a kind; ValidationError for an unknown kind."""
    try:
        return DETECTORS[kind]
    except KeyError:
        raise ValidationError({"detector": f"Unknown detector kind {kind!r}."}) from None
