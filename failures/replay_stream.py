"""Replaying definition versions by streaming the event log, one application at a time.

What a replay must produce is what re-recording the organization's events in time order
into an empty organization, whose only rules are the versions compared, and scanning at the
end of the period would record (`replay.version_replay_recorded` does exactly that, at
recording speed). Every rule there is about one application: its mirror (stage, holds,
interviews, integration errors, hire) is shaped by its own events only, and a failure
belongs to one application. Only jobs are shared, and only a few of their attributes
matter to detection (strategic flag, seniority, region; the team for the report).

So this module reads the log in chunks of applications, each application's events in time
order, keeps that one application's mirror in memory, runs the detectors on each event and
the scan's rules at the end of the period, and adds its failures to the totals before it
forgets the application. Jobs' attributes come from a timeline of their changes (one SQL
query, a few rows per job), looked up at each event's place in the global order. Nothing
is written; memory holds one chunk of applications, the job timelines and the result.

Detectors whose `on_event` reads nothing from the database are called as they are, with
the in-memory application; the three that query holds or interviews (stage SLA,
scheduling, feedback) and every scan are evaluated here with the same rules, over the
in-memory mirror. tests/failures/test_replay.py holds this path equal to re-recording for
every detector kind.
"""

import heapq
import itertools
import json
import logging
import multiprocessing
import os
import queue
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection as db
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from failures.business_days import Hold, WorkingCalendar
from failures.choices import (
    INTERVIEW_KINDS,
    ApplicationStatus,
    DetectorKind,
    EventKind,
    FailureStatus,
    ReopenPolicy,
    StageCategory,
    VersionStatus,
)
from failures.detectors import (
    Detection,
    EventContext,
    detector_for,
    event_reason,
    sla_calendar,
    strategic_treatment,
)
from failures.events import (
    _KIND_PATTERN,
    MAX_CLOCK_SKEW,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    ApplicationRef,
    CanonicalEvent,
    EventInvalid,
    InterviewRef,
    JobRef,
    StageRef,
    event_parse,
)
from failures.models import (
    DefinitionVersion,
    FailureDefinition,
    Organization,
    Region,
    StageMapping,
)

CHUNK_APPLICATIONS = 2000
_ACTIVE = ApplicationStatus.ACTIVE
_OPEN_STATUSES = (FailureStatus.OPEN, FailureStatus.ACKNOWLEDGED)
_REOPEN_STATUS = {
    ReopenPolicy.RESOLVE: FailureStatus.RESOLVED,
    ReopenPolicy.DISMISS: FailureStatus.DISMISSED,
}
_TERMINAL = {
    EventKind.APPLICATION_REJECTED: (ApplicationStatus.REJECTED, StageCategory.CLOSED, "Rejected"),
    EventKind.APPLICATION_WITHDRAWN: (
        ApplicationStatus.WITHDRAWN,
        StageCategory.CLOSED,
        "Withdrawn",
    ),
    EventKind.APPLICATION_HIRED: (ApplicationStatus.HIRED, StageCategory.HIRED, "Hired"),
}
_INTERVIEW_FIELD = {
    EventKind.INTERVIEW_CANCELLED: "cancelled_at",
    EventKind.INTERVIEW_COMPLETED: "completed_at",
    EventKind.INTERVIEW_NO_SHOW: "no_show_at",
    EventKind.SCORECARD_SUBMITTED: "scorecard_submitted_at",
}
_HOLD_KINDS = (EventKind.APPLICATION_ON_HOLD, EventKind.APPLICATION_RESUMED)
_INTEGRATION_KINDS = (EventKind.INTEGRATION_ERROR, EventKind.INTEGRATION_RECOVERED)

logger = logging.getLogger(__name__)


# --- Reading events fast, exactly as event_parse would --------------------------------------

# In JSON text a control character or a lone surrogate can only appear escaped (with a
# backslash) or, for U+007F-U+009F, raw: text with neither holds none in any string or key.
_NEEDS_FULL_CHECK = re.compile("[\\\\\x7f-\x9f]")
_EVENT_KEYS = frozenset(
    {"id", "kind", "occurred_at", "application", "job", "stage", "interview", "actor", "details"}
)


class _Slow(Exception):
    """The fast reader is not sure: `event_parse` decides."""


def _text(data: dict, key: str, *, required: bool, limit: int = MAX_TEXT_LENGTH) -> str | None:
    # `events._text` without the per-character scan, which `_NEEDS_FULL_CHECK` replaced.
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _Slow
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Slow
    value = str(value).strip()
    if (required and not value) or len(value) > limit:
        raise _Slow
    return value


def _moment(data: dict, key: str, latest: datetime, *, required: bool) -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _Slow
        return None
    if not isinstance(value, str):
        raise _Slow
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed > latest:
        raise _Slow
    return parsed


def _flat(value: Any) -> dict:
    if not isinstance(value, dict):
        raise _Slow
    return value


class EventReader:
    """`event_parse` for stored events, several times faster on the common shape.

    A stored event was validated when it arrived; a replay still validates it again (an
    event today's rules refuse is skipped, as re-recording would). The reader does the
    same checks as `event_parse` except the character-by-character ones, which one regular
    expression over the JSON text makes unnecessary, and hands anything unusual (escapes,
    deep nesting, a wrong type, a limit exceeded, a future timestamp) to `event_parse`
    itself. References shared by consecutive events of an application are parsed once.
    """

    def __init__(self) -> None:
        # A timestamp valid now stays valid; one beyond this is re-checked by event_parse.
        self.latest = timezone.now() + MAX_CLOCK_SKEW
        self._application: tuple[Any, ApplicationRef | None] = (None, None)
        self._job: tuple[Any, JobRef | None] = (None, None)
        self._stage: tuple[Any, StageRef | None] = (None, None)
        self._actor: tuple[Any, tuple[str, str] | None] = (None, None)
        self._kinds: dict[str, str] = {}  # kinds already validated, as given -> as read

    def read(self, text: str) -> CanonicalEvent:
        """The event in `text`; EventInvalid when event_parse refuses it."""
        plain = text.isascii() and "\\" not in text
        if (not plain and _NEEDS_FULL_CHECK.search(text)) or (
            text.count("{") + text.count("[") > MAX_DEPTH
        ):
            return event_parse(json.loads(text))
        data = json.loads(text)
        try:
            return self._read(data)
        except _Slow:
            return event_parse(data)

    def _read(self, data: Any) -> CanonicalEvent:
        if not isinstance(data, dict) or not _EVENT_KEYS.issuperset(data):
            raise _Slow
        event_id = _text(data, "id", required=True, limit=MAX_ID_LENGTH)
        given_kind = data.get("kind")
        kind = self._kinds.get(given_kind) if isinstance(given_kind, str) else None
        if kind is None:
            kind = _text(data, "kind", required=True, limit=80)
            if not _KIND_PATTERN.match(kind):  # type: ignore[arg-type]
                raise _Slow
            if isinstance(given_kind, str):
                self._kinds[given_kind] = kind  # type: ignore[assignment]
        occurred_at = _moment(data, "occurred_at", self.latest, required=True)
        app_data = data.get("application")
        if app_data is None:
            raise _Slow  # every replayed event names its application
        application = self._application_ref(app_data)
        job = self._job_ref(data.get("job"))
        stage = None
        stage_data = data.get("stage")
        if stage_data is None:
            if kind == EventKind.APPLICATION_STAGE_CHANGED:
                raise _Slow
        elif self._stage[1] is not None and stage_data == self._stage[0]:
            stage = self._stage[1]
        else:
            stage_data = _flat(stage_data)
            category = _text(stage_data, "category", required=False, limit=20)
            if category is not None and category not in StageCategory.values:
                raise _Slow
            name = _text(stage_data, "name", required=True, limit=200)
            stage = StageRef(name=name, category=category)  # type: ignore[arg-type]
            self._stage = (stage_data, stage)
        interview = None
        interview_data = data.get("interview")
        if interview_data is None:
            if kind in INTERVIEW_KINDS:
                raise _Slow
        else:
            interview_data = _flat(interview_data)
            scheduled_for = interview_data.get("scheduled_for")
            if scheduled_for is not None:
                if not isinstance(scheduled_for, str):
                    raise _Slow
                try:
                    scheduled_for = parse_datetime(scheduled_for)
                except ValueError:
                    scheduled_for = None
                if scheduled_for is None or scheduled_for.tzinfo is None:
                    raise _Slow
            interview = InterviewRef(
                id=_text(interview_data, "id", required=True, limit=MAX_ID_LENGTH),  # type: ignore[arg-type]
                scheduled_for=scheduled_for,
            )
        actor = data.get("actor")
        if self._actor[1] is not None and actor == self._actor[0]:
            actor_id, actor_role = self._actor[1]
        else:
            actor_data = {} if actor is None else _flat(actor)
            actor_id = _text(actor_data, "id", required=False, limit=MAX_ID_LENGTH) or ""
            actor_role = _text(actor_data, "role", required=False, limit=60) or ""
            self._actor = (actor, (actor_id, actor_role))
        details = data.get("details")
        details = {} if details is None else _flat(details)
        return CanonicalEvent(
            id=event_id,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            occurred_at=occurred_at,  # type: ignore[arg-type]
            application=application,
            job=job,
            stage=stage,
            interview=interview,
            actor_id=actor_id,
            actor_role=actor_role,
            details=details,
            raw=data,
        )

    def _application_ref(self, app_data: Any) -> ApplicationRef:
        last_data, last_ref = self._application
        if last_ref is not None and app_data == last_data:
            return last_ref
        app_data = _flat(app_data)
        ref = ApplicationRef(
            id=_text(app_data, "id", required=True, limit=MAX_ID_LENGTH),  # type: ignore[arg-type]
            candidate_id=_text(app_data, "candidate_id", required=True, limit=MAX_ID_LENGTH),  # type: ignore[arg-type]
            source=_text(app_data, "source", required=False),
            applied_at=_moment(app_data, "applied_at", self.latest, required=False),
        )
        self._application = (app_data, ref)
        return ref

    def _job_ref(self, job_data: Any) -> JobRef:
        last_data, last_ref = self._job
        if last_ref is not None and job_data == last_data:
            return last_ref
        job_data = _flat(job_data)
        strategic = job_data.get("is_strategic")
        if strategic is not None and not isinstance(strategic, bool):
            raise _Slow
        seniority = job_data.get("seniority")
        if seniority is not None and (
            isinstance(seniority, bool)
            or not isinstance(seniority, int)
            or not 0 <= seniority <= 20
        ):
            raise _Slow
        ref = JobRef(
            id=_text(job_data, "id", required=True, limit=MAX_ID_LENGTH),  # type: ignore[arg-type]
            title=_text(job_data, "title", required=False),
            team=_text(job_data, "team", required=False, limit=120),
            region=_text(job_data, "region", required=False, limit=40),
            department=_text(job_data, "department", required=False),
            job_family=_text(job_data, "job_family", required=False),
            hiring_manager_ats_id=_text(
                job_data, "hiring_manager_id", required=False, limit=MAX_ID_LENGTH
            ),
            recruiter_ats_id=_text(job_data, "recruiter_id", required=False, limit=MAX_ID_LENGTH),
            opened_at=_moment(job_data, "opened_at", self.latest, required=False),
            closed_at=_moment(job_data, "closed_at", self.latest, required=False),
            is_strategic=strategic,
            seniority=seniority,
        )
        self._job = (job_data, ref)
        return ref


# --- Jobs: the attributes detection reads, as they stood at each event ------------------------


@dataclass(frozen=True)
class RegionCalendar:
    """What a job's region contributes to a working calendar."""

    code: str
    holiday_country: str = ""
    holiday_subdivision: str = ""
    timezone: str = "UTC"


@dataclass(frozen=True)
class JobState:
    """A job as detection sees it at one moment."""

    is_strategic: bool = False
    seniority: int | None = None
    region: RegionCalendar | None = None
    team: str | None = None


_NEW_JOB = JobState()
_TIMELINE_SQL = """
    SELECT connection_id, job_id, occurred_at, id, strategic, seniority, region, team FROM (
        SELECT ev.*,
               lag(strategic) OVER w AS strategic_before,
               lag(seniority) OVER w AS seniority_before,
               lag(region) OVER w AS region_before,
               lag(team) OVER w AS team_before,
               row_number() OVER w AS n
        FROM (
            SELECT e.connection_id, btrim(e.payload->'job'->>'id') AS job_id, e.occurred_at,
                   e.id, e.payload->'job'->'is_strategic' AS strategic,
                   e.payload->'job'->'seniority' AS seniority,
                   e.payload->'job'->>'region' AS region, e.payload->'job'->>'team' AS team
            FROM failures_recruitingevent e
            JOIN failures_application a ON a.id = e.application_id
            WHERE {where}
            OFFSET 0  -- sort the few extracted columns, not the whole events
        ) ev
        WINDOW w AS (PARTITION BY connection_id, job_id ORDER BY occurred_at, id)
    ) changes
    WHERE n = 1 OR strategic IS DISTINCT FROM strategic_before
       OR seniority IS DISTINCT FROM seniority_before
       OR region IS DISTINCT FROM region_before OR team IS DISTINCT FROM team_before
    ORDER BY connection_id, job_id, occurred_at, id
"""


def _given_text(value: Any, limit: int) -> str | None:
    """A job text attribute as `_job_upsert` applies it (None: not given, or refused)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text if len(text) <= limit else None


class JobBook:
    """Each job's attributes over time, from the events of the replay (a few rows per job).

    Only rows where an attribute differs from the job's previous event are read; applying
    one that repeats a value changes nothing, so the fold equals `_job_upsert` event by
    event. Events later found invalid are left out by a second build (`without`).
    """

    def __init__(
        self, regions: dict[str, RegionCalendar], where: str, params: dict, without: set[int]
    ) -> None:
        if without:
            where += " AND NOT (e.id = ANY(%(without)s))"
            params = {**params, "without": sorted(without)}
        self.regions = regions
        self.event_ids: set[int] = set()
        self._timelines: dict[tuple[Any, str], tuple[list[tuple[datetime, int]], list]] = {}
        with db.cursor() as cursor:
            cursor.execute(_TIMELINE_SQL.format(where=where), params)
            for conn_id, job_id, at, pk, strategic, seniority, region, team in cursor:
                self.event_ids.add(pk)
                keys, states = self._timelines.setdefault((conn_id, job_id), ([], []))
                state = states[-1] if states else _NEW_JOB
                state = self._apply(state, strategic, seniority, region, team)
                keys.append((at, pk))
                states.append(state)

    def _apply(self, state: JobState, strategic: Any, seniority: Any, region: Any, team: Any):  # type: ignore[no-untyped-def]
        if isinstance(strategic, str):  # jsonb arrives as text through a raw cursor
            strategic = json.loads(strategic)
        if isinstance(seniority, str):
            seniority = json.loads(seniority)
        changes: dict[str, Any] = {}
        if isinstance(strategic, bool):
            changes["is_strategic"] = strategic
        if isinstance(seniority, int) and not isinstance(seniority, bool):
            changes["seniority"] = seniority
        code = _given_text(region, 40)
        if code is not None:
            changes["region"] = self.regions.get(code) or RegionCalendar(code=code)
        name = _given_text(team, 120)
        if name is not None:
            changes["team"] = name
        return JobState(**{**state.__dict__, **changes}) if changes else state

    def at(self, connection_id: Any, job_id: str, key: tuple[datetime, int]) -> JobState:
        """The job after the event at `key` (occurred_at, pk) of the global order."""
        timeline = self._timelines.get((connection_id, job_id))
        if timeline is None:
            return _NEW_JOB
        keys, states = timeline
        if len(keys) == 1:
            return states[0] if key >= keys[0] else _NEW_JOB
        index = bisect_right(keys, key)
        return states[index - 1] if index else _NEW_JOB

    def final(self, connection_id: Any, job_id: str) -> JobState:
        """The job after every event of the replay."""
        timeline = self._timelines.get((connection_id, job_id))
        return timeline[1][-1] if timeline else _NEW_JOB


# --- One application's mirror -----------------------------------------------------------------


class _Interview:
    __slots__ = (
        "ats_id",
        "cancelled_at",
        "completed_at",
        "no_show_at",
        "scheduled_at",
        "scheduled_for",
        "scorecard_submitted_at",
    )

    def __init__(self, ats_id: str, scheduled_at: datetime, scheduled_for: datetime | None):
        self.ats_id = ats_id
        self.scheduled_at = scheduled_at
        self.scheduled_for = scheduled_for
        self.cancelled_at = self.completed_at = self.no_show_at = None
        self.scorecard_submitted_at = None


class _Error:
    __slots__ = ("event_id", "occurred_at", "recovered_at", "system")

    def __init__(self, system: str, occurred_at: datetime, event_id: str) -> None:
        self.system = system
        self.occurred_at = occurred_at
        self.recovered_at: datetime | None = None
        self.event_id = event_id


class _Found:
    __slots__ = ("details", "key", "occurred_at", "status")

    def __init__(self, key: str, occurred_at: datetime, details: dict, status: str) -> None:
        self.key = key
        self.occurred_at = occurred_at
        self.details = details
        self.status = status


class MirrorApplication:
    """One application's mirror, as `services.event_record` would keep it in the database.

    Timestamps are kept in UTC, as they come back from the database.
    """

    __slots__ = (
        "applied_at",
        "ats_id",
        "candidate_ats_id",
        "candidate_id",
        "category_entered_at",
        "closed_at",
        "connection_id",
        "current_stage",
        "errors",
        "found",
        "hired_at",
        "holds",
        "interviews",
        "job",
        "job_ats_id",
        "job_id",
        "last_event_at",
        "last_recruiter_action_at",
        "offer_approved_at",
        "pk",
        "source",
        "stage_category",
        "stage_entered_at",
        "status",
    )

    def __init__(self, pk: int, connection_id: Any, event: CanonicalEvent, job: JobState):
        ref = event.application
        assert ref is not None and event.job is not None
        self.pk = pk
        self.ats_id = ref.id
        self.connection_id = connection_id
        self.candidate_ats_id = ref.candidate_id
        self.job_ats_id = event.job.id
        self.candidate_id = self.job_id = 0  # detections carry them; the report does not
        self.job = job
        self.source = ref.source or ""
        self.current_stage = ""
        self.stage_category = ""
        self.stage_entered_at: datetime | None = None
        self.category_entered_at: datetime | None = None
        self.status = _ACTIVE
        self.applied_at = _utc(ref.applied_at or event.occurred_at)
        self.closed_at: datetime | None = None
        self.last_event_at: datetime | None = None
        self.last_recruiter_action_at: datetime | None = None
        self.offer_approved_at: datetime | None = None
        self.hired_at: datetime | None = None
        self.holds: list[list] = []  # [started_at, ended_at]
        self.interviews: dict[str, _Interview] = {}
        self.errors: list[_Error] = []
        self.found: list[dict[str, _Found]] = []


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


# --- The rules compared ------------------------------------------------------------------------


@dataclass
class RuleTally:
    """What one rule flagged over the period (folded into a ReplayOutcome by the caller)."""

    total: int = 0
    by_team: dict[str, int] = field(default_factory=dict)
    exempted: int = 0
    keys: set[tuple[str, str]] = field(default_factory=set)
    examples: list = field(default_factory=list)  # heap of the earliest


class Rule:
    """One version under replay, as the scratch organization's copy of it would behave."""

    def __init__(self, index: int, version: DefinitionVersion, definition: FailureDefinition):
        self.index = index
        self.version = version
        self.definition = definition
        self.detector = detector_for(version.detector)
        self.kind = version.detector
        self.parameters = self.detector.validate_parameters(version.parameters)
        self.category = definition.stage_category
        self.excluded = {r.strip().lower() for r in version.excluded_reasons or []}
        self.on_reopen = _REOPEN_STATUS.get(version.on_reopen)
        self.tally = RuleTally()
        self._cutoffs: dict[tuple[WorkingCalendar, float], datetime] = {}

    def strategic(self, is_strategic: bool) -> tuple[float, str | None]:
        return strategic_treatment(self.version, is_strategic)

    def cutoff(self, calendar: WorkingCalendar, limit: float, now: datetime) -> datetime:
        key = (calendar, limit)
        if key not in self._cutoffs:
            self._cutoffs[key] = calendar.cutoff(now, limit)
        return self._cutoffs[key]


def rule_copy(index: int, version: DefinitionVersion, code: str) -> Rule:
    """A rule behaving like `replay._rule_copy` makes the version behave, nothing saved."""
    definition = version.definition
    copy = FailureDefinition(
        organization_id=definition.organization_id,
        code=code,
        name=definition.name,
        stage_category=definition.stage_category,
        kind=definition.kind,
        severity=definition.severity,
        owner_role=definition.owner_role,
    )
    version_copy = DefinitionVersion(
        definition=copy,
        number=version.number,
        status=VersionStatus.APPROVED,
        detector=version.detector,
        parameters=version.parameters,
        strategic_policy=version.strategic_policy,
        strategic_multiplier=version.strategic_multiplier,
        excluded_reasons=version.excluded_reasons,
        on_reopen=version.on_reopen,
        compliance_note=version.compliance_note,
    )
    return Rule(index, version_copy, copy)


# --- The replay -----------------------------------------------------------------------------


@dataclass
class StreamResult:
    """Counts of a streamed replay, and each rule's tally."""

    events: int = 0
    skipped: int = 0
    applications: int = 0
    rules: list[Rule] = field(default_factory=list)


class _Replay:
    def __init__(
        self,
        organization: Organization,
        rules: list[Rule],
        start: datetime,
        end: datetime,
        examples: int,
        on_event: Callable[[], None] | None,
    ) -> None:
        self.organization = organization
        self.rules = rules
        self.start, self.end = start, end
        self.examples = examples
        self.on_event = on_event
        self._order = itertools.count()
        self.mapping: dict[str, str] = {}
        for name, category in StageMapping.objects.filter(organization=organization).values_list(
            "stage_name", "category"
        ):
            self.mapping.setdefault(name.upper(), category)
        self.regions = {
            r.code: RegionCalendar(
                code=r.code,
                holiday_country=r.holiday_country,
                holiday_subdivision=r.holiday_subdivision,
                timezone=r.timezone,
            )
            for r in Region.objects.filter(organization=organization)
        }
        self.alive_where = (
            "a.organization_id = %(org)s AND a.applied_at < %(end)s "
            "AND (a.closed_at IS NULL OR a.closed_at >= %(alive_since)s)"
        )
        self.params = {
            "org": organization.pk,
            "end": end,
            "alive_since": start - timedelta(days=365),
        }

    # Reading -----------------------------------------------------------------------------

    def _chunks(self, share: tuple[int, int]) -> Iterator[tuple[dict[int, Any], list[tuple]]]:
        """The alive applications' events, a chunk of applications at a time, in time order.

        `share` (k, n): only applications whose id is k modulo n (one worker's share).
        """
        last = 0
        while True:
            with db.cursor() as cursor:
                cursor.execute(
                    f"SELECT a.id, a.connection_id FROM failures_application a "  # noqa: S608
                    f"WHERE {self.alive_where} AND a.id %% %(workers)s = %(worker)s "
                    "AND a.id > %(after)s ORDER BY a.id LIMIT %(limit)s",
                    {
                        **self.params,
                        "after": last,
                        "limit": CHUNK_APPLICATIONS,
                        "worker": share[0],
                        "workers": share[1],
                    },
                )
                connections = dict(cursor.fetchall())
                if not connections:
                    return
                ids = list(connections)
                last = ids[-1]
                cursor.execute(
                    "SELECT e.application_id, e.id, e.payload::text "
                    "FROM failures_recruitingevent e "
                    "WHERE e.organization_id = %(org)s AND e.occurred_at < %(end)s "
                    "AND e.application_id = ANY(%(ids)s) "
                    "ORDER BY e.application_id, e.occurred_at, e.id",
                    {**self.params, "ids": ids},
                )
                rows = cursor.fetchall()
            yield connections, rows

    def book_build(self, without: set[int]) -> None:
        """The job timelines, leaving out the events in `without`."""
        self.book = JobBook(
            self.regions,
            f"{self.alive_where} AND e.organization_id = %(org)s AND e.occurred_at < %(end)s",
            self.params,
            without,
        )

    def run(
        self, share: tuple[int, int] = (0, 1), done: Any = None
    ) -> tuple[StreamResult, set[int]]:
        """One pass over a share of the applications (the job book built).

        Returns the result and the ids of the events found invalid. `done`, a shared
        counter, is advanced by the events of each chunk (a worker's progress).
        """
        result = StreamResult(rules=self.rules)
        invalid: set[int] = set()
        reader = EventReader()
        on_event = self.on_event
        for connections, rows in self._chunks(share):
            if done is not None:
                with done.get_lock():
                    done.value += len(rows)
            app: MirrorApplication | None = None
            current_id = connection_id = None
            for application_id, pk, text in rows:
                if application_id != current_id:
                    if app is not None:
                        self._finish(app, result)
                    app, current_id = None, application_id
                    connection_id = connections[application_id]
                result.events += 1
                if on_event:
                    on_event()
                try:
                    event = reader.read(text)
                    # The log's occurred_at column is the event's own (both from one parse).
                    key = (event.occurred_at, pk)
                    app = self._record(app, application_id, connection_id, key, event)
                except EventInvalid:
                    # Accepted once, refused by today's validation: counted, not replayed.
                    result.skipped += 1
                    invalid.add(pk)
            if app is not None:
                self._finish(app, result)
        return result, invalid

    # Recording, as services.event_record does it --------------------------------------------

    def _record(
        self,
        app: MirrorApplication | None,
        application_id: int,
        connection_id: Any,
        key: tuple[datetime, int],
        event: CanonicalEvent,
    ) -> MirrorApplication:
        category = None
        if event.stage is not None:
            category = event.stage.category or self.mapping.get(event.stage.name.upper())
            if category is None:
                raise EventInvalid("stage.category", "Stage is not mapped.")
        ref = event.application
        if ref is None or event.job is None:
            return app  # today's rules see no application in it: recording keeps only the job
        job = self.book.at(connection_id, event.job.id, key)
        if app is None:
            app = MirrorApplication(application_id, connection_id, event, job)
            app.found = [{} for _ in self.rules]
        else:
            if app.candidate_ats_id != ref.candidate_id:
                raise EventInvalid("application.candidate_id", "Another candidate.")
            if app.job_ats_id != event.job.id:
                raise EventInvalid("job.id", "Another job.")
            if ref.source and not app.source:
                app.source = ref.source
            app.job = job
        context = self._apply(app, event, category)
        for rule in self.rules:
            for detection in self._on_event(rule, context):
                reason = (detection.event_reason or "").strip().lower()
                if reason and reason in rule.excluded:
                    continue  # compliance: counted by recording, never a failure
                self._found(rule, app, detection)
        return app

    def _apply(
        self, app: MirrorApplication, event: CanonicalEvent, category: str | None
    ) -> EventContext:
        kind = event.kind
        at = _utc(event.occurred_at)
        context = None
        terminal = _TERMINAL.get(kind)
        if kind in _HOLD_KINDS:
            open_hold = max(
                (h for h in app.holds if h[1] is None), key=lambda h: h[0], default=None
            )
            if kind == EventKind.APPLICATION_ON_HOLD:
                if open_hold is None:
                    app.holds.append([at, None])
            elif open_hold is not None and at >= open_hold[0]:
                open_hold[1] = at
        elif kind == EventKind.OFFER_APPROVED:
            app.offer_approved_at = at
        elif kind in INTERVIEW_KINDS:
            self._interview(app, event, at)
        elif kind in _INTEGRATION_KINDS:
            system = str(event.details.get("system") or "unknown")[:100]
            if kind == EventKind.INTEGRATION_ERROR:
                app.errors.append(_Error(system, at, event.id))
            else:
                for error in app.errors:
                    if (
                        error.system == system
                        and error.recovered_at is None
                        and error.occurred_at <= at
                    ):
                        error.recovered_at = at
        elif terminal is not None:
            status, terminal_category, label = terminal
            if app.status == _ACTIVE:
                context, moved = self._move(app, label, terminal_category, event, at)
                if moved:
                    app.status = status
                    app.closed_at = at
                    if kind == EventKind.APPLICATION_HIRED:
                        app.hired_at = at
        elif (
            event.stage is not None
            and category is not None
            and (app.current_stage != event.stage.name or app.stage_category != category)
        ):
            context, moved = self._move(app, event.stage.name, category, event, at)
            reopens = category not in (StageCategory.CLOSED, StageCategory.HIRED)
            if moved and reopens and app.status != _ACTIVE:
                # Moved back into the pipeline: the ATS re-opened the application.
                app.status = _ACTIVE
                app.closed_at = None
                self._reopen(app)
        if app.last_event_at is None or at > app.last_event_at:
            app.last_event_at = at
        if event.actor_role.lower() == "recruiter" and (
            app.last_recruiter_action_at is None or at > app.last_recruiter_action_at
        ):
            app.last_recruiter_action_at = at
        return context or EventContext(event=event, application=app)  # type: ignore[arg-type]

    @staticmethod
    def _move(
        app: MirrorApplication, stage: str, category: str, event: CanonicalEvent, at: datetime
    ) -> tuple[EventContext | None, bool]:
        if app.stage_entered_at is not None and at < app.stage_entered_at:
            return None, False  # an older event arriving late: history, not "now"
        left_category = left_entered = None
        left_stage = app.current_stage or None
        if app.stage_category and app.stage_category != category:
            left_category = app.stage_category
            left_entered = app.category_entered_at
        if app.stage_category != category or app.category_entered_at is None:
            app.category_entered_at = at
        app.current_stage = stage
        app.stage_category = category
        app.stage_entered_at = at
        context = EventContext(
            event=event,
            application=app,  # type: ignore[arg-type]
            left_category=left_category,
            left_category_entered_at=left_entered,
            left_stage=left_stage,
        )
        return context, True

    @staticmethod
    def _interview(app: MirrorApplication, event: CanonicalEvent, at: datetime) -> None:
        ref = event.interview
        assert ref is not None
        interview = app.interviews.get(ref.id)
        if interview is None:
            interview = app.interviews[ref.id] = _Interview(ref.id, at, ref.scheduled_for)
        elif event.kind == EventKind.INTERVIEW_SCHEDULED:
            interview.scheduled_at, interview.scheduled_for = at, ref.scheduled_for
            interview.cancelled_at = None
        attribute = _INTERVIEW_FIELD.get(event.kind)
        if attribute is not None and getattr(interview, attribute) is None:
            setattr(interview, attribute, at)

    def _reopen(self, app: MirrorApplication) -> None:
        for rule in self.rules:
            if rule.on_reopen is None:
                continue
            for found in app.found[rule.index].values():
                if found.status in _OPEN_STATUSES:
                    found.status = rule.on_reopen

    @staticmethod
    def _found(rule: Rule, app: MirrorApplication, detection: Detection) -> None:
        """Record a detection once per key, as failure_record / the batched scan do."""
        found = app.found[rule.index]
        if detection.dedupe_key in found:
            return
        status = FailureStatus.EXEMPTED if detection.exempt_reason else FailureStatus.OPEN
        found[detection.dedupe_key] = _Found(
            detection.dedupe_key, _utc(detection.occurred_at), detection.details, status
        )

    # On-event detection --------------------------------------------------------------------

    def _on_event(self, rule: Rule, context: EventContext) -> list[Detection]:
        kind = rule.kind
        if kind == DetectorKind.STAGE_SLA:
            return _stage_sla_on_event(rule, context)
        if kind == DetectorKind.SCHEDULING_MISSED:
            return _scheduling_on_event(rule, context)
        if kind == DetectorKind.FEEDBACK_OVERDUE:
            return _feedback_on_event(rule, context)
        # The others read only the application, the job and the event.
        return rule.detector.on_event(rule.version, context)

    # The scan at the end of the period, and the tally -------------------------------------

    def _finish(self, app: MirrorApplication, result: StreamResult) -> None:
        app.job = self.book.final(app.connection_id, app.job_ats_id)
        result.applications += 1
        now = self.end
        for rule in self.rules:
            scan = _SCANS.get(rule.kind)
            if scan is not None:
                for detection in scan(rule, app, now):
                    self._found(rule, app, detection)
            tally = rule.tally
            team = app.job.team or "(no team)"
            for found in app.found[rule.index].values():
                if not self.start <= found.occurred_at < self.end:
                    continue
                tally.total += 1
                tally.by_team[team] = tally.by_team.get(team, 0) + 1
                tally.exempted += found.status == FailureStatus.EXEMPTED
                tally.keys.add((app.ats_id, found.key))
                if self.examples > 0:
                    example = {
                        "application": app.ats_id,
                        "occurred_at": found.occurred_at,
                        "status": found.status,
                        "details": found.details,
                    }
                    item = (-found.occurred_at.timestamp(), next(self._order), example)
                    if len(tally.examples) < self.examples:
                        heapq.heappush(tally.examples, item)
                    elif item > tally.examples[0]:
                        heapq.heapreplace(tally.examples, item)


def _holds(app: MirrorApplication, before: datetime) -> list[Hold]:
    return [Hold(start, end) for start, end in app.holds if start < before]


# --- Detectors that read the mirror, evaluated over the in-memory one ---------------------------


def _stage_sla_on_event(rule: Rule, context: EventContext) -> list[Detection]:
    """`StageSlaDetector.on_event`, with the application's holds from memory."""
    detector, parameters = rule.detector, rule.parameters
    category = rule.category
    entered = context.left_category_entered_at
    if context.left_category != category or entered is None:
        return []
    left_at = context.event.occurred_at
    app: MirrorApplication = context.application  # type: ignore[assignment]
    multiplier, exempt = rule.strategic(app.job.is_strategic)
    limit = detector.limit_seconds(parameters) * multiplier  # type: ignore[attr-defined]
    calendar = detector.calendar(parameters, app.job.region)  # type: ignore[attr-defined]
    holds = _holds(app, left_at)
    if calendar.active_seconds(entered, left_at, holds) <= limit:
        return []
    occurred = calendar.deadline(entered, limit, holds)
    assert occurred is not None
    return [
        Detection(
            application_id=app.pk,
            candidate_id=0,
            job_id=0,
            dedupe_key=detector.dedupe_key(category, entered),  # type: ignore[attr-defined]
            occurred_at=occurred,
            details={
                "category_entered_at": entered.isoformat(),
                "left_at": left_at.isoformat(),
                **detector.limit_details(parameters),  # type: ignore[attr-defined]
                "unit": parameters["unit"],
                "limit_multiplier": multiplier,
                "found_by": "transition",
            },
            exempt_reason=exempt,
            event_reason=event_reason(context.event),
        )
    ]


def _scheduling_on_event(rule: Rule, context: EventContext) -> list[Detection]:
    """`SchedulingMissedDetector.on_event`, with the application's interviews from memory."""
    detector, parameters = rule.detector, rule.parameters
    event = context.event
    app: MirrorApplication = context.application  # type: ignore[assignment]
    if event.interview is None or app.stage_category != rule.category:
        return []
    _, exempt = rule.strategic(app.job.is_strategic)
    base = {
        "application_id": app.pk,
        "candidate_id": 0,
        "job_id": 0,
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
    entered = app.category_entered_at
    if entered is None:
        return []
    if any(
        entered <= other.scheduled_at < event.occurred_at
        for other in app.interviews.values()
        if other.ats_id != event.interview.id
    ):
        return []
    multiplier, _ = rule.strategic(app.job.is_strategic)
    limit = detector.limit_seconds(parameters) * multiplier  # type: ignore[attr-defined]
    calendar = detector.calendar(parameters, app.job.region)  # type: ignore[attr-defined]
    if calendar.working_seconds(entered, event.occurred_at) <= limit:
        return []
    return [
        Detection(
            dedupe_key=detector.scan_key(rule.category, entered),  # type: ignore[attr-defined]
            occurred_at=calendar.add_working_time(entered, limit),
            details={
                "category_entered_at": entered.isoformat(),
                "found_by": "late_schedule",
                **detector.limit_details(parameters),  # type: ignore[attr-defined]
            },
            **base,
        )
    ]


def _feedback_detection(
    rule: Rule, app: MirrorApplication, interview: _Interview, deadline: datetime, found_by: str
) -> Detection:
    _, exempt = rule.strategic(app.job.is_strategic)
    return Detection(
        application_id=app.pk,
        candidate_id=0,
        job_id=0,
        dedupe_key=f"scorecard:{interview.ats_id}",
        occurred_at=deadline,
        details={"interview": interview.ats_id, "found_by": found_by},
        exempt_reason=exempt,
    )


def _feedback_on_event(rule: Rule, context: EventContext) -> list[Detection]:
    """`FeedbackOverdueDetector.on_event`, with the interview from memory."""
    event = context.event
    if event.kind != EventKind.SCORECARD_SUBMITTED or event.interview is None:
        return []
    app: MirrorApplication = context.application  # type: ignore[assignment]
    interview = app.interviews.get(event.interview.id)
    if interview is None or interview.completed_at is None:
        return []
    calendar = sla_calendar(rule.parameters, app.job.region)
    limit = rule.parameters["max_hours"] * 3600.0
    if calendar.working_seconds(interview.completed_at, event.occurred_at) <= limit:
        return []
    deadline = calendar.add_working_time(interview.completed_at, limit)
    return [_feedback_detection(rule, app, interview, deadline, "late_scorecard")]


# --- The periodic scan's rules, for one application at the end of the period -----------------


def _already(app: MirrorApplication, rule: Rule, since: datetime) -> bool:
    """A failure of the rule that occurred at or after `since` (the scans' `already`)."""
    return any(found.occurred_at >= since for found in app.found[rule.index].values())


def _scan_waiting(rule: Rule, app: MirrorApplication, now: datetime) -> Iterator[Detection]:
    """`StageSlaDetector.scan` (and its subclasses' `waiting`) for one application."""
    if app.status != _ACTIVE:
        return
    kind = rule.kind
    if kind == DetectorKind.RECRUITER_INACTIVITY:
        clock = app.last_recruiter_action_at or app.applied_at
    else:
        if app.stage_category != rule.category:
            return
        clock = app.category_entered_at
    if clock is None:
        return
    detector, parameters = rule.detector, rule.parameters
    multiplier, exempt = rule.strategic(app.job.is_strategic)
    limit = detector.limit_seconds(parameters) * multiplier  # type: ignore[attr-defined]
    calendar = detector.calendar(parameters, app.job.region)  # type: ignore[attr-defined]
    if not clock < rule.cutoff(calendar, limit, now):
        return
    if _already(app, rule, clock):
        return
    if kind == DetectorKind.SCHEDULING_MISSED and any(
        interview.scheduled_at >= clock for interview in app.interviews.values()
    ):
        return
    stay_holds = [
        Hold(start, end) for start, end in app.holds if start < now and (end is None or end > clock)
    ]
    if stay_holds:
        occurred = calendar.deadline(clock, limit, stay_holds)
        if occurred is None or occurred >= now:
            return
    else:
        occurred = calendar.add_working_time(clock, limit)
    yield Detection(
        application_id=app.pk,
        candidate_id=0,
        job_id=0,
        dedupe_key=detector.scan_key(rule.category, clock),  # type: ignore[attr-defined]
        occurred_at=occurred,
        details={
            detector.clock_label: clock.isoformat(),  # type: ignore[attr-defined]
            **detector.limit_details(parameters),  # type: ignore[attr-defined]
            "unit": parameters["unit"],
            "limit_multiplier": limit / detector.limit_seconds(parameters),  # type: ignore[attr-defined]
            "found_by": "scan",
        },
        exempt_reason=exempt,
    )


def _scan_scheduling(rule: Rule, app: MirrorApplication, now: datetime) -> Iterator[Detection]:
    """`SchedulingMissedDetector.scan`: still unscheduled, or cancelled and not rescheduled."""
    yield from _scan_waiting(rule, app, now)
    if app.status != _ACTIVE:
        return
    limit = rule.detector.limit_seconds(rule.parameters)  # type: ignore[attr-defined]
    found = app.found[rule.index]
    for interview in app.interviews.values():
        cancelled = interview.cancelled_at
        if cancelled is None or f"cancelled:{interview.ats_id}" in found:
            continue
        if any(other.scheduled_at > cancelled for other in app.interviews.values()):
            continue
        calendar = rule.detector.calendar(rule.parameters, app.job.region)  # type: ignore[attr-defined]
        deadline = calendar.add_working_time(cancelled, limit)
        if deadline >= now:
            continue
        _, exempt = rule.strategic(app.job.is_strategic)
        yield Detection(
            application_id=app.pk,
            candidate_id=0,
            job_id=0,
            dedupe_key=f"cancelled:{interview.ats_id}",
            occurred_at=deadline,
            details={
                "interview": interview.ats_id,
                "found_by": "cancelled",
                **rule.detector.limit_details(rule.parameters),  # type: ignore[attr-defined]
            },
            exempt_reason=exempt,
        )


def _scan_drop_off(rule: Rule, app: MirrorApplication, now: datetime) -> Iterator[Detection]:
    """`CandidateDropOffDetector.scan` for one application."""
    days = rule.parameters["inactive_days"]
    if days == 0 or app.status != _ACTIVE or app.stage_category != rule.category:
        return
    last = app.last_event_at
    limit = timedelta(days=days)
    if last is None or not last < now - limit or _already(app, rule, last):
        return
    _, exempt = rule.strategic(app.job.is_strategic)
    yield Detection(
        application_id=app.pk,
        candidate_id=0,
        job_id=0,
        dedupe_key=f"inactive:{last.isoformat()}",
        occurred_at=last + limit,
        details={"last_stage": app.current_stage, "inactive_days": days, "found_by": "inactivity"},
        exempt_reason=exempt,
    )


def _scan_feedback(rule: Rule, app: MirrorApplication, now: datetime) -> Iterator[Detection]:
    """`FeedbackOverdueDetector.scan` for one application."""
    limit = rule.parameters["max_hours"] * 3600.0
    found = app.found[rule.index]
    for interview in app.interviews.values():
        completed = interview.completed_at
        if (
            completed is None
            or interview.scorecard_submitted_at is not None
            or not completed < now - timedelta(seconds=limit)
            or f"scorecard:{interview.ats_id}" in found
        ):
            continue
        calendar = sla_calendar(rule.parameters, app.job.region)
        deadline = calendar.add_working_time(completed, limit)
        if deadline < now:
            yield _feedback_detection(rule, app, interview, deadline, "scan")


def _scan_integration(rule: Rule, app: MirrorApplication, now: datetime) -> Iterator[Detection]:
    """`IntegrationErrorDetector.scan` for one application: its systems' error windows."""
    window = timedelta(minutes=rule.parameters["window_minutes"])
    min_errors = rule.parameters["min_errors"]
    errors = sorted(
        (e for e in app.errors if e.occurred_at < now - window),
        key=lambda e: (e.system, e.occurred_at),
    )
    by_system: dict[str, list[_Error]] = {}
    for error in errors:
        by_system.setdefault(error.system, []).append(error)
    _, exempt = rule.strategic(app.job.is_strategic)
    for system_errors in by_system.values():
        start = 0
        while start < len(system_errors):
            opened = system_errors[start].occurred_at
            closes = opened + window
            if closes > now:
                break
            burst = [e for e in system_errors[start:] if e.occurred_at < closes]
            recovered = any(e.recovered_at is not None and e.recovered_at <= closes for e in burst)
            if not recovered and len(burst) >= min_errors:
                yield Detection(
                    application_id=app.pk,
                    candidate_id=0,
                    job_id=0,
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


_SCANS: dict[str, Callable[[Rule, MirrorApplication, datetime], Iterator[Detection]]] = {
    DetectorKind.STAGE_SLA: _scan_waiting,
    DetectorKind.RECRUITER_INACTIVITY: _scan_waiting,
    DetectorKind.SCHEDULING_MISSED: _scan_scheduling,
    DetectorKind.CANDIDATE_DROP_OFF: _scan_drop_off,
    DetectorKind.FEEDBACK_OVERDUE: _scan_feedback,
    DetectorKind.INTEGRATION_ERROR: _scan_integration,
}


def replay_stream(
    *,
    organization: Organization,
    rules: list[Rule],
    start: datetime,
    end: datetime,
    examples: int = 10,
    on_event: Callable[[], None] | None = None,
    workers: int | None = None,
) -> StreamResult:
    """Replay the rules over the organization's events of applications alive in [start, end).

    Reads only. With more than one worker (by default one per CPU, on PostgreSQL, outside
    a transaction: a worker has its own connection, which would not see uncommitted rows),
    the applications are shared out by id among forked processes and their tallies added
    up. When some events turn out invalid and had changed a job's attributes, the pass is
    run again with those events left out of the job timelines (re-recording rolls an
    invalid event back whole, its job update included).
    """
    if workers is None:
        workers = os.cpu_count() or 1
    if db.vendor != "postgresql" or db.in_atomic_block:
        workers = 1
    replay = _Replay(organization, rules, start, end, examples, on_event)
    without: set[int] = set()
    while True:
        replay.book_build(without)
        if workers == 1:
            result, invalid = replay.run()
        else:
            try:
                result, invalid = _run_in_workers(replay, workers)
            except WorkerLostConnection as lost:
                # A worker's database connection dropped (a restart, a killed backend): its
                # share is unknown, so the whole pass runs again here, reporting only the
                # progress the workers had not reported yet.
                logger.warning("replay worker lost its database connection; one process")
                for rule in rules:
                    rule.tally = RuleTally()
                replay.on_event = _skipping(replay.on_event, lost.reported)
                result, invalid = replay.run()
        if not (invalid - without) & replay.book.event_ids:
            return result
        without |= invalid
        for rule in rules:
            rule.tally = RuleTally()
        replay.on_event = None  # the progress bar counted the events once


class WorkerLostConnection(RuntimeError):
    """A replay worker's database connection failed; `reported` events were already counted."""

    def __init__(self, error: str, reported: int) -> None:
        super().__init__(f"A replay worker failed: {error}")
        self.reported = reported


def _skipping(on_event: Callable[[], None] | None, count: int) -> Callable[[], None] | None:
    """on_event, silent for its first `count` calls (progress already shown)."""
    if on_event is None:
        return None
    remaining = itertools.count(count, -1)

    def report() -> None:
        if next(remaining) <= 0:
            on_event()

    return report


def _worker(replay: "_Replay", share: tuple[int, int], done: Any, results: Any) -> None:
    from failures.processes import inherited_connections_forget

    inherited_connections_forget()
    replay.on_event = None  # the parent reports progress from `done`
    try:
        result, invalid = replay.run(share, done)
        tallies = [rule.tally for rule in result.rules]
        results.put(
            (share[0], (result.events, result.skipped, result.applications), tallies, invalid, None)
        )
    except BaseException as error:  # handed to the parent, which raises it
        results.put((share[0], None, None, None, repr(error)))
    finally:
        from django.db import connections

        connections.close_all()


def _run_in_workers(replay: "_Replay", workers: int) -> tuple[StreamResult, set[int]]:
    """One pass shared among forked worker processes; their tallies added up."""
    from django.db import connections

    context = multiprocessing.get_context("fork")
    done = context.Value("q", 0)
    results = context.Queue()
    connections.close_all()  # each worker opens its own connection
    processes = [
        context.Process(target=_worker, args=(replay, (k, workers), done, results), daemon=True)
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    answers = []
    reported = 0
    try:
        while len(answers) < workers:
            try:
                answers.append(results.get(timeout=0.2))
            except queue.Empty:
                answered = {answer[0] for answer in answers}
                if any(
                    not process.is_alive() and k not in answered
                    for k, process in enumerate(processes)
                ):
                    time.sleep(1)  # its answer may still be on its way
                    if results.empty():
                        raise RuntimeError("A replay worker died.") from None
            if replay.on_event is not None:
                for _ in range(done.value - reported):
                    replay.on_event()
                reported = done.value
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    result = StreamResult(rules=replay.rules)
    invalid: set[int] = set()
    for rule in replay.rules:
        rule.tally = RuleTally()
    for _, counts, tallies, worker_invalid, error in sorted(answers, key=lambda a: a[0]):
        if error is not None and error.startswith(("OperationalError", "InterfaceError")):
            raise WorkerLostConnection(error, reported)
        if error is not None:
            raise RuntimeError(f"A replay worker failed: {error}")
        result.events += counts[0]
        result.skipped += counts[1]
        result.applications += counts[2]
        invalid |= worker_invalid
        for rule, tally in zip(replay.rules, tallies, strict=True):
            _tally_merge(rule.tally, tally, replay.examples)
    return result, invalid


def _tally_merge(into: RuleTally, tally: RuleTally, examples: int) -> None:
    into.total += tally.total
    into.exempted += tally.exempted
    for team, count in tally.by_team.items():
        into.by_team[team] = into.by_team.get(team, 0) + count
    into.keys |= tally.keys
    earliest = heapq.nlargest(examples, [*into.examples, *tally.examples], key=lambda i: i[:2])
    # Re-numbered so that no two items tie (a tie would compare the example dicts).
    into.examples = [(item[0], n, item[2]) for n, item in enumerate(earliest)]
    heapq.heapify(into.examples)
