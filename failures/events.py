"""The canonical recruiting event: its validation, shared by every way events arrive.

Webhooks, bulk imports and the ATS simulator all hand a decoded JSON object to
`event_parse`, which either returns a `CanonicalEvent` or raises `EventInvalid` naming the
offending field.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from failures.choices import INTERVIEW_KINDS, EventKind, StageCategory

# How far ahead of our clock an event may claim to have happened (ATS clock skew).
MAX_CLOCK_SKEW = timedelta(hours=1)
MAX_ID_LENGTH = 200
MIN_YEAR, MAX_YEAR = 1970, 2999
MAX_TEXT_LENGTH = 300
# Deepest nesting of objects and arrays accepted anywhere in an event.
MAX_DEPTH = 32

# Unicode categories Cc (control characters) and Cs (surrogates), as one character class:
# a regular expression checks a string about three times faster than a per-character loop.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# Kinds that are about one application, and so must name it.
APPLICATION_KINDS = frozenset(
    {
        EventKind.APPLICATION_CREATED,
        EventKind.APPLICATION_STAGE_CHANGED,
        EventKind.APPLICATION_REJECTED,
        EventKind.APPLICATION_WITHDRAWN,
        EventKind.APPLICATION_HIRED,
        EventKind.OFFER_EXTENDED,
        EventKind.OFFER_ACCEPTED,
        EventKind.OFFER_DECLINED,
        EventKind.APPLICATION_ON_HOLD,
        EventKind.APPLICATION_RESUMED,
        EventKind.OFFER_APPROVED,
        EventKind.EMPLOYMENT_ENDED,
        *INTERVIEW_KINDS,
    }
)


class EventInvalid(Exception):
    """The event is malformed; `field` names the offending field in dotted form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JobRef:
    """The job an event is about, with whatever attributes the ATS sent."""

    id: str
    title: str | None = None
    team: str | None = None
    region: str | None = None
    department: str | None = None
    job_family: str | None = None
    hiring_manager_ats_id: str | None = None
    recruiter_ats_id: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    is_strategic: bool | None = None
    seniority: int | None = None


@dataclass(frozen=True)
class ApplicationRef:
    """The application an event is about."""

    id: str
    candidate_id: str
    source: str | None = None
    applied_at: datetime | None = None


@dataclass(frozen=True)
class StageRef:
    """The stage an application is in after the event; category may come from a mapping."""

    name: str
    category: str | None = None


@dataclass(frozen=True)
class InterviewRef:
    """The interview an interview or scorecard event is about."""

    id: str
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class CanonicalEvent:
    """A validated canonical recruiting event."""

    id: str
    kind: str
    occurred_at: datetime
    application: ApplicationRef | None = None
    job: JobRef | None = None
    stage: StageRef | None = None
    interview: InterviewRef | None = None
    actor_id: str = ""
    actor_role: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def json_text_plain(text: str | bytes) -> bool:
    """Whether JSON text is plain: ASCII, no backslash, no DEL, fewer than MAX_DEPTH brackets.

    Valid JSON must escape control characters inside strings, and a lone surrogate or a NUL
    can only be written as an escape; so no string decoded from plain text holds any of
    them, and nothing in it nests MAX_DEPTH deep (brackets inside strings only make the
    count larger). `event_parse(..., plain=True)` then skips those checks. Nearly every
    event an ATS sends is plain; the test costs a few C-level scans of the line.
    """
    if isinstance(text, str):
        return (
            text.isascii()
            and "\\" not in text
            and "\x7f" not in text
            and text.count("{") + text.count("[") < MAX_DEPTH
        )
    return (
        text.isascii()
        and b"\\" not in text
        and b"\x7f" not in text
        and text.count(b"{") + text.count(b"[") < MAX_DEPTH
    )


def _text(
    data: dict,
    key: str,
    path: str,
    *,
    required: bool,
    limit: int = MAX_TEXT_LENGTH,
    plain: bool = False,
):
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise EventInvalid(path, "This field is required.")
        return None
    if not isinstance(value, str):
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventInvalid(path, "Must be a string.")
        value = str(value)
    value = value.strip()
    if required and not value:
        raise EventInvalid(path, "This field is required.")
    if len(value) > limit:
        raise EventInvalid(path, f"At most {limit} characters.")
    if not plain and _CONTROL_OR_SURROGATE.search(value):
        raise EventInvalid(path, "Control characters are not allowed.")
    return value


def _check_storable(value: Any, path: str) -> None:
    """Refuse what no database column can hold: NUL, lone surrogates, runaway nesting.

    Walks iteratively (no recursion), so a deeply nested body is an error, not a crash.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, (dict, list)) and depth >= MAX_DEPTH:
            top = re.split(r"[.\[]", where, maxsplit=1)[0]
            raise EventInvalid(top or "body", f"Nested deeper than {MAX_DEPTH} levels.")
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                _check_string(key, child_path)
                stack.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((child, f"{where}[{index}]", depth + 1))
        elif isinstance(item, str):
            _check_string(item, where)


def _check_string(text: str, path: str) -> None:
    if "\x00" in text:
        raise EventInvalid(path or "body", "Control characters (NUL) are not allowed.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise EventInvalid(path or "body", "Not valid Unicode text.") from None


def _timestamp(
    data: dict, key: str, path: str, *, required: bool, latest: datetime
) -> datetime | None:
    """An aware ISO 8601 timestamp of something that happened (not after `latest`)."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise EventInvalid(path, "This field is required.")
        return None
    parsed = _timestamp_any(value, path)
    if parsed > latest:
        raise EventInvalid(path, "The timestamp is in the future.")
    return parsed


def _timestamp_any(value: Any, path: str) -> datetime:
    """An aware ISO 8601 timestamp that may lie in the future (e.g. an interview date)."""
    if not isinstance(value, str):
        raise EventInvalid(path, "Must be an ISO 8601 timestamp string.")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise EventInvalid(path, "Not a valid ISO 8601 timestamp.")
    if timezone.is_naive(parsed):
        raise EventInvalid(path, "The timestamp must include a time zone (e.g. Z).")
    # Recruiting happens in living memory: a year-1 or year-9999 stamp is a sender's bug
    # (and some cannot even be stored once converted to UTC).
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise EventInvalid(path, f"The year must be between {MIN_YEAR} and {MAX_YEAR}.")
    return parsed


def _object(data: dict, key: str, *, required: bool) -> dict | None:
    value = data.get(key)
    if value is None:
        if required:
            raise EventInvalid(key, "This field is required.")
        return None
    if not isinstance(value, dict):
        raise EventInvalid(key, "Must be a JSON object.")
    return value


def event_parse(data: Any, *, plain: bool = False, now: datetime | None = None) -> CanonicalEvent:
    """Validate one decoded JSON event; raise EventInvalid naming the first bad field.

    `plain`: the caller checked the JSON text with `json_text_plain`, so the checks for
    control characters, NUL, surrogates and depth cannot fail and are skipped. `now`: the
    clock that "in the future" is judged by (a bulk import reads it once a chunk).
    """
    if not isinstance(data, dict):
        raise EventInvalid("body", "The event must be a JSON object.")
    if not plain:
        _check_storable(data, "")
    latest = (now or timezone.now()) + MAX_CLOCK_SKEW
    event_id = _text(data, "id", "id", required=True, limit=MAX_ID_LENGTH, plain=plain)
    kind = _text(data, "kind", "kind", required=True, limit=80, plain=plain)
    if not _KIND_PATTERN.match(kind):
        raise EventInvalid("kind", "Must look like 'noun.verb', e.g. application.stage_changed.")
    occurred_at = _timestamp(data, "occurred_at", "occurred_at", required=True, latest=latest)

    needs_application = kind in APPLICATION_KINDS
    application = None
    app_data = _object(data, "application", required=needs_application)
    if app_data is not None:
        application = ApplicationRef(
            id=_text(
                app_data, "id", "application.id", required=True, limit=MAX_ID_LENGTH, plain=plain
            ),
            candidate_id=_text(
                app_data,
                "candidate_id",
                "application.candidate_id",
                required=True,
                limit=MAX_ID_LENGTH,
                plain=plain,
            ),
            source=_text(app_data, "source", "application.source", required=False, plain=plain),
            applied_at=_timestamp(
                app_data, "applied_at", "application.applied_at", required=False, latest=latest
            ),
        )

    job = None
    job_data = _object(data, "job", required=application is not None)
    if job_data is not None:
        strategic = job_data.get("is_strategic")
        if strategic is not None and not isinstance(strategic, bool):
            raise EventInvalid("job.is_strategic", "Must be true or false.")
        seniority = job_data.get("seniority")
        if seniority is not None and (
            isinstance(seniority, bool)
            or not isinstance(seniority, int)
            or not 0 <= seniority <= 20
        ):
            raise EventInvalid("job.seniority", "Must be a whole number from 0 to 20.")
        job = JobRef(
            id=_text(job_data, "id", "job.id", required=True, limit=MAX_ID_LENGTH, plain=plain),
            title=_text(job_data, "title", "job.title", required=False, plain=plain),
            team=_text(job_data, "team", "job.team", required=False, limit=120, plain=plain),
            region=_text(job_data, "region", "job.region", required=False, limit=40, plain=plain),
            department=_text(job_data, "department", "job.department", required=False, plain=plain),
            job_family=_text(job_data, "job_family", "job.job_family", required=False, plain=plain),
            hiring_manager_ats_id=_text(
                job_data,
                "hiring_manager_id",
                "job.hiring_manager_id",
                required=False,
                limit=MAX_ID_LENGTH,
                plain=plain,
            ),
            recruiter_ats_id=_text(
                job_data,
                "recruiter_id",
                "job.recruiter_id",
                required=False,
                limit=MAX_ID_LENGTH,
                plain=plain,
            ),
            opened_at=_timestamp(
                job_data, "opened_at", "job.opened_at", required=False, latest=latest
            ),
            closed_at=_timestamp(
                job_data, "closed_at", "job.closed_at", required=False, latest=latest
            ),
            is_strategic=strategic,
            seniority=seniority,
        )

    stage = None
    stage_data = _object(data, "stage", required=kind == EventKind.APPLICATION_STAGE_CHANGED)
    if stage_data is not None:
        category = _text(
            stage_data, "category", "stage.category", required=False, limit=20, plain=plain
        )
        if category is not None and category not in StageCategory.values:
            raise EventInvalid(
                "stage.category", f"Must be one of: {', '.join(StageCategory.values)}."
            )
        stage = StageRef(
            name=_text(stage_data, "name", "stage.name", required=True, limit=200, plain=plain),
            category=category,
        )

    interview = None
    interview_data = _object(data, "interview", required=kind in INTERVIEW_KINDS)
    if interview_data is not None:
        scheduled_for = interview_data.get("scheduled_for")
        interview = InterviewRef(
            id=_text(
                interview_data,
                "id",
                "interview.id",
                required=True,
                limit=MAX_ID_LENGTH,
                plain=plain,
            ),
            scheduled_for=_timestamp_any(scheduled_for, "interview.scheduled_for")
            if scheduled_for is not None
            else None,
        )

    actor = _object(data, "actor", required=False) or {}
    details = _object(data, "details", required=False) or {}
    return CanonicalEvent(
        id=event_id,
        kind=kind,
        occurred_at=occurred_at,
        application=application,
        job=job,
        stage=stage,
        interview=interview,
        actor_id=_text(actor, "id", "actor.id", required=False, limit=MAX_ID_LENGTH, plain=plain)
        or "",
        actor_role=_text(actor, "role", "actor.role", required=False, limit=60, plain=plain) or "",
        details=details,
        raw=data,
    )
