"""Detector kinds: how a definition version turns events and timers into failures.

A detector only *finds* failures (as `Detection` values); `failures.services` records them,
so that recording, idempotency and side effects live in one place.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce, Concat

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


# Failure.dedupe_key's column length.
DEDUPE_KEY_LENGTH = 200


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

    def __post_init__(self) -> None:
        # Keys embed ATS ids of up to 200 characters; a key longer than the column keeps a
        # readable prefix and a digest of the whole, so it stays unique and deterministic.
        if len(self.dedupe_key) > DEDUPE_KEY_LENGTH:
            digest = hashlib.sha256(self.dedupe_key.encode("utf-8", "surrogatepass")).hexdigest()
            object.__setattr__(self, "dedupe_key", f"{self.dedupe_key[:150]}~{digest[:40]}")


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


def calendar_parameters(help_unit: str, *, default_unit: str) -> dict[str, Parameter]:
    """The `unit` and `working_days` parameters every time-limit detector takes."""
    return {
        "unit": ChoiceParameter(tuple(SlaUnit.values), help_unit, default=default_unit),
        "working_days": WeekdaysParameter(
            "Business days of the week, ISO numbers (1 = Monday).", default=(1, 2, 3, 4, 5)
        ),
    }


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


def detection_for(
    version: "DefinitionVersion",
    application: "Application",
    *,
    dedupe_key: str,
    occurred_at: datetime,
    details: dict[str, Any],
    event_reason: str | None = None,
) -> Detection:
    """A detection about one application, exempted as the version treats strategic hires."""
    _, exempt = strategic_treatment(version, application.job.is_strategic)
    return Detection(
        application_id=application.pk,
        candidate_id=application.candidate_id,
        job_id=application.job_id,
        dedupe_key=dedupe_key,
        occurred_at=occurred_at,
        details=details,
        exempt_reason=exempt,
        event_reason=event_reason,
    )


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
        return [
            detection_for(
                version,
                application,
                dedupe_key=f"event:{event.id}",
                occurred_at=event.occurred_at,
                details=details,
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
        **calendar_parameters("What the limit counts.", default_unit=SlaUnit.CALENDAR_DAYS),
    }

    clock_label = "category_entered_at"

    @staticmethod
    def dedupe_key(category: str, entered_at: datetime) -> str:
        """One breach per stay in the category, named by when the stay began."""
        return f"{category}:{entered_at.isoformat()}"

    def scan_key(self, category: str, clock_start: datetime) -> str:
        """The dedupe key of a breach found by the scan."""
        return self.dedupe_key(category, clock_start)

    def limit_seconds(self, parameters: dict[str, Any]) -> float:
        """The time limit, in seconds of working time."""
        return parameters["max_days"] * DAY

    def limit_details(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """How the limit is shown in a failure's details."""
        return {"max_days": parameters["max_days"]}

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
        limit = self.limit_seconds(parameters) * multiplier
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
                    **self.limit_details(parameters),
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
            limit = self.limit_seconds(parameters) * multiplier
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
                    **self.limit_details(parameters),
                    "unit": parameters["unit"],
                    "limit_multiplier": limit / self.limit_seconds(parameters),
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
        **calendar_parameters("What the limit counts.", default_unit=SlaUnit.BUSINESS_DAYS),
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
        reason = event_reason(event)
        details: dict[str, Any] = {"last_stage": context.left_stage, "found_by": "withdrawal"}
        if reason:
            details["reason"] = reason
        return [
            detection_for(
                version,
                context.application,
                dedupe_key=f"withdrawn:{event.id}",
                occurred_at=event.occurred_at,
                details=details,
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


class SchedulingMissedDetector(StageSlaDetector):
    """Interview scheduling that failed: none scheduled within N working hours of entering
    the interview stage, an interview cancelled and not rescheduled within N working hours,
    or a candidate who did not show up.
    """

    kind = DetectorKind.SCHEDULING_MISSED
    clock_label = "category_entered_at"
    parameters: dict[str, Parameter] = {
        "max_hours": IntParameter(1, 2000, "Working hours allowed to schedule an interview."),
        **calendar_parameters("What the hours count.", default_unit=SlaUnit.BUSINESS_DAYS),
    }

    def limit_seconds(self, parameters: dict[str, Any]) -> float:
        return parameters["max_hours"] * 3600.0

    def limit_details(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return {"max_hours": parameters["max_hours"]}

    def scan_key(self, category: str, clock_start: datetime) -> str:
        return f"unscheduled:{clock_start.isoformat()}"

    def waiting(self, version: "DefinitionVersion", cutoff: datetime) -> QuerySet:
        from failures.models import Interview

        scheduled = Interview.objects.filter(
            application_id=OuterRef("pk"), scheduled_at__gte=OuterRef("category_entered_at")
        )
        return super().waiting(version, cutoff).filter(~Exists(scheduled))

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        from failures.models import Interview

        event, application = context.event, context.application
        if (
            event.interview is None
            or application.stage_category != version.definition.stage_category
        ):
            return []
        _, exempt = strategic_treatment(version, application.job.is_strategic)
        base = {
            "application_id": application.pk,
            "candidate_id": application.candidate_id,
            "job_id": application.job_id,
            "exempt_reason": exempt,
            "event_reason": event_reason(event),
        }
        if event.kind == EventKind.INTERVIEW_NO_SHOW:
            return [
                Detection(
                    dedupe_key=f"no-show:{event.interview.id}",
                    occurred_at=event.occurred_at,
                    details={"interview": event.interview.id, "found_by": "no_show"},
                    **base,
                )
            ]
        if event.kind != EventKind.INTERVIEW_SCHEDULED:
            return []
        entered = application.category_entered_at
        earlier = Interview.objects.filter(
            application=application, scheduled_at__gte=entered, scheduled_at__lt=event.occurred_at
        ).exclude(ats_id=event.interview.id)
        if entered is None or earlier.exists():
            return []
        parameters = self.validate_parameters(version.parameters)
        multiplier, _ = strategic_treatment(version, application.job.is_strategic)
        limit = self.limit_seconds(parameters) * multiplier
        calendar = self.calendar(parameters, application.job.region)
        if calendar.working_seconds(entered, event.occurred_at) <= limit:
            return []
        return [
            Detection(
                dedupe_key=self.scan_key(version.definition.stage_category, entered),
                occurred_at=calendar.add_working_time(entered, limit),
                details={
                    "category_entered_at": entered.isoformat(),
                    "found_by": "late_schedule",
                    **self.limit_details(parameters),
                },
                **base,
            )
        ]

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import Failure, Interview

        yield from super().scan(version, now)
        # Cancelled and never rescheduled: the cancellation starts the clock.
        parameters = self.validate_parameters(version.parameters)
        limit = self.limit_seconds(parameters)
        rescheduled = Interview.objects.filter(
            application_id=OuterRef("application_id"), scheduled_at__gt=OuterRef("cancelled_at")
        )
        recorded = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("application_id"),
            dedupe_key=Concat(Value("cancelled:"), OuterRef("ats_id")),
        )
        cancelled = (
            Interview.objects.filter(
                application__organization_id=version.definition.organization_id,
                application__status=ApplicationStatus.ACTIVE,
                cancelled_at__isnull=False,
            )
            .filter(~Exists(rescheduled), ~Exists(recorded))
            .select_related("application__job__region")
            .order_by("pk")
        )
        for interview in cancelled.iterator(chunk_size=2000):
            application = interview.application
            calendar = self.calendar(parameters, application.job.region)
            deadline = calendar.add_working_time(interview.cancelled_at, limit)
            if deadline >= now:
                continue
            _, exempt = strategic_treatment(version, application.job.is_strategic)
            yield Detection(
                application_id=application.pk,
                candidate_id=application.candidate_id,
                job_id=application.job_id,
                dedupe_key=f"cancelled:{interview.ats_id}",
                occurred_at=deadline,
                details={
                    "interview": interview.ats_id,
                    "found_by": "cancelled",
                    **self.limit_details(parameters),
                },
                exempt_reason=exempt,
            )


class FeedbackOverdueDetector(Detector):
    """An interviewer's scorecard not submitted within N hours of the interview."""

    kind = DetectorKind.FEEDBACK_OVERDUE
    scans = True
    parameters: dict[str, Parameter] = {
        "max_hours": IntParameter(1, 2000, "Hours allowed to submit the scorecard."),
        **calendar_parameters("What the hours count.", default_unit=SlaUnit.CALENDAR_DAYS),
    }

    def _detection(self, version, interview, deadline, found_by: str) -> Detection:  # type: ignore[no-untyped-def]
        application = interview.application
        _, exempt = strategic_treatment(version, application.job.is_strategic)
        return Detection(
            application_id=application.pk,
            candidate_id=application.candidate_id,
            job_id=application.job_id,
            dedupe_key=f"scorecard:{interview.ats_id}",
            occurred_at=deadline,
            details={"interview": interview.ats_id, "found_by": found_by},
            exempt_reason=exempt,
        )

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        from failures.models import Interview

        event = context.event
        if event.kind != EventKind.SCORECARD_SUBMITTED or event.interview is None:
            return []
        interview = (
            Interview.objects.select_related("application__job__region")
            .filter(application=context.application, ats_id=event.interview.id)
            .first()
        )
        if interview is None or interview.completed_at is None:
            return []
        parameters = self.validate_parameters(version.parameters)
        calendar = sla_calendar(parameters, interview.application.job.region)
        limit = parameters["max_hours"] * 3600.0
        if calendar.working_seconds(interview.completed_at, event.occurred_at) <= limit:
            return []
        deadline = calendar.add_working_time(interview.completed_at, limit)
        return [self._detection(version, interview, deadline, "late_scorecard")]

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import Failure, Interview

        parameters = self.validate_parameters(version.parameters)
        limit = parameters["max_hours"] * 3600.0
        recorded = Failure.objects.filter(
            definition_id=version.definition_id,
            application_id=OuterRef("application_id"),
            dedupe_key=Concat(Value("scorecard:"), OuterRef("ats_id")),
        )
        overdue = (
            Interview.objects.filter(
                application__organization_id=version.definition.organization_id,
                completed_at__isnull=False,
                completed_at__lt=now - timedelta(seconds=limit),
                scorecard_submitted_at__isnull=True,
            )
            .filter(~Exists(recorded))
            .select_related("application__job__region")
            .order_by("pk")
        )
        for interview in overdue.iterator(chunk_size=2000):
            calendar = sla_calendar(parameters, interview.application.job.region)
            deadline = calendar.add_working_time(interview.completed_at, limit)
            if deadline < now:
                yield self._detection(version, interview, deadline, "scan")


class ApprovalMissingDetector(Detector):
    """An offer extended before (or without) the required approval."""

    kind = DetectorKind.APPROVAL_MISSING

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        event, application = context.event, context.application
        if event.kind != EventKind.OFFER_EXTENDED:
            return []
        approved = application.offer_approved_at
        if approved is not None and approved <= event.occurred_at:
            return []
        return [
            detection_for(
                version,
                application,
                dedupe_key=f"unapproved:{event.id}",
                occurred_at=event.occurred_at,
                details={"event_id": event.id},
            )
        ]


class IntegrationErrorDetector(Detector):
    """An external system failing persistently for an application.

    Errors are looked at in windows opened by the first error: a window in which the system
    recovered, or with fewer than `min_errors` errors, was transient and is ignored; one
    with `min_errors` errors and no recovery is a failure (occurring at its last counted
    error). Windows are judged once they have closed.
    """

    kind = DetectorKind.INTEGRATION_ERROR
    scans = True
    parameters: dict[str, Parameter] = {
        "window_minutes": IntParameter(
            1, 10080, "Minutes a burst of errors is judged over.", default=60
        ),
        "min_errors": IntParameter(
            1, 100, "Errors in a window that make it persistent.", default=3
        ),
    }

    def scan(self, version: "DefinitionVersion", now: datetime) -> Iterator[Detection]:
        from failures.models import IntegrationError

        parameters = self.validate_parameters(version.parameters)
        window = timedelta(minutes=parameters["window_minutes"])
        errors = (
            IntegrationError.objects.filter(
                application__organization_id=version.definition.organization_id,
                occurred_at__lt=now - window,
            )
            .select_related("application__job")
            .order_by("application_id", "system", "occurred_at")
        )
        group: list = []
        for error in errors.iterator(chunk_size=2000):
            if group and (group[0].application_id, group[0].system) != (
                error.application_id,
                error.system,
            ):
                yield from self._judge(version, group, window, parameters["min_errors"], now)
                group = []
            group.append(error)
        if group:
            yield from self._judge(version, group, window, parameters["min_errors"], now)

    def _judge(self, version, errors, window, min_errors, now) -> Iterator[Detection]:  # type: ignore[no-untyped-def]
        start = 0
        while start < len(errors):
            opened = errors[start].occurred_at
            closes = opened + window
            if closes > now:
                return  # still open: judged by a later scan
            burst = [e for e in errors[start:] if e.occurred_at < closes]
            recovered = any(e.recovered_at is not None and e.recovered_at <= closes for e in burst)
            if not recovered and len(burst) >= min_errors:
                application = burst[0].application
                _, exempt = strategic_treatment(version, application.job.is_strategic)
                yield Detection(
                    application_id=application.pk,
                    candidate_id=application.candidate_id,
                    job_id=application.job_id,
                    dedupe_key=f"integration:{burst[0].system}:{opened.isoformat()}",
                    occurred_at=burst[min_errors - 1].occurred_at,
                    details={
                        "system": burst[0].system,
                        "errors": len(burst),
                        "first_event": burst[0].event_id,
                        "found_by": "scan",
                    },
                    exempt_reason=exempt,
                )
            start += len(burst)


class BadHireDetector(Detector):
    """A hire whose employment ends within N days of starting (an outcome failure)."""

    kind = DetectorKind.BAD_HIRE
    parameters: dict[str, Parameter] = {
        "max_days": IntParameter(1, 730, "Days after the start within which leaving counts."),
    }

    def on_event(self, version: "DefinitionVersion", context: EventContext) -> list[Detection]:
        event, application = context.event, context.application
        if event.kind != EventKind.EMPLOYMENT_ENDED or application.hired_at is None:
            return []
        parameters = self.validate_parameters(version.parameters)
        employed = event.occurred_at - application.hired_at
        if employed > timedelta(days=parameters["max_days"]) or employed.total_seconds() < 0:
            return []
        reason = event_reason(event)
        details: dict[str, Any] = {"days_employed": employed.days, "found_by": "event"}
        if reason:
            details["reason"] = reason
        return [
            detection_for(
                version,
                application,
                dedupe_key=f"bad-hire:{event.id}",
                occurred_at=event.occurred_at,
                details=details,
                event_reason=reason,
            )
        ]


DETECTORS: dict[str, Detector] = {
    detector.kind: detector
    for detector in (
        OfferDeclinedDetector(),
        StageSlaDetector(),
        CandidateDropOffDetector(),
        RecruiterInactivityDetector(),
        SchedulingMissedDetector(),
        FeedbackOverdueDetector(),
        ApprovalMissingDetector(),
        IntegrationErrorDetector(),
        BadHireDetector(),
    )
}


def detector_for(kind: str) -> Detector:
    """The detector of a kind; ValidationError for an unknown kind."""
    try:
        return DETECTORS[kind]
    except KeyError:
        raise ValidationError({"detector": f"Unknown detector kind {kind!r}."}) from None
