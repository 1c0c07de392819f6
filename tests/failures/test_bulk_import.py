"""Bulk import (failures.bulk): equal to recording one by one, dedupe, bad lines, tenancy."""

import io
import json
import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from failures.bulk import LINE_TOO_LONG, events_import, lines_read
from failures.choices import FailureStatus, ReopenPolicy, VersionStatus
from failures.models import (
    Application,
    ApplicationHold,
    AtsConnection,
    Candidate,
    ComplianceExclusion,
    DefinitionVersion,
    EventKey,
    Failure,
    FailureDefinition,
    IntegrationError,
    Interview,
    Job,
    RecruitingEvent,
    StageTransition,
)
from failures.services import event_record
from tests.factories import AtsConnectionFactory

# Rules beyond the two standard ones, so that every on-event detector has work:
# (code, category, detector, parameters, version options).
EXTRA_DEFINITIONS = [
    (
        "DROP",
        "screening",
        "candidate_drop_off",
        {},
        {"excluded_reasons": ["Accommodation"], "on_reopen": ReopenPolicy.RESOLVE},
    ),
    ("SCHED", "interviewing", "scheduling_missed", {"max_hours": 48, "unit": "calendar_days"}, {}),
    ("FEEDBACK", "interviewing", "feedback_overdue", {"max_hours": 48}, {}),
    ("UNAPPROVED", "offer", "approval_missing", {}, {"on_reopen": ReopenPolicy.DISMISS}),
    ("BADHIRE", "onboarding", "bad_hire", {"max_days": 90}, {}),
]
JOBS = [
    {"id": "job-1", "title": "Backend Engineer", "team": "Platform", "region": "EMEA"},
    {"id": "job-2", "title": "Data Engineer", "team": "Data", "region": "APAC", "seniority": 3},
    {"id": "job-3", "title": "Staff Engineer", "region": "AMER", "is_strategic": True},
]


def _rules(organization) -> None:
    since = timezone.now() - timedelta(days=400)
    for code, category, detector, parameters, options in EXTRA_DEFINITIONS:
        definition = FailureDefinition.objects.create(
            organization=organization, code=code, name=code, stage_category=category
        )
        DefinitionVersion.objects.create(
            definition=definition,
            number=1,
            detector=detector,
            parameters=parameters,
            status=VersionStatus.APPROVED,
            effective_from=since,
            approved_at=since,
            **options,
        )


def _stamp(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _story(rng: random.Random, n: int, start: datetime) -> list[tuple[datetime, dict]]:
    """One application's events: stages, holds, interviews, offers, closes and re-opens."""
    job = dict(rng.choice(JOBS))
    application = {
        "id": f"app-{n}",
        "candidate_id": f"cand-{n}",
        "source": rng.choice(["LinkedIn", "Referral", None]),
        "applied_at": _stamp(start),
    }
    steps: list[tuple[datetime, str, dict]] = []
    t = start

    def step(kind: str, hours: float, role: str = "recruiter", **extra: Any) -> None:
        nonlocal t
        t += timedelta(hours=hours)
        steps.append((t, kind, {"actor": {"id": f"{role}-1", "role": role}, **extra}))

    step("application.created", 0, stage={"name": "Application Review"})
    if rng.random() < 0.3:
        step("application.on_hold", rng.uniform(1, 30))
        step("application.resumed", rng.uniform(1, 90))
    step("application.stage_changed", rng.uniform(2, 300), stage={"name": "Phone Screen"})
    roll = rng.random()
    if roll < 0.15:
        reason = rng.choice(["Accommodation", "Took another job"])
        step("application.withdrawn", rng.uniform(5, 80), "candidate", details={"reason": reason})
        if rng.random() < 0.5:  # the ATS re-opens it
            step("application.stage_changed", rng.uniform(5, 50), stage={"name": "Phone Screen"})
        else:
            return [
                (at, _event(n, k, kind, at, application, job, extra))
                for k, (at, kind, extra) in enumerate(steps)
            ]
    elif roll < 0.3:
        step("application.rejected", rng.uniform(5, 80))
        if rng.random() < 0.4:
            step("application.stage_changed", rng.uniform(5, 50), stage={"name": "Onsite"})
    step("application.stage_changed", rng.uniform(2, 100), stage={"name": "Onsite"})
    interview = {"id": f"int-{n}"}
    step("interview.scheduled", rng.uniform(1, 90), interview=interview)
    if rng.random() < 0.2:
        step("interview.cancelled", rng.uniform(1, 20), interview=interview)
        if rng.random() < 0.5:
            step("interview.scheduled", rng.uniform(1, 90), interview=interview)
    if rng.random() < 0.1:
        step("interview.no_show", rng.uniform(20, 40), "system", interview=interview)
    step("interview.completed", rng.uniform(20, 60), "interviewer", interview=interview)
    step("scorecard.submitted", rng.uniform(1, 90), "interviewer", interview=interview)
    if rng.random() < 0.3:
        step("application.rejected", rng.uniform(2, 40))
        return [
            (at, _event(n, k, kind, at, application, job, extra))
            for k, (at, kind, extra) in enumerate(steps)
        ]
    step("application.stage_changed", rng.uniform(2, 40), stage={"name": "Offer"})
    if rng.random() < 0.8:
        step("offer.approved", rng.uniform(1, 5), stage={"name": "Offer"})
    step("offer.extended", rng.uniform(1, 20), stage={"name": "Offer"})
    if rng.random() < 0.25:
        step("offer.declined", rng.uniform(10, 80), "candidate", details={"reason": "Pay"})
        step("application.withdrawn", 1, "candidate")
    else:
        step("offer.accepted", rng.uniform(10, 80), "candidate", stage={"name": "Offer"})
        step(
            "application.stage_changed", 1, stage={"name": "Pre-boarding", "category": "onboarding"}
        )
        for _ in range(rng.choice([0, 1, 3])):
            step("integration.error", rng.uniform(0.1, 0.3), "system", details={"system": "checkr"})
        if rng.random() < 0.5:
            step("integration.recovered", 0.2, "system", details={"system": "checkr"})
        step("application.hired", rng.uniform(20, 200))
        if rng.random() < 0.3:
            step("employment.ended", rng.uniform(24 * 10, 24 * 120), "system")
    return [
        (at, _event(n, k, kind, at, application, job, extra))
        for k, (at, kind, extra) in enumerate(steps)
    ]


def _event(n, k, kind, at, application, job, extra) -> dict:
    return {
        "id": f"evt-{n}-{k}",
        "kind": kind,
        "occurred_at": _stamp(at),
        "application": application,
        "job": job,
        **extra,
    }


def mixed_stream(seed: int, applications: int = 40) -> list[str]:
    """A realistic backfill file: interleaved in time, some lines late, repeated or bad."""
    rng = random.Random(seed)
    now = timezone.now()
    events: list[tuple[datetime, dict]] = []
    for n in range(1, applications + 1):
        events += _story(rng, n, now - timedelta(days=rng.uniform(130, 180)))
    # Job-only events: a job changes title and becomes strategic halfway through.
    job_change = {"id": "job-1", "title": "Senior Backend Engineer", "is_strategic": True}
    events.append(
        (
            now - timedelta(days=45),
            {
                "id": "job-evt-1",
                "kind": "job.updated",
                "occurred_at": _stamp(now - timedelta(days=140)),
                "job": job_change,
            },
        )
    )
    # A withdrawal from screening that the ATS re-opens: the drop-off failure is resolved.
    reopened = {"id": "app-r", "candidate_id": "cand-r"}
    for k, (kind, stage, days) in enumerate(
        [
            ("application.created", "Phone Screen", 100),
            ("application.withdrawn", None, 99),
            ("application.stage_changed", "Phone Screen", 98),
        ]
    ):
        at = now - timedelta(days=days)
        extra: dict[str, Any] = {"stage": {"name": stage}} if stage else {}
        extra["actor"] = {"id": "recruiter-1", "role": "recruiter"}
        events.append((at, _event("r", k, kind, at, reopened, JOBS[0], extra)))
    # Events after now have not happened yet.
    events = sorted((item for item in events if item[0] < now), key=lambda item: item[0])
    lines = [json.dumps(event) for _, event in events]
    # Out of order: some events arrive well after later ones.
    for _ in range(len(lines) // 15):
        i = rng.randrange(len(lines) - 8)
        lines.insert(i + rng.randint(2, 8), lines.pop(i))
    # Duplicates: the same id again, sometimes with other content (the first one wins).
    for _ in range(len(lines) // 20):
        i = rng.randrange(len(lines))
        copy = json.loads(lines[i])
        if rng.random() < 0.5 and "application" in copy:
            copy["occurred_at"] = _stamp(now - timedelta(days=1))
            copy["kind"] = "application.rejected"
        lines.insert(rng.randrange(i, len(lines)), json.dumps(copy))
    bad = [
        "{not json",
        json.dumps({"id": "bad-1", "kind": "application.stage_changed"}),
    ]
    mismatch = json.dumps(
        {
            "id": "bad-2",
            "kind": "application.stage_changed",
            "occurred_at": _stamp(now - timedelta(days=2)),
            "application": {"id": "app-1", "candidate_id": "someone-else"},
            "job": JOBS[0],
            "stage": {"name": "Phone Screen"},
        }
    )
    bad += [
        json.dumps(
            {
                "id": "bad-3",
                "kind": "application.stage_changed",
                "occurred_at": _stamp(now - timedelta(days=2)),
                "application": {"id": "app-2", "candidate_id": "cand-2"},
                "job": JOBS[0],
                "stage": {"name": "Mystery Stage"},
            }
        ),
    ]
    for line in bad:
        lines.insert(rng.randrange(len(lines)), line)
    # After its application exists, or it would create it with that other candidate.
    lines.append(mismatch)
    return lines


def mirror(connection: AtsConnection) -> dict[str, Any]:
    """Everything recording writes for a connection, without ids, tenants or clock times."""
    apps = Application.objects.filter(connection=connection)
    events = RecruitingEvent.objects.filter(connection=connection)
    history = Job.history.model.objects.filter(connection_id=connection.pk)
    return {
        "events": list(
            events.order_by("pk").values_list(
                "event_id", "kind", "occurred_at", "application__ats_id", "payload"
            )
        ),
        "keys": sorted(
            (k.event_id, k.occurred_at, RecruitingEvent.objects.get(pk=k.event_pk).event_id)
            for k in EventKey.objects.filter(connection=connection)
        ),
        "jobs": list(
            Job.objects.filter(connection=connection)
            .order_by("ats_id")
            .values_list(
                "ats_id",
                "title",
                "team__name",
                "region__code",
                "job_family",
                "is_strategic",
                "seniority",
                "opened_at",
                "closed_at",
                "department",
            )
        ),
        "job_history": list(
            history.order_by("ats_id", "history_id").values_list(
                "ats_id",
                "history_type",
                "history_change_reason",
                "title",
                "is_strategic",
                "region_id",
                "team_id",
                "seniority",
            )
        ),
        "candidates": sorted(
            Candidate.objects.filter(connection=connection).values_list("ats_id", flat=True)
        ),
        "applications": list(
            apps.order_by("ats_id").values_list(
                "ats_id",
                "candidate__ats_id",
                "job__ats_id",
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
        ),
        "transitions": list(
            StageTransition.objects.filter(application__connection=connection)
            .order_by("application__ats_id", "pk")
            .values_list(
                "application__ats_id",
                "from_stage",
                "from_category",
                "to_stage",
                "to_category",
                "occurred_at",
                "actor_ats_id",
                "actor_role",
                "event__event_id",
            )
        ),
        "holds": list(
            ApplicationHold.objects.filter(application__connection=connection)
            .order_by("application__ats_id", "started_at")
            .values_list("application__ats_id", "started_at", "ended_at")
        ),
        "interviews": list(
            Interview.objects.filter(application__connection=connection)
            .order_by("application__ats_id", "ats_id")
            .values_list(
                "application__ats_id",
                "ats_id",
                "scheduled_at",
                "scheduled_for",
                "cancelled_at",
                "completed_at",
                "no_show_at",
                "scorecard_submitted_at",
            )
        ),
        "integration_errors": list(
            IntegrationError.objects.filter(application__connection=connection)
            .order_by("application__ats_id", "occurred_at", "event_id")
            .values_list("application__ats_id", "system", "occurred_at", "recovered_at", "event_id")
        ),
        "failures": sorted(
            (
                f.definition.code,
                f.application.ats_id,
                f.dedupe_key,
                f.occurred_at,
                f.status,
                f.status_reason,
                json.dumps(f.details, sort_keys=True),
            )
            for f in Failure.objects.filter(application__connection=connection).select_related(
                "definition", "application"
            )
        ),
        "excluded": sorted(
            ComplianceExclusion.objects.filter(
                version__definition__organization_id=connection.organization_id
            ).values_list("version__definition__code", "reason", "count")
        ),
    }


def record_one_by_one(connection: AtsConnection, lines: list[str]) -> None:
    """services.event_record for each line, skipping what it refuses."""
    from failures.events import EventInvalid

    for line in lines:
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        try:
            event_record(connection=connection, payload=payload)
        except EventInvalid:
            continue


def _region_and_team_names(rows: list[tuple]) -> list[tuple]:
    """Job history rows name regions and teams by id; compare by name instead."""
    from failures.models import Region, Team

    regions = dict(Region.objects.values_list("pk", "code"))
    teams = dict(Team.objects.values_list("pk", "name"))
    return [(*row[:5], regions.get(row[5]), teams.get(row[6]), row[7]) for row in rows]


@pytest.fixture
def twin_connections(org, other_org):
    """Two organizations set up alike, each with a connection: one per recording path."""
    _rules(org)
    _rules(other_org)
    one_by_one = AtsConnectionFactory(organization=org)
    bulk = AtsConnectionFactory(organization=other_org)
    return one_by_one, bulk


def _assert_same(one_by_one: AtsConnection, bulk: AtsConnection) -> None:
    expected, got = mirror(one_by_one), mirror(bulk)
    for key in ("job_history",):
        expected[key] = _region_and_team_names(expected[key])
        got[key] = _region_and_team_names(got[key])
    for key in expected:
        assert got[key] == expected[key], key


@pytest.mark.django_db
@pytest.mark.parametrize(("seed", "chunk_lines"), [(1, 5000), (3, 7)])
def test_bulk_import_equals_recording_one_by_one(twin_connections, seed, chunk_lines):
    one_by_one, bulk = twin_connections
    lines = mixed_stream(seed)
    record_one_by_one(one_by_one, lines)

    result = events_import(connection=bulk, lines=lines, chunk_lines=chunk_lines)

    _assert_same(one_by_one, bulk)
    assert result.imported == RecruitingEvent.objects.filter(connection=bulk).count()
    assert result.imported + result.duplicates + result.invalid == result.lines == len(lines)
    assert result.invalid == 4
    assert result.failures == Failure.objects.filter(organization=bulk.organization).count() > 0
    # The stream exercised what it should: late events, holds, interviews, re-opens.
    kinds = set(Failure.objects.values_list("definition__code", flat=True))
    assert {"SCR-SLA-BREACH", "DROP", "SCHED", "FEEDBACK", "UNAPPROVED", "OFR-DECLINED"} <= kinds
    assert Failure.objects.filter(status=FailureStatus.RESOLVED).exists()
    assert ApplicationHold.objects.filter(application__connection=bulk).exists()
    assert ComplianceExclusion.objects.exists()


# --- Dedupe ---------------------------------------------------------------------------------


@pytest.fixture
def bulk_connection(org):
    return AtsConnectionFactory(organization=org)


def _lines(*events: dict) -> list[str]:
    return [json.dumps(event) for event in events]


@pytest.mark.django_db
def test_importing_the_same_file_again_changes_nothing(bulk_connection):
    lines = mixed_stream(5, applications=12)
    first = events_import(connection=bulk_connection, lines=lines)
    before = mirror(bulk_connection)

    again = events_import(connection=bulk_connection, lines=lines)

    assert again.imported == 0
    assert again.failures == 0
    assert again.duplicates == first.imported + first.duplicates
    assert again.invalid == first.invalid
    assert mirror(bulk_connection) == before


@pytest.mark.django_db
def test_a_repeated_id_in_the_file_is_a_duplicate_and_the_first_wins(bulk_connection, make_event):
    first = make_event(id="evt-a", stage={"name": "Phone Screen"})
    second = make_event(id="evt-a", stage={"name": "Onsite", "category": "interviewing"})

    result = events_import(connection=bulk_connection, lines=_lines(first, second))

    assert (result.imported, result.duplicates) == (1, 1)
    assert RecruitingEvent.objects.get(event_id="evt-a").payload == first
    assert Application.objects.get(ats_id="app-9").current_stage == "Phone Screen"
    assert StageTransition.objects.count() == 1


@pytest.mark.django_db
def test_events_already_recorded_by_the_webhook_are_duplicates(bulk_connection, make_event):
    recorded = make_event(id="evt-live")
    event_record(connection=bulk_connection, payload=recorded)
    late = make_event(id="evt-live", stage={"name": "Onsite", "category": "interviewing"})
    new = make_event(
        id="evt-new",
        occurred_at="2026-11-03T09:00:00Z",
        stage={"name": "Offer", "category": "offer"},
    )

    result = events_import(connection=bulk_connection, lines=_lines(late, new))

    assert (result.imported, result.duplicates) == (1, 1)
    assert EventKey.objects.filter(connection=bulk_connection).count() == 2
    application = Application.objects.get(ats_id="app-9")
    assert (application.current_stage, application.stage_category) == ("Offer", "offer")


@pytest.mark.django_db
def test_the_same_event_id_of_another_connection_is_not_a_duplicate(org, make_event):
    one, two = AtsConnectionFactory(organization=org), AtsConnectionFactory(organization=org)
    event = make_event(id="evt-shared")
    events_import(connection=one, lines=_lines(event))

    result = events_import(connection=two, lines=_lines(event))

    assert result.imported == 1
    assert RecruitingEvent.objects.filter(event_id="evt-shared").count() == 2


@pytest.mark.django_db
def test_a_refused_line_does_not_take_its_event_id(bulk_connection, make_event):
    """As with event_record, a line refused by the mirror leaves no key behind."""
    owner = make_event(id="evt-1")
    thief = make_event(id="evt-2", application={"candidate_id": "cand-other"})
    retry = make_event(id="evt-2", occurred_at="2026-11-03T09:00:00Z", stage={"name": "Offer"})

    result = events_import(connection=bulk_connection, lines=_lines(owner, thief, retry))

    assert (result.imported, result.duplicates, result.invalid) == (2, 0, 1)
    assert result.errors[0].as_dict() == {
        "line": 2,
        "field": "application.candidate_id",
        "message": "Does not match the candidate this application already belongs to.",
    }
    assert Application.objects.get(ats_id="app-9").current_stage == "Offer"


# --- Bad and hostile lines --------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_lines_are_reported_by_number_and_field_and_the_rest_imported(
    bulk_connection, make_event
):
    deep = "[" * 100_000 + "]" * 100_000
    nested: dict = {}
    inner = nested
    for _ in range(40):
        inner["x"] = {}
        inner = inner["x"]
    lines: list[Any] = [
        json.dumps(make_event(id="ok-1")),
        b"\xff\xfe not utf-8",
        "",  # blank lines are skipped, not counted
        json.dumps(make_event(id="nul", actor={"id": "a\u0000b"})),
        deep,
        json.dumps(make_event(id="deep", details=nested)),
        json.dumps(make_event(id="types", occurred_at=12345)),
        json.dumps(make_event(id="types-2", application="app-9")),
        json.dumps(make_event(id="types-3", job={"is_strategic": "yes"})),
        '{"id": "nan", "kind": "job.updated", "occurred_at": NaN}',
        json.dumps([make_event(id="array")]),
        json.dumps(make_event(id="future", occurred_at="2999-01-01T00:00:00Z")),
        json.dumps(make_event(id="x" * 500)),
        LINE_TOO_LONG,
        json.dumps(make_event(id="ok-2", occurred_at="2026-11-03T09:00:00Z")),
    ]

    result = events_import(connection=bulk_connection, lines=lines)

    assert result.imported == 2
    assert result.lines == len(lines) - 1
    assert [(e.line, e.field) for e in result.errors] == [
        (2, "body"),
        (4, "actor.id"),
        (5, "body"),
        (6, "details"),
        (7, "occurred_at"),
        (8, "application"),
        (9, "job.is_strategic"),
        (10, "body"),
        (11, "body"),
        (12, "occurred_at"),
        (13, "id"),
        (14, "body"),
    ]
    assert result.invalid == 12
    assert set(RecruitingEvent.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_lines_read_skips_an_overlong_line_without_holding_it():
    stream = io.BytesIO(b'{"a": 1}\n' + b"x" * 5_000_000 + b"\n" + b'{"b": 2}' + b"\n\n" + b"end")

    lines = list(lines_read(stream, max_bytes=1000))

    assert lines == [b'{"a": 1}\n', LINE_TOO_LONG, b'{"b": 2}\n', b"\n", b"end"]


@pytest.mark.django_db
def test_an_overlong_line_in_a_file_is_one_error(bulk_connection, make_event, settings):
    settings.FAILTRACK_WEBHOOK_MAX_BYTES = 2000
    good = json.dumps(make_event(id="ok")).encode()
    huge = json.dumps(make_event(id="huge", details={"pad": "p" * 10_000})).encode()
    stream = io.BytesIO(huge + b"\n" + good + b"\n")

    result = events_import(connection=bulk_connection, lines=lines_read(stream))

    assert (result.imported, result.invalid) == (1, 1)
    assert result.errors[0].as_dict() == {
        "line": 1,
        "field": "body",
        "message": "Line longer than 2000 bytes.",
    }


# --- Tenancy ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_connection_never_writes_into_another_organization(org, other_org, make_event):
    """The other tenant has a job, candidate and application with the very same ATS ids."""
    theirs = AtsConnectionFactory(organization=other_org)
    event_record(connection=theirs, payload=make_event(id="evt-theirs"))
    before = mirror(theirs)
    ours = AtsConnectionFactory(organization=org)

    result = events_import(
        connection=ours,
        lines=_lines(
            make_event(id="evt-theirs"),
            make_event(id="evt-2", kind="application.rejected", stage=None),
        ),
    )

    assert result.imported == 2
    assert mirror(theirs) == before
    for model in (Job, Candidate, Application, RecruitingEvent):
        assert model.objects.filter(connection=ours).count() >= 1
        assert set(
            model.objects.filter(connection=ours).values_list("organization_id", flat=True)
        ) == {org.pk}
    assert Application.objects.get(connection=theirs).status == "active"
    assert Application.objects.get(connection=ours).status == "rejected"


# --- Detection and progress ---------------------------------------------------------------------


@pytest.mark.django_db
def test_on_event_failures_are_found_unless_detection_is_off(org, make_event):
    declined = make_event(id="evt-d", kind="offer.declined", stage={"name": "Offer"})
    quiet = AtsConnectionFactory(organization=org)

    off = events_import(connection=quiet, lines=_lines(declined), detect=False)

    assert (off.imported, off.failures) == (1, 0)
    assert not Failure.objects.exists()
    loud = AtsConnectionFactory(organization=org)
    on = events_import(connection=loud, lines=_lines(declined))
    assert on.failures == 1
    failure = Failure.objects.get()
    assert (failure.definition.code, failure.dedupe_key) == ("OFR-DECLINED", "event:evt-d")


@pytest.mark.django_db
def test_progress_counts_every_line(bulk_connection, make_event):
    lines = [*_lines(*(make_event(id=f"e{i}") for i in range(10))), "", "{bad"]
    seen: list[int] = []

    events_import(connection=bulk_connection, lines=lines, chunk_lines=3, progress=seen.append)

    assert sum(seen) == 12
    assert len(seen) == 4


# --- Management command ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_imports_a_file_and_lists_bad_lines(bulk_connection, make_event, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(_lines(make_event(id="a"), make_event(id="a"))) + "\n{oops\n", "utf-8"
    )
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "events_import", str(path), "--connection", str(bulk_connection.pk), stdout=out, stderr=err
    )

    assert "1 imported, 1 duplicates, 1 invalid of 3 lines" in out.getvalue()
    assert "line 3: body: Malformed JSON" in out.getvalue()
    assert "importing" in err.getvalue()
    assert RecruitingEvent.objects.filter(connection=bulk_connection).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("connection_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_command_refuses_an_unknown_connection(connection_id, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "events.jsonl"
    path.write_text("", "utf-8")
    with pytest.raises(CommandError):
        call_command("events_import", str(path), "--connection", connection_id)


# --- Partitions of the event log ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_backfill_creates_the_months_it_needs_but_not_ancient_ones(bulk_connection, make_event):
    from django.db import connection as db

    from failures.partitions import partition_list

    if db.vendor != "postgresql":
        pytest.skip("the event log is partitioned on PostgreSQL only")
    lines = _lines(
        make_event(id="m-1", occurred_at="2025-03-15T10:00:00Z"),
        make_event(id="m-2", occurred_at="2025-07-01T00:00:00Z", stage={"name": "Onsite"}),
        make_event(id="m-3", occurred_at="1990-01-01T00:00:00Z", kind="job.updated"),
    )

    result = events_import(connection=bulk_connection, lines=lines)

    assert result.imported == 3
    months = {p.month for p in partition_list("failures_recruitingevent")}
    assert {date(2025, 3, 1), date(2025, 7, 1)} <= months
    assert date(1990, 1, 1) not in months
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, event_id FROM failures_recruitingevent "
            "WHERE event_id LIKE 'm-%%' ORDER BY event_id"
        )
        homes = dict((event_id, table) for table, event_id in cursor.fetchall())
    assert homes["m-1"].endswith("2025_03") and homes["m-2"].endswith("2025_07")
    assert homes["m-3"].endswith("default")


@pytest.mark.django_db
def test_a_chunk_that_meets_a_concurrent_writer_is_redone(bulk_connection, make_event, monkeypatch):
    """Another writer records one of the chunk's ids between its lookup and its keys."""
    import failures.bulk as bulk

    apply = bulk._Chunk.apply
    attempts: list[int] = []

    def apply_then_race(chunk):
        attempts.append(1)
        apply(chunk)
        if len(attempts) == 1:  # the webhook got there first, inside this attempt only
            EventKey.objects.create(
                connection=bulk_connection,
                event_id="race-1",
                event_pk=0,
                occurred_at=timezone.now(),
            )

    monkeypatch.setattr(bulk._Chunk, "apply", apply_then_race)
    lines = _lines(make_event(id="race-1"), make_event(id="race-2"))

    result = events_import(connection=bulk_connection, lines=lines)

    assert len(attempts) == 2
    assert (result.imported, result.duplicates) == (2, 0)
    assert EventKey.objects.filter(connection=bulk_connection).count() == 2
    assert set(
        RecruitingEvent.objects.filter(pk__in=EventKey.objects.values("event_pk")).values_list(
            "event_id", flat=True
        )
    ) == {"race-1", "race-2"}


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "expected"), [(1, 4), (None, 0)])
def test_a_long_import_keeps_the_planner_statistics_fresh(
    bulk_connection, make_event, monkeypatch, first, expected
):
    """From FIRST events on, once per doubling; a small batch never pays for it."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    import failures.bulk as bulk

    if db.vendor != "postgresql":
        pytest.skip("statistics are PostgreSQL's")
    if first is not None:
        monkeypatch.setattr(bulk._Statistics, "FIRST", first)
    lines = _lines(*(make_event(id=f"s-{i}") for i in range(9)))

    with CaptureQueriesContext(db) as queries:
        events_import(connection=bulk_connection, lines=lines, chunk_lines=1)

    analyzed = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]
    assert len(analyzed) == expected  # with FIRST 1: after 1, 2, 4 and 8 of 9 events
    if analyzed:
        assert "failures_eventkey" in analyzed[0] and "failures_application" in analyzed[0]


@pytest.mark.django_db
@pytest.mark.parametrize("workers", ["0", "17", "many"])
def test_command_refuses_a_bad_number_of_workers(bulk_connection, workers, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "events.jsonl"
    path.write_text("", "utf-8")
    with pytest.raises(CommandError, match="workers"):
        call_command(
            "events_import",
            str(path),
            "--connection",
            str(bulk_connection.pk),
            "--workers",
            workers,
        )
