"""Bulk import of canonical events (backfill): a JSON-lines stream into the log and the mirror.

The result equals recording the same lines one by one with `services.event_record`, in
file order: the same dedupe rule (an event id already recorded for the connection, or seen
earlier in the stream, is a duplicate and changes nothing), the same mirror (jobs and their
history, candidates, applications, stage transitions, holds, interviews, integration errors,
offer approvals, hires) and the same on-event failures. What differs is the cost:

- lines are read as a stream and handled in chunks of `CHUNK_LINES`, so memory does not
  grow with the file; a thread of its own validates the next chunk while the current one
  is written (Python work overlapping database waits);
- the event log's monthly partitions the file needs are created before its rows arrive;
- a chunk's events are validated in Python, then its mirror is worked out in memory, line
  by line, from the state of the chunk's applications loaded in a few queries;
- the chunk is written in one transaction: on PostgreSQL with COPY (straight into the
  tables, with ids taken from their sequences beforehand, and into temporary tables for
  set-based UPDATE ... FROM), elsewhere with bulk_create / bulk_update;
- then the detectors of every version in force run over the chunk's events, in order (the
  on-event pass), and their detections are recorded in batches.

A bad line (not UTF-8, not JSON, not a valid event, an unmapped stage, an application that
already belongs to another candidate or job, longer than the webhook body limit) is skipped
and reported with its line number and field; it never stops the import nor touches the rest.
Each chunk commits on its own: an interrupted import is finished by importing the same file
again (what was recorded is then a duplicate).

Known difference from one-by-one recording (docs/limitations.md): detectors that read an
application's holds or interviews from the database see them as they stand at the end of
the chunk. That changes an outcome only when a later line of the same chunk reschedules an
earlier interview of the application, or adds or closes a hold dated before an earlier line.
"""

import hashlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import IO, Any

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.db import connection as db
from django.utils import timezone

from failures.choices import ApplicationStatus, EventKind, StageCategory
from failures.detectors import Detection, EventContext, detector_for
from failures.events import (
    MAX_CLOCK_SKEW,
    CanonicalEvent,
    EventInvalid,
    event_parse,
    json_text_plain,
)
from failures.models import (
    Application,
    ApplicationHold,
    AtsConnection,
    Candidate,
    EventKey,
    IntegrationError,
    Interview,
    Job,
    RecruitingEvent,
    Region,
    StageMapping,
    StageTransition,
    Team,
)
from failures.partitions import month_add, month_of, partition_months_ensure
from failures.scan_recording import ExceptionBook, failures_record_batch
from failures.selectors import definition_versions_in_force
from failures.services import (
    _TERMINAL,
    _failures_after_reopen,
    compliance_excludes,
    failure_record,
)

logger = logging.getLogger(__name__)

CHUNK_LINES = 5000
# Errors kept for the report; later ones are only counted (memory stays bounded).
MAX_ERRORS_KEPT = 1000
# A chunk that meets a concurrent writer (the same event id or application created at the
# same moment by a webhook) is rolled back and redone from its parsed lines.
CHUNK_ATTEMPTS = 5
# How far back a backfill creates monthly partitions of the event log (older: DEFAULT).
PARTITION_MONTHS_BACK = 120

_JOB_ATTRS = (
    "title",
    "department",
    "job_family",
    "hiring_manager_ats_id",
    "recruiter_ats_id",
    "opened_at",
    "closed_at",
)
_JOB_FIELDS = (*_JOB_ATTRS, "is_strategic", "seniority", "region_id", "team_id")
_JOB_DEFAULTS: dict[str, Any] = {
    **{name: "" for name in _JOB_ATTRS},
    "opened_at": None,
    "closed_at": None,
    "is_strategic": False,
    "seniority": None,
    "region_id": None,
    "team_id": None,
}
_APPLICATION_FIELDS = (
    "source",
    "current_stage",
    "stage_category",
    "stage_entered_at",
    "category_entered_at",
    "status",
    "applied_at",
    "closed_at",
    "last_event_at",
    "last_recruiter_action_at",
    "offer_approved_at",
    "hired_at",
)
_INTERVIEW_FIELDS = (
    "scheduled_at",
    "scheduled_for",
    "cancelled_at",
    "completed_at",
    "no_show_at",
    "scorecard_submitted_at",
)
_application_values = itemgetter(*_APPLICATION_FIELDS)
_INTERVIEW_STAMP = {
    EventKind.INTERVIEW_CANCELLED: "cancelled_at",
    EventKind.INTERVIEW_COMPLETED: "completed_at",
    EventKind.INTERVIEW_NO_SHOW: "no_show_at",
    EventKind.SCORECARD_SUBMITTED: "scorecard_submitted_at",
}
_HOLD_KINDS = (EventKind.APPLICATION_ON_HOLD, EventKind.APPLICATION_RESUMED)
_INTEGRATION_KINDS = (EventKind.INTEGRATION_ERROR, EventKind.INTEGRATION_RECOVERED)


class _TooLong:
    """Stands for a line longer than the limit (its bytes were skipped, never held)."""


LINE_TOO_LONG = _TooLong()


def line_limit() -> int:
    """The longest line accepted: one event may be as large as one webhook body."""
    return settings.FAILTRACK_WEBHOOK_MAX_BYTES


def lines_read(stream: IO[bytes], *, max_bytes: int | None = None) -> Iterator[Any]:
    """The lines of a binary stream; an overlong line is skipped and yields LINE_TOO_LONG."""
    limit = max_bytes or line_limit()
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the line without keeping it
                rest = stream.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            yield LINE_TOO_LONG
            continue
        yield line


# --- Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineError:
    """Why one line was not imported: its 1-based number and the offending field."""

    line: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class ImportResult:
    """What an import did. `errors` keeps the first MAX_ERRORS_KEPT bad lines."""

    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    failures: int = 0
    errors: list[LineError] = field(default_factory=list)

    def error_add(self, error: LineError) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "failures": self.failures,
            "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.invalid > len(self.errors),
        }


# --- Parsing ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    number: int
    event: CanonicalEvent
    category: str | None
    text: str


def _unmapped(name: str) -> EventInvalid:
    # The same words as services._stage_category_resolve.
    return EventInvalid(
        "stage.category",
        f"Stage {name!r} is not mapped for this organization: send "
        "stage.category or add a stage mapping.",
    )


def _line_parse(
    raw: Any, number: int, mapping: dict[str, str], limit: int, now: datetime | None = None
) -> _Line | LineError | None:
    """A line as a validated event (None for a blank line), or the error to report.

    JSON is decoded by orjson: strict like the webhooks' decoder (no NaN or Infinity, which
    no database column takes; no lone surrogates) and three times faster than `json`, which
    matters at a million lines. The stored payload is the line's own text, never the
    decoded value re-serialised.
    """
    if raw is LINE_TOO_LONG or len(raw) > limit:
        return LineError(number, "body", f"Line longer than {limit} bytes.")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return LineError(number, "body", "Not valid UTF-8.")
    text = raw.strip()
    if not text:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return LineError(number, "body", f"Malformed JSON: {exc}"[:300])
    try:
        event = event_parse(data, plain=json_text_plain(text), now=now)
        category = None
        if event.stage is not None:
            category = event.stage.category or mapping.get(event.stage.name.upper())
            if category is None:
                raise _unmapped(event.stage.name)
    except EventInvalid as exc:
        return LineError(number, exc.field, exc.message)
    return _Line(number, event, category, text)


# --- The in-memory mirror of one chunk ---------------------------------------------------


@dataclass(eq=False, slots=True)
class _JobState:
    ats_id: str
    values: dict[str, Any]
    pk: int | None = None
    changed: set[str] = field(default_factory=set)
    # ('+' or '~', values) rows of the job's history, written with the chunk.
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    snapshot: Job | None = None


@dataclass(eq=False, slots=True)
class _CandidateState:
    ats_id: str
    pk: int | None = None


@dataclass(eq=False, slots=True)
class _HoldState:
    started_at: datetime
    ended_at: datetime | None = None
    pk: int | None = None
    dirty: bool = False


@dataclass(eq=False, slots=True)
class _InterviewState:
    ats_id: str
    values: dict[str, Any]
    pk: int | None = None
    dirty: bool = False


@dataclass(eq=False, slots=True)
class _ErrorState:
    system: str
    occurred_at: datetime
    event_id: str
    recovered_at: datetime | None = None
    pk: int | None = None
    dirty: bool = False


@dataclass(eq=False, slots=True)
class _ApplicationState:
    ats_id: str
    candidate: _CandidateState
    job: _JobState
    values: dict[str, Any]
    pk: int | None = None
    touched: bool = False
    holds: list[_HoldState] | None = None
    interviews: dict[str, _InterviewState] | None = None
    errors: list[_ErrorState] | None = None


@dataclass(slots=True)
class _Recorded:
    """An event of the chunk that will be recorded, and what it left for the detectors."""

    line: _Line
    application: _ApplicationState | None = None
    pk: int | None = None
    snapshot: dict[str, Any] | None = None
    job: Job | None = None
    left_category: str | None = None
    left_entered: datetime | None = None
    left_stage: str | None = None
    reopened: bool = False


@dataclass(slots=True)
class _Transition:
    application: _ApplicationState
    recorded: _Recorded
    from_stage: str
    from_category: str
    to_stage: str
    to_category: str
    occurred_at: datetime


def _among(queryset: Any, field: str, values: Iterable[Any]) -> Any:
    """`field IN values`; on PostgreSQL as one array parameter (= ANY) instead of thousands."""
    values = list(values)
    queryset = queryset.order_by()  # no model ordering: it would join and sort for nothing
    if db.vendor != "postgresql":
        return queryset.filter(**{f"{field}__in": values})
    model = queryset.model._meta
    column = f"{_qn(model.db_table)}.{_qn(model.get_field(field).column)}"
    return queryset.extra(where=[f"{column} = ANY(%s)"], params=[values])  # noqa: S610


# psycopg's own loader, in C; Django's wraps a Python one (a few µs a timestamp, and a chunk
# loads tens of thousands). Both give UTC: Django sets the session's time zone to UTC.
_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(
    psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.BINARY
)


def _rows(queryset: Any, *fields: str) -> list[tuple]:
    """The queryset's values as tuples, on PostgreSQL straight from psycopg.

    The query is Django's; on PostgreSQL it runs on a plain psycopg cursor, which skips
    Django's per-row conversions. The planner is told that random reads are cheap for it:
    the lookups are thousands of probes into indexes that are mostly in memory, and with
    the default (4, meant for spinning disks) it scans the whole table instead, a cost that
    grows with every chunk imported.
    """
    queryset = queryset.values_list(*fields)
    if db.vendor != "postgresql":
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    db.ensure_connection()
    # Binary results: a timestamp arrives as a number instead of text to parse.
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.adapters.register_loader("timestamptz", _TIMESTAMPTZ_LOADER)
        cursor.execute("SELECT current_setting('random_page_cost')")
        (before,) = cursor.fetchone()
        cursor.execute("SELECT set_config('random_page_cost', '1.1', true)")
        # Never prepared: each chunk's lookup is planned for its own ids (a generic plan
        # may not know that a few thousand probes beat a scan), and poolers keep no state.
        cursor.execute(sql, params, binary=True, prepare=False)
        rows = cursor.fetchall()
        # Only for this lookup: not for the chunk's other statements, nor for the rest of
        # a caller's transaction.
        cursor.execute("SELECT set_config('random_page_cost', %s, true)", [before])
        return rows


class _Chunk:
    """One chunk's state, loaded in a few queries, then changed line by line in memory."""

    def __init__(self, connection: AtsConnection, lines: list[_Line], detect: bool) -> None:
        self.connection = connection
        # Snapshots for the detectors are only taken when they will run.
        self.detect = detect
        self.organization_id = connection.organization_id
        self.lines = lines
        self.recorded: list[_Recorded] = []
        self.transitions: list[_Transition] = []
        self.duplicates = 0
        self.errors: list[LineError] = []
        self.regions = {
            r.code: r for r in Region.objects.filter(organization_id=self.organization_id)
        }
        self.regions_by_pk = {r.pk: r for r in self.regions.values()}
        self.teams = {t.name: t for t in Team.objects.filter(organization_id=self.organization_id)}
        self.teams_by_pk = {t.pk: t for t in self.teams.values()}
        self._load()

    # Loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        scope = {"organization_id": self.organization_id, "connection": self.connection}
        event_ids = {line.event.id for line in self.lines}
        self.known_ids = {
            event_id
            for (event_id,) in _rows(
                _among(EventKey.objects.filter(connection=self.connection), "event_id", event_ids),
                "event_id",
            )
        }
        job_ids = {line.event.job.id for line in self.lines if line.event.job is not None}
        self.jobs: dict[str, _JobState] = {}
        for pk, ats_id, *values in _rows(
            _among(Job.objects.filter(**scope), "ats_id", job_ids), "pk", "ats_id", *_JOB_FIELDS
        ):
            self.jobs[ats_id] = _JobState(ats_id, dict(zip(_JOB_FIELDS, values, strict=True)), pk)
        jobs_by_pk = {job.pk: job for job in self.jobs.values()}

        apps = [line.event.application for line in self.lines if line.event.application]
        self.candidates: dict[str, _CandidateState] = {}
        candidates_by_pk: dict[int, _CandidateState] = {}
        for pk, ats_id in _rows(
            _among(Candidate.objects.filter(**scope), "ats_id", {a.candidate_id for a in apps}),
            "pk",
            "ats_id",
        ):
            self.candidates[ats_id] = candidates_by_pk[pk] = _CandidateState(ats_id, pk)

        rows = _among(Application.objects.filter(**scope), "ats_id", {a.id for a in apps})
        if db.vendor == "postgresql":
            # Locked until the chunk commits: a webhook changing one meanwhile waits.
            rows = rows.select_for_update(no_key=True)
        self.applications: dict[str, _ApplicationState] = {}
        # Applications whose candidate or job is not one of this connection's that the chunk
        # names (an event naming another candidate or job for them is refused).
        self.foreign: dict[str, tuple[bool, bool]] = {}
        for pk, ats_id, candidate_pk, job_pk, *values in _rows(
            rows, "pk", "ats_id", "candidate_id", "job_id", *_APPLICATION_FIELDS
        ):
            candidate = candidates_by_pk.get(candidate_pk)
            job = jobs_by_pk.get(job_pk)
            self.applications[ats_id] = _ApplicationState(
                ats_id=ats_id,
                candidate=candidate or _CandidateState("", candidate_pk),
                job=job or _JobState("", dict(_JOB_DEFAULTS), pk=job_pk),
                values=dict(zip(_APPLICATION_FIELDS, values, strict=True)),
                pk=pk,
            )
            if candidate is None or job is None:
                self.foreign[ats_id] = (candidate is not None, job is not None)
        self._load_details()

    def _load_details(self) -> None:
        """Open holds, interviews and unrecovered errors of the chunk's existing applications."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for line in self.lines:
            app = line.event.application
            if app is None or app.id not in self.applications:
                continue
            kind = line.event.kind
            if kind in _HOLD_KINDS:
                wanted["holds"].add(app.id)
            elif line.event.interview is not None and kind in (
                *_INTERVIEW_STAMP,
                EventKind.INTERVIEW_SCHEDULED,
            ):
                wanted["interviews"].add(app.id)
            elif kind in _INTEGRATION_KINDS:
                wanted["errors"].add(app.id)
        by_pk = {state.pk: state for state in self.applications.values()}

        def pks(key: str) -> list[int]:
            return [self.applications[ats_id].pk for ats_id in wanted[key]]

        for state in (self.applications[a] for a in wanted["holds"]):
            state.holds = []
        holds = ApplicationHold.objects.filter(ended_at__isnull=True)
        for pk, app_pk, started_at in _rows(
            _among(holds, "application_id", pks("holds")), "pk", "application_id", "started_at"
        ):
            by_pk[app_pk].holds.append(_HoldState(started_at=started_at, pk=pk))
        for state in (self.applications[a] for a in wanted["interviews"]):
            state.interviews = {}
        for pk, app_pk, ats_id, *values in _rows(
            _among(Interview.objects.all(), "application_id", pks("interviews")),
            "pk",
            "application_id",
            "ats_id",
            *_INTERVIEW_FIELDS,
        ):
            by_pk[app_pk].interviews[ats_id] = _InterviewState(
                ats_id, dict(zip(_INTERVIEW_FIELDS, values, strict=True)), pk=pk
            )
        for state in (self.applications[a] for a in wanted["errors"]):
            state.errors = []
        errors = IntegrationError.objects.filter(recovered_at__isnull=True)
        for pk, app_pk, system, occurred_at, event_id in _rows(
            _among(errors, "application_id", pks("errors")),
            "pk",
            "application_id",
            "system",
            "occurred_at",
            "event_id",
        ):
            by_pk[app_pk].errors.append(_ErrorState(system, occurred_at, event_id, pk=pk))

    # Applying, line by line -------------------------------------------------------------

    def apply(self) -> None:
        """Work out the chunk's mirror in file order, as event_record would, one line at a time."""
        recorded_ids: set[str] = set()
        for line in self.lines:
            event = line.event
            if event.id in self.known_ids or event.id in recorded_ids:
                self.duplicates += 1
                continue
            try:
                recorded = self._record(line)
            except EventInvalid as exc:
                self.errors.append(LineError(line.number, exc.field, exc.message))
                continue
            recorded_ids.add(event.id)
            self.recorded.append(recorded)

    def _record(self, line: _Line) -> _Recorded:
        event = line.event
        recorded = _Recorded(line)
        if event.application is None:
            if event.job is not None:
                self._job_upsert(event.job)
            return recorded
        assert event.job is not None
        self._application_check(event)
        job = self._job_upsert(event.job)
        application = self._application_upsert(event, job)
        recorded.application = application
        self._event_apply(application, recorded)
        if self.detect:
            recorded.snapshot = dict(application.values)
            recorded.job = self._job_snapshot(job)
        return recorded

    def _application_check(self, event: CanonicalEvent) -> None:
        """services._application_upsert's refusals, before anything changes."""
        ref = event.application
        assert ref is not None and event.job is not None
        state = self.applications.get(ref.id)
        if state is None:
            return
        candidate_ok, job_ok = self.foreign.get(ref.id, (True, True))
        if not candidate_ok or state.candidate.ats_id != ref.candidate_id:
            raise EventInvalid(
                "application.candidate_id",
                "Does not match the candidate this application already belongs to.",
            )
        if not job_ok or state.job.ats_id != event.job.id:
            raise EventInvalid(
                "job.id", "Does not match the job this application already belongs to."
            )

    def _job_upsert(self, ref: Any) -> _JobState:
        """services._job_upsert: create with defaults, then change what the event names."""
        job = self.jobs.get(ref.id)
        if job is None:
            job = _JobState(ats_id=ref.id, values=dict(_JOB_DEFAULTS))
            job.history.append(("+", dict(job.values)))
            self.jobs[ref.id] = job
        wanted: dict[str, Any] = {}
        for attr in _JOB_ATTRS:
            value = getattr(ref, attr)
            if value is not None:
                wanted[attr] = value
        if ref.is_strategic is not None:
            wanted["is_strategic"] = ref.is_strategic
        if ref.seniority is not None:
            wanted["seniority"] = ref.seniority
        region_id, team_id = job.values["region_id"], job.values["team_id"]
        if ref.region is not None and (
            region_id is None or self.regions_by_pk[region_id].code != ref.region
        ):
            wanted["region_id"] = self._region(ref.region).pk
        if ref.team is not None and (team_id is None or self.teams_by_pk[team_id].name != ref.team):
            wanted["team_id"] = self._team(ref.team).pk
        changed = [name for name, value in wanted.items() if job.values[name] != value]
        if changed:
            for name in changed:
                job.values[name] = wanted[name]
            job.changed.update(changed)
            job.history.append(("~", dict(job.values)))
            job.snapshot = None
        return job

    def _region(self, code: str) -> Region:
        region = self.regions.get(code)
        if region is None:
            region = Region.objects.get_or_create(organization_id=self.organization_id, code=code)[
                0
            ]
            self.regions[code] = self.regions_by_pk[region.pk] = region
        return region

    def _team(self, name: str) -> Team:
        team = self.teams.get(name)
        if team is None:
            team = Team.objects.get_or_create(organization_id=self.organization_id, name=name)[0]
            self.teams[name] = self.teams_by_pk[team.pk] = team
        return team

    def _application_upsert(self, event: CanonicalEvent, job: _JobState) -> _ApplicationState:
        ref = event.application
        assert ref is not None
        candidate = self.candidates.get(ref.candidate_id)
        if candidate is None:
            candidate = self.candidates[ref.candidate_id] = _CandidateState(ref.candidate_id)
        state = self.applications.get(ref.id)
        if state is None:
            values = {name: None for name in _APPLICATION_FIELDS}
            values.update(
                source=ref.source or "",
                current_stage="",
                stage_category="",
                status=ApplicationStatus.ACTIVE,
                applied_at=ref.applied_at or event.occurred_at,
            )
            state = _ApplicationState(ref.id, candidate, job, values, holds=[], interviews={})
            state.errors = []
            self.applications[ref.id] = state
        elif ref.source and not state.values["source"]:
            state.values["source"] = ref.source
        state.touched = True
        return state

    def _event_apply(self, application: _ApplicationState, recorded: _Recorded) -> None:
        """services._event_apply, over the in-memory state."""
        event = recorded.line.event
        values = application.values
        terminal = _TERMINAL.get(event.kind)
        if event.kind in _HOLD_KINDS:
            self._hold(application, event)
        elif event.kind == EventKind.OFFER_APPROVED:
            values["offer_approved_at"] = event.occurred_at
        elif event.interview is not None and event.kind in (
            EventKind.INTERVIEW_SCHEDULED,
            *_INTERVIEW_STAMP,
        ):
            self._interview(application, event)
        elif event.kind in _INTEGRATION_KINDS:
            self._integration(application, event)
        elif terminal is not None:
            status, terminal_category, label = terminal
            if values["status"] == ApplicationStatus.ACTIVE:
                moved = self._move(application, recorded, label, terminal_category)
                if moved:
                    values["status"] = status
                    values["closed_at"] = event.occurred_at
                    if event.kind == EventKind.APPLICATION_HIRED:
                        values["hired_at"] = event.occurred_at
        elif event.stage is not None and recorded.line.category is not None:
            category = recorded.line.category
            if values["current_stage"] != event.stage.name or values["stage_category"] != category:
                moved = self._move(application, recorded, event.stage.name, category)
                reopens = category not in (StageCategory.CLOSED, StageCategory.HIRED)
                if moved and reopens and values["status"] != ApplicationStatus.ACTIVE:
                    values["status"] = ApplicationStatus.ACTIVE
                    values["closed_at"] = None
                    recorded.reopened = True
        if values["last_event_at"] is None or event.occurred_at > values["last_event_at"]:
            values["last_event_at"] = event.occurred_at
        if event.actor_role.lower() == "recruiter" and (
            values["last_recruiter_action_at"] is None
            or event.occurred_at > values["last_recruiter_action_at"]
        ):
            values["last_recruiter_action_at"] = event.occurred_at

    def _move(
        self, application: _ApplicationState, recorded: _Recorded, stage: str, category: str
    ) -> bool:
        """services._application_move: always a transition; a late event does not move."""
        values = application.values
        at = recorded.line.event.occurred_at
        self.transitions.append(
            _Transition(
                application,
                recorded,
                values["current_stage"],
                values["stage_category"],
                stage,
                category,
                at,
            )
        )
        if values["stage_entered_at"] is not None and at < values["stage_entered_at"]:
            return False
        recorded.left_stage = values["current_stage"] or None
        if values["stage_category"] and values["stage_category"] != category:
            recorded.left_category = values["stage_category"]
            recorded.left_entered = values["category_entered_at"]
        if values["stage_category"] != category or values["category_entered_at"] is None:
            values["category_entered_at"] = at
        values["current_stage"] = stage
        values["stage_category"] = category
        values["stage_entered_at"] = at
        return True

    def _hold(self, application: _ApplicationState, event: CanonicalEvent) -> None:
        """services._application_hold."""
        holds = application.holds
        assert holds is not None
        open_holds = [h for h in holds if h.ended_at is None]
        latest = max(open_holds, key=lambda h: h.started_at) if open_holds else None
        if event.kind == EventKind.APPLICATION_ON_HOLD:
            if latest is None:
                holds.append(_HoldState(started_at=event.occurred_at))
        elif latest is not None and event.occurred_at >= latest.started_at:
            latest.ended_at = event.occurred_at
            latest.dirty = True

    def _interview(self, application: _ApplicationState, event: CanonicalEvent) -> None:
        """services._interview_event."""
        ref = event.interview
        assert ref is not None and application.interviews is not None
        at = event.occurred_at
        interview = application.interviews.get(ref.id)
        created = interview is None
        if interview is None:
            values = {name: None for name in _INTERVIEW_FIELDS}
            values.update(scheduled_at=at, scheduled_for=ref.scheduled_for)
            interview = application.interviews[ref.id] = _InterviewState(ref.id, values)
        if event.kind == EventKind.INTERVIEW_SCHEDULED and not created:
            interview.values.update(scheduled_at=at, scheduled_for=ref.scheduled_for)
            interview.values["cancelled_at"] = None
            interview.dirty = True
        stamp = _INTERVIEW_STAMP.get(event.kind)
        if stamp is not None and interview.values[stamp] is None:
            interview.values[stamp] = at
            interview.dirty = True

    def _integration(self, application: _ApplicationState, event: CanonicalEvent) -> None:
        """services._integration_event."""
        assert application.errors is not None
        system = str(event.details.get("system") or "unknown")[:100]
        if event.kind == EventKind.INTEGRATION_ERROR:
            application.errors.append(_ErrorState(system, event.occurred_at, event.id))
            return
        for error in application.errors:
            if (
                error.system == system
                and error.recovered_at is None
                and error.occurred_at <= event.occurred_at
            ):
                error.recovered_at = event.occurred_at
                error.dirty = True

    def _job_snapshot(self, job: _JobState) -> Job:
        """The job as detectors read it (region and team objects attached)."""
        if job.snapshot is None:
            values = job.values
            job.snapshot = Job(
                pk=job.pk,
                organization_id=self.organization_id,
                connection_id=self.connection.pk,
                ats_id=job.ats_id,
                **{name: values[name] for name in _JOB_ATTRS},
                is_strategic=values["is_strategic"],
                seniority=values["seniority"],
                region=self.regions_by_pk.get(values["region_id"]),
                team=self.teams_by_pk.get(values["team_id"]),
            )
        return job.snapshot


# --- Writing a chunk ----------------------------------------------------------------------


class _Conflict(Exception):
    """Another writer recorded one of the chunk's event ids meanwhile: redo the chunk."""


def _qn(name: str) -> str:
    return db.ops.quote_name(name)


class _Writer:
    """Inserts and updates rows: COPY on PostgreSQL, bulk_create/bulk_update elsewhere."""

    def __init__(self) -> None:
        self.postgres = db.vendor == "postgresql"

    def insert(self, model: Any, columns: list[str], rows: list[tuple], *, ids: bool = False):
        """Insert rows; with ids=True return the new primary keys in row order."""
        if not rows:
            return []
        if not self.postgres:
            objs = model.objects.bulk_create(
                [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
            )
            return [obj.pk for obj in objs] if ids else []
        table = model._meta.db_table
        pks: list[int] = []
        # COPY runs on psycopg's own cursor: its errors become Django's (IntegrityError...).
        with db.wrap_database_errors, db.cursor() as cursor:
            if ids:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, len(rows)],
                )
                pks = [row[0] for row in cursor.fetchall()]
                rows = [(pk, *row) for pk, row in zip(pks, rows, strict=True)]
                columns = ["id", *columns]
            names = ", ".join(_qn(c) for c in columns)
            with cursor.cursor.copy(f"COPY {_qn(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return pks

    def update(self, model: Any, columns: list[str], rows: list[tuple]) -> None:
        """Set `columns` of the rows whose primary key is each row's first value."""
        if not rows:
            return
        if not self.postgres:
            objs = [model(pk=row[0], **dict(zip(columns, row[1:], strict=True))) for row in rows]
            model.objects.bulk_update(objs, columns, batch_size=500)
            return
        table = _qn(model._meta.db_table)
        # One temporary table per column set (jobs are updated by several).
        suffix = hashlib.sha1(",".join(columns).encode(), usedforsecurity=False).hexdigest()[:8]
        temp = _qn(f"bulk_{model._meta.db_table}_{suffix}")
        names = ", ".join(_qn(c) for c in columns)
        with db.wrap_database_errors, db.cursor() as cursor:
            select = f"SELECT id, {names} FROM {table} WITH NO DATA"  # noqa: S608
            create = f"CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS AS {select}"
            cursor.execute(create)
            cursor.execute(f"DELETE FROM {temp}")  # noqa: S608 - model metadata
            with cursor.cursor.copy(f"COPY {temp} (id, {names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            sets = ", ".join(f"{_qn(c)} = s.{_qn(c)}" for c in columns)
            cursor.execute(f"UPDATE {table} AS t SET {sets} FROM {temp} AS s WHERE t.id = s.id")  # noqa: S608 - identifiers from model metadata

    def candidates_insert(self, chunk: "_Chunk", ats_ids: list[str], now: datetime) -> dict:
        """New candidates' ids by ATS id; one another writer created meanwhile is used.

        A candidate may apply to jobs that other import workers (or a webhook) handle at the
        same moment, so on PostgreSQL the rows go in with ON CONFLICT DO NOTHING (waiting for
        the other transaction, never failing the chunk), in ATS-id order so that two
        writers do not wait for each other.
        """
        if not ats_ids:
            return {}
        columns = ["organization_id", "connection_id", "ats_id", "created_at"]
        org_id, connection_pk = chunk.organization_id, chunk.connection.pk
        if not self.postgres:
            rows = [(org_id, connection_pk, ats_id, now) for ats_id in ats_ids]
            return dict(zip(ats_ids, self.insert(Candidate, columns, rows, ids=True), strict=True))
        table = _qn(Candidate._meta.db_table)
        with db.wrap_database_errors, db.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - model metadata
                "SELECT %s, %s, ats_id, %s FROM unnest(%s::varchar[]) AS new(ats_id) "
                "ORDER BY ats_id ON CONFLICT (organization_id, connection_id, ats_id) DO NOTHING "
                "RETURNING ats_id, id",
                [org_id, connection_pk, now, sorted(ats_ids)],
            )
            pks = dict(cursor.fetchall())
        missing = [ats_id for ats_id in ats_ids if ats_id not in pks]
        if missing:
            scope = Candidate.objects.filter(organization_id=org_id, connection_id=connection_pk)
            pks.update(_rows(_among(scope, "ats_id", missing), "ats_id", "pk"))
        return pks

    def keys_insert(self, connection: AtsConnection, rows: list[tuple]) -> None:
        """The EventKey rows; a key another writer holds already is a _Conflict."""
        if not rows:
            return
        columns = ["connection_id", "event_id", "event_pk", "occurred_at"]
        # COPY straight into the table: a key another writer recorded meanwhile breaks the
        # unique constraint, the chunk's transaction is rolled back and the chunk redone
        # (it then sees the key and counts that event as a duplicate).
        try:
            self.insert(EventKey, columns, rows)
        except IntegrityError as exc:
            raise _Conflict() from exc


def _chunk_write(chunk: _Chunk, writer: _Writer, now: datetime) -> None:
    """Write the chunk's rows, parents first (jobs, candidates, applications, events)."""
    connection = chunk.connection
    org_id = chunk.organization_id
    connection_pk = connection.pk  # a property: read once, not once a row

    jobs = list(chunk.jobs.values())
    new_jobs = [j for j in jobs if j.pk is None]
    changed = [j for j in jobs if j.changed and j.pk is not None]
    pks = writer.insert(
        Job,
        ["organization_id", "connection_id", "ats_id", *_JOB_FIELDS],
        [(org_id, connection_pk, j.ats_id, *(j.values[f] for f in _JOB_FIELDS)) for j in new_jobs],
        ids=True,
    )
    for job, pk in zip(new_jobs, pks, strict=True):
        job.pk = pk
        if job.snapshot is not None:
            job.snapshot.pk = pk
    by_columns: dict[tuple[str, ...], list[_JobState]] = defaultdict(list)
    for job in changed:
        by_columns[tuple(sorted(job.changed))].append(job)
    for columns, group in by_columns.items():
        writer.update(Job, list(columns), [(j.pk, *(j.values[c] for c in columns)) for j in group])
    history = Job.history.model
    history_rows = [
        history(
            id=job.pk,
            organization_id=org_id,
            connection_id=connection.pk,
            ats_id=job.ats_id,
            **values,
            history_date=now,
            history_type=kind,
            history_change_reason=None if kind == "+" else "Updated from an ATS event",
        )
        for job in jobs
        for kind, values in job.history
    ]
    history.objects.bulk_create(history_rows, batch_size=500)

    candidates = [c for c in chunk.candidates.values() if c.pk is None]
    pks = writer.candidates_insert(chunk, [c.ats_id for c in candidates], now)
    for candidate in candidates:
        candidate.pk = pks[candidate.ats_id]

    touched = [a for a in chunk.applications.values() if a.touched]
    new_apps = [a for a in touched if a.pk is None]
    old_apps = [a for a in touched if a.pk is not None]
    pks = writer.insert(
        Application,
        [
            "organization_id",
            "connection_id",
            "ats_id",
            "candidate_id",
            "job_id",
            *_APPLICATION_FIELDS,
        ],
        [
            (
                org_id,
                connection_pk,
                a.ats_id,
                a.candidate.pk,
                a.job.pk,
                *_application_values(a.values),
            )
            for a in new_apps
        ],
        ids=True,
    )
    for application, pk in zip(new_apps, pks, strict=True):
        application.pk = pk
    writer.update(
        Application,
        list(_APPLICATION_FIELDS),
        [(a.pk, *_application_values(a.values)) for a in old_apps],
    )

    recorded = chunk.recorded
    payload = (lambda r: r.line.text) if writer.postgres else (lambda r: r.line.event.raw)
    pks = writer.insert(
        RecruitingEvent,
        [
            "organization_id",
            "connection_id",
            "event_id",
            "kind",
            "occurred_at",
            "received_at",
            "application_id",
            "payload",
        ],
        [
            (
                org_id,
                connection_pk,
                event.id,
                event.kind,
                event.occurred_at,
                now,
                r.application.pk if r.application else None,
                payload(r),
            )
            for r in recorded
            for event in (r.line.event,)
        ],
        ids=True,
    )
    for item, pk in zip(recorded, pks, strict=True):
        item.pk = pk
    writer.keys_insert(
        connection,
        [
            (connection_pk, event.id, r.pk, event.occurred_at)
            for r in recorded
            for event in (r.line.event,)
        ],
    )

    writer.insert(
        StageTransition,
        [
            "application_id",
            "from_stage",
            "from_category",
            "to_stage",
            "to_category",
            "occurred_at",
            "actor_ats_id",
            "actor_role",
            "event_id",
        ],
        [
            (
                t.application.pk,
                t.from_stage,
                t.from_category,
                t.to_stage,
                t.to_category,
                t.occurred_at,
                t.recorded.line.event.actor_id,
                t.recorded.line.event.actor_role,
                t.recorded.pk,
            )
            for t in chunk.transitions
        ],
    )

    holds_new, holds_changed = [], []
    interviews_new, interviews_changed = [], []
    errors_new, errors_changed = [], []
    for application in touched:
        for hold in application.holds or ():
            if hold.pk is None:
                holds_new.append((application.pk, hold.started_at, hold.ended_at))
            elif hold.dirty:
                holds_changed.append((hold.pk, hold.ended_at))
        for interview in (application.interviews or {}).values():
            values = tuple(interview.values[f] for f in _INTERVIEW_FIELDS)
            if interview.pk is None:
                interviews_new.append((application.pk, interview.ats_id, *values))
            elif interview.dirty:
                interviews_changed.append((interview.pk, *values))
        for error in application.errors or ():
            if error.pk is None:
                errors_new.append(
                    (
                        application.pk,
                        error.system,
                        error.occurred_at,
                        error.recovered_at,
                        error.event_id,
                    )
                )
            elif error.dirty:
                errors_changed.append((error.pk, error.recovered_at))
    writer.insert(ApplicationHold, ["application_id", "started_at", "ended_at"], holds_new)
    writer.update(ApplicationHold, ["ended_at"], holds_changed)
    writer.insert(Interview, ["application_id", "ats_id", *_INTERVIEW_FIELDS], interviews_new)
    writer.update(Interview, list(_INTERVIEW_FIELDS), interviews_changed)
    writer.insert(
        IntegrationError,
        ["application_id", "system", "occurred_at", "recovered_at", "event_id"],
        errors_new,
    )
    writer.update(IntegrationError, ["recovered_at"], errors_changed)


# --- Detecting failures -------------------------------------------------------------------


def _chunk_detect(chunk: _Chunk, writer: _Writer, detect: bool) -> int:
    """The on-event pass: every version in force over the chunk's events, in file order.

    The detectors see each application as the event left it (a snapshot taken while the
    chunk was applied). Detections are recorded in batches; a re-opening event first
    records what came before it, then resolves or dismisses open failures as
    services.event_record does (also without `detect`: that is part of the mirror).
    """
    detected_at = timezone.now()
    versions = (
        definition_versions_in_force(at=detected_at, organization_id=chunk.organization_id)
        if detect
        else []
    )
    if not versions and not any(item.reopened for item in chunk.recorded):
        return 0
    pending: dict[int, list[Detection]] = defaultdict(list)
    by_pk = {version.pk: version for version in versions}
    books: dict[int, ExceptionBook] = {}
    recorded_count = 0

    def record_pending() -> None:
        nonlocal recorded_count
        for version_pk, detections in pending.items():
            version = by_pk[version_pk]
            if writer.postgres:
                book = books.get(version.definition_id)
                if book is None:
                    book = books[version.definition_id] = ExceptionBook(version.definition_id)
                recorded_count += len(
                    failures_record_batch(
                        version=version,
                        detections=detections,
                        detected_at=detected_at,
                        exceptions=book,
                    )
                )
            else:
                for detection in detections:
                    _, created = failure_record(
                        version=version, detection=detection, detected_at=detected_at
                    )
                    recorded_count += created
        pending.clear()

    for item in chunk.recorded:
        state = item.application
        if state is None or (not versions and not item.reopened):
            continue
        event = item.line.event
        if item.reopened:
            record_pending()
            _failures_after_reopen(Application(pk=state.pk), event)
        if not versions:
            continue
        assert item.job is not None and item.snapshot is not None
        item.job.pk = state.job.pk  # snapshots taken before the job had its id
        application = Application(
            pk=state.pk,
            organization_id=chunk.organization_id,
            connection_id=chunk.connection.pk,
            ats_id=state.ats_id,
            candidate_id=state.candidate.pk,
            job=item.job,
            **item.snapshot,
        )
        context = EventContext(
            event=event,
            application=application,
            left_category=item.left_category,
            left_category_entered_at=item.left_entered,
            left_stage=item.left_stage,
        )
        for version in versions:
            for detection in detector_for(version.detector).on_event(version, context):
                if compliance_excludes(version=version, detection=detection, at=detected_at):
                    continue
                pending[version.pk].append(detection)
    record_pending()
    return recorded_count


# --- The service --------------------------------------------------------------------------


def _stage_mapping(organization_id: int) -> dict[str, str]:
    return {
        name.upper(): category
        for name, category in StageMapping.objects.filter(
            organization_id=organization_id
        ).values_list("stage_name", "category")
    }


def _chunk_import(
    connection: AtsConnection, lines: list[_Line], detect: bool, result: ImportResult
) -> list[LineError]:
    """Record one chunk in one transaction; return the lines it refused."""
    writer = _Writer()
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                chunk = _Chunk(connection, lines, detect)
                chunk.apply()
                _chunk_write(chunk, writer, timezone.now())
                failures = _chunk_detect(chunk, writer, detect)
        except (_Conflict, IntegrityError, OperationalError) as exc:
            if attempt == CHUNK_ATTEMPTS or not _worth_retrying(exc):
                raise
            logger.info("bulk import chunk met a concurrent writer; retrying attempt=%s", attempt)
            continue
        break
    result.imported += len(chunk.recorded)
    result.duplicates += chunk.duplicates
    result.failures += failures
    return chunk.errors


# Deadlock, serialization failure: another transaction (a webhook, another import worker)
# got in the way; the chunk's transaction was rolled back whole and can simply be redone.
_TRANSIENT_STATES = frozenset({"40P01", "40001"})


def _worth_retrying(exc: Exception) -> bool:
    if not isinstance(exc, OperationalError):
        return True  # a key or a row another writer recorded meanwhile
    return getattr(exc.__cause__, "sqlstate", None) in _TRANSIENT_STATES


class _MonthBook:
    """Creates the event log's monthly partitions a backfill needs, before its rows arrive.

    Without them past events would all land in the DEFAULT partition. Months more than
    `PARTITION_MONTHS_BACK` months old are left to DEFAULT: a file (or a posted batch) can
    name any past date, and must not make the database create a table per month since the
    year 1. Nor any month after the current one (an event "in the future" is refused; the
    periodic task creates the coming months): a month that has not begun cannot be
    dropped by retention.
    """

    def __init__(self) -> None:
        self.seen: set[date] = set()
        now = timezone.now()
        self.oldest = month_add(month_of(now), -PARTITION_MONTHS_BACK)
        self.newest = month_of(now + MAX_CLOCK_SKEW)

    def ensure(self, moments: Iterable[datetime]) -> None:
        wanted = {month_of(moment) for moment in moments} - self.seen
        self.seen |= wanted
        wanted = {month for month in wanted if self.oldest <= month <= self.newest}
        if wanted:
            partition_months_ensure(RecruitingEvent._meta.db_table, wanted)


class _Statistics:
    """Keeps the planner's row counts in step with a large import, on PostgreSQL.

    Autovacuum analyzes a table long after a fast load has made it ten times larger; until
    then the planner believes the tables are small and looks a chunk's ids up by scanning
    everything (seen: 160 ms a chunk instead of 5). So the import analyzes the tables it
    grows itself once it has imported FIRST events, and again each time that count has
    doubled: a few times in all, and never for a small batch.
    """

    TABLES = (EventKey, Candidate, Application, Job, Interview, ApplicationHold, IntegrationError)
    FIRST = 20_000

    def __init__(self, *, enabled: bool = True) -> None:
        self.imported = 0
        self.next = self.FIRST
        self.enabled = enabled and db.vendor == "postgresql"

    def after_chunk(self, imported: int) -> None:
        self.imported += imported
        if not self.enabled or self.imported < self.next:
            return
        self.next = 2 * self.imported
        tables = ", ".join(_qn(model._meta.db_table) for model in self.TABLES)
        try:
            with transaction.atomic(), db.cursor() as cursor:
                cursor.execute(f"ANALYZE {tables}")
        except DatabaseError as exc:  # e.g. a lock timeout: slower, never wrong
            self.enabled = False
            logger.warning("bulk import cannot analyze its tables: %s", type(exc).__name__)


@dataclass
class _ParsedChunk:
    lines: list[_Line]
    errors: list[LineError]
    counted: int  # non-blank lines
    consumed: int  # every line, blank ones too


class _Parser(threading.Thread):
    """Reads and validates lines into chunks, ahead of the writer, in a thread of its own.

    Validation is Python work and writing mostly waits for PostgreSQL, so the two overlap.
    At most two chunks wait in the queue: memory stays bounded. The thread never touches
    the database.
    """

    def __init__(
        self, numbered: Iterable[tuple[int, Any]], mapping: dict[str, str], chunk_lines: int
    ) -> None:
        super().__init__(name="bulk-import-parser", daemon=True)
        self.numbered = numbered
        self.mapping = mapping
        self.chunk_lines = chunk_lines
        self.limit = line_limit()
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            chunk = _ParsedChunk([], [], 0, 0)
            now = timezone.now()  # "in the future" is judged by a clock read once a chunk
            for number, raw in self.numbered:
                if self.stopping.is_set():
                    return
                chunk.consumed += 1
                parsed = _line_parse(raw, number, self.mapping, self.limit, now)
                if parsed is None:
                    continue
                chunk.counted += 1
                if isinstance(parsed, LineError):
                    chunk.errors.append(parsed)
                    continue
                chunk.lines.append(parsed)
                if len(chunk.lines) >= self.chunk_lines:
                    self._put(chunk)
                    chunk = _ParsedChunk([], [], 0, 0)
                    now = timezone.now()
            self._put(chunk)
            self._put(None)
        except BaseException as exc:  # handed to the writer, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def chunks(self) -> Iterator[_ParsedChunk]:
        self.start()
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stopping.set()
            self.join(timeout=5)


def events_import(
    *,
    connection: AtsConnection,
    lines: Iterable[Any],
    progress: Callable[[int], None] | None = None,
    detect: bool = True,
    chunk_lines: int = CHUNK_LINES,
    workers: int = 1,
) -> ImportResult:
    """Import canonical events, one JSON object a line, into the event log and the mirror.

    `lines` yields bytes or str (or LINE_TOO_LONG, from `lines_read`); `progress` is called
    with the number of lines handled after each chunk. Bad lines are skipped and reported;
    with `detect`, the on-event detectors run over the imported events (the periodic scan
    finds what only time reveals, as for webhooks).

    `workers` > 1 shares the import among that many processes, each job's events in one of
    them (`failures.bulk_workers`); only on PostgreSQL and outside a transaction, since
    each process commits on its own connection. Otherwise, one process imports.
    """
    if workers > 1 and db.vendor == "postgresql" and not db.in_atomic_block:
        from failures.bulk_workers import import_in_workers

        result = import_in_workers(
            connection=connection,
            lines=lines,
            progress=progress,
            detect=detect,
            chunk_lines=chunk_lines,
            workers=workers,
        )
    else:
        result = numbered_import(
            connection,
            enumerate(lines, start=1),
            progress=progress,
            detect=detect,
            chunk_lines=chunk_lines,
        )
    logger.info(
        "bulk import connection=%s workers=%s lines=%s imported=%s duplicates=%s invalid=%s "
        "failures=%s",
        connection.pk,
        workers,
        result.lines,
        result.imported,
        result.duplicates,
        result.invalid,
        result.failures,
    )
    return result


def numbered_import(
    connection: AtsConnection,
    numbered: Iterable[tuple[int, Any]],
    *,
    progress: Callable[[int], None] | None = None,
    detect: bool = True,
    chunk_lines: int = CHUNK_LINES,
    partitions: bool = True,
    analyze: bool = True,
) -> ImportResult:
    """The import in this process, of (line number, line) pairs in line order.

    `partitions`: create the event log's months the lines need (a worker leaves that to
    the process that routes lines to it); `analyze`: keep the planner's statistics fresh
    (one worker does it for all).
    """
    result = ImportResult()
    parser = _Parser(numbered, _stage_mapping(connection.organization_id), chunk_lines)
    months = _MonthBook() if partitions else None
    statistics = _Statistics(enabled=analyze)
    for chunk in parser.chunks():
        if months is not None:
            months.ensure(line.event.occurred_at for line in chunk.lines)
        imported = result.imported
        refused = _chunk_import(connection, chunk.lines, detect, result) if chunk.lines else []
        statistics.after_chunk(result.imported - imported)
        # The chunk's refusals and its parse errors, reported in line order.
        for error in sorted([*chunk.errors, *refused], key=lambda e: e.line):
            result.error_add(error)
        result.lines += chunk.counted
        if progress is not None and chunk.consumed:
            progress(chunk.consumed)
    return result
