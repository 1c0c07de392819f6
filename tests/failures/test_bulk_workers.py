"""A bulk import shared among worker processes (failures.bulk_workers), on PostgreSQL.

Workers commit on connections of their own, so these tests run outside a test transaction
(`transaction=True`: the database is emptied afterwards).
"""

import json
import multiprocessing
import zlib
from typing import Any

import pytest
from django.db import connection as db

from failures.bulk import LINE_TOO_LONG, events_import
from failures.bulk_workers import WorkerFailed
from failures.models import Application, Candidate, EventKey, RecruitingEvent
from tests.factories import AtsConnectionFactory
from tests.failures.test_bulk_import import (
    _lines,
    _rules,
    mirror,
    mixed_stream,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        db.vendor != "postgresql", reason="workers import on PostgreSQL only (CI runs it)"
    ),
]


@pytest.fixture(autouse=True)
def _months_dropped_afterwards(transactional_db):
    """Partitions outlive the emptying of tables; drop the months these tests created."""
    from failures.partitions import partition_list

    before = {p.name for p in partition_list("failures_recruitingevent")}
    yield
    with db.cursor() as cursor:
        for partition in partition_list("failures_recruitingevent"):
            if partition.name not in before:
                cursor.execute(f'DROP TABLE IF EXISTS "{partition.name}"')


def _worker_of(job_id: str, workers: int) -> int:
    return zlib.crc32(job_id.encode()) % workers


def _jobs_in_two_workers() -> tuple[dict, dict]:
    """Two jobs that two workers split between them."""
    ids = [f"job-{n}" for n in range(20)]
    first = ids[0]
    second = next(i for i in ids if _worker_of(i, 2) != _worker_of(first, 2))
    return {"id": first, "title": "First"}, {"id": second, "title": "Second"}


def test_workers_import_what_one_process_imports(org, other_org):
    """Mirror, event log, keys, failures and refused lines: the same with 3 workers."""
    _rules(org)
    _rules(other_org)
    one = AtsConnectionFactory(organization=org)
    shared = AtsConnectionFactory(organization=other_org)
    # Without the line naming app-1 under another candidate after the fact: which of two
    # conflicting lines wins is the one documented difference (docs/limitations.md).
    lines = [line for line in mixed_stream(5, applications=60) if '"bad-2"' not in line]

    alone = events_import(connection=one, lines=lines, chunk_lines=7)
    together = events_import(connection=shared, lines=lines, chunk_lines=7, workers=3)

    assert alone.imported > 300
    assert (together.lines, together.imported, together.duplicates, together.invalid) == (
        alone.lines,
        alone.imported,
        alone.duplicates,
        alone.invalid,
    )
    assert together.failures == alone.failures > 0
    assert [(e.line, e.field, e.message) for e in together.errors] == [
        (e.line, e.field, e.message) for e in alone.errors
    ]
    # Event rows are numbered in the order workers wrote them: compare them as a set.
    expected, got = mirror(one), mirror(shared)
    assert sorted(got.pop("events"), key=str) == sorted(expected.pop("events"), key=str)
    _assert_same_parts(expected, got)


def _assert_same_parts(expected: dict[str, Any], got: dict[str, Any]) -> None:
    from tests.failures.test_bulk_import import _region_and_team_names

    expected["job_history"] = _region_and_team_names(expected["job_history"])
    got["job_history"] = _region_and_team_names(got["job_history"])
    for key in expected:
        assert got[key] == expected[key], key


def test_a_candidate_of_jobs_in_two_workers_is_one_row(org, make_event):
    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    events = []
    for n in range(40):  # the same candidates apply to both jobs, chunk after chunk
        for job in (first, second):
            events.append(
                make_event(
                    id=f"{job['id']}-{n}",
                    application={"id": f"{job['id']}-app-{n}", "candidate_id": f"cand-{n % 5}"},
                    job=job,
                )
            )

    result = events_import(connection=connection, lines=_lines(*events), chunk_lines=1, workers=2)

    assert (result.imported, result.invalid) == (80, 0)
    assert Candidate.objects.filter(connection=connection).count() == 5
    for n in range(5):
        candidate = Candidate.objects.get(connection=connection, ats_id=f"cand-{n}")
        jobs = set(candidate.applications.values_list("job__ats_id", flat=True))
        assert jobs == {first["id"], second["id"]}
    assert Application.objects.filter(connection=connection).count() == 80


def test_bad_lines_and_progress_come_back_in_line_order(org, make_event, settings):
    settings.FAILTRACK_WEBHOOK_MAX_BYTES = 5000
    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()

    def event(event_id: str, job: dict, **overrides: Any) -> str:
        application = {"id": f"app-{job['id']}", "candidate_id": "c-1"}
        return json.dumps(make_event(id=event_id, job=job, application=application, **overrides))

    lines: list[Any] = [
        event("ok-1", first),
        "{not json",
        "",
        event("ok-2", second),
        LINE_TOO_LONG,
        event("no-kind", second, kind=None),
        event("late", first, occurred_at="2999-01-01T00:00:00Z"),
        json.dumps([1, 2]),
        event("ok-3", first),
        "x" * 6000,
    ]
    seen: list[int] = []

    result = events_import(
        connection=connection, lines=lines, chunk_lines=2, workers=2, progress=seen.append
    )

    assert sum(seen) == len(lines)
    assert result.imported == 3
    assert result.lines == len(lines) - 1  # the blank one
    assert [(e.line, e.field) for e in result.errors] == [
        (2, "body"),
        (5, "body"),
        (6, "kind"),
        (7, "occurred_at"),
        (8, "body"),
        (10, "body"),
    ]
    assert result.invalid == 6
    assert set(RecruitingEvent.objects.values_list("event_id", flat=True)) == {
        "ok-1",
        "ok-2",
        "ok-3",
    }


def test_an_event_id_used_for_two_jobs_is_recorded_once(org, make_event):
    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    lines = _lines(
        make_event(id="same", job=first, application={"id": "a-1", "candidate_id": "c-1"}),
        make_event(id="same", job=second, application={"id": "a-2", "candidate_id": "c-2"}),
    )

    result = events_import(connection=connection, lines=lines, workers=2)

    assert (result.imported, result.duplicates) == (1, 1)
    assert EventKey.objects.filter(connection=connection, event_id="same").count() == 1
    assert RecruitingEvent.objects.filter(connection=connection).count() == 1


def test_a_failing_worker_stops_the_import_with_its_error(org, make_event, monkeypatch):
    import failures.bulk as bulk

    chunk_import = bulk._chunk_import

    def explode_on_one_line(connection, lines, detect, result):
        if any(line.event.id == "explode" for line in lines):
            raise RuntimeError("the disk is full")
        return chunk_import(connection, lines, detect, result)

    # Workers are forked, so they run the patched function.
    monkeypatch.setattr(bulk, "_chunk_import", explode_on_one_line)
    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    lines = _lines(
        *(make_event(id=f"fine-{n}", job=second) for n in range(3000)),
        make_event(id="explode", job=first, application={"id": "app-x", "candidate_id": "c-x"}),
    )

    with pytest.raises(WorkerFailed, match="RuntimeError: the disk is full"):
        events_import(connection=connection, lines=lines, chunk_lines=10, workers=2)

    assert not multiprocessing.active_children()  # the other worker was stopped too


def test_dates_out_of_range_are_refused_lines_and_make_no_partitions(org, make_event):
    """The router reads each line's date to create its month first: never for a bad one."""
    from failures.partitions import partition_list

    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    dates = [
        "0001-01-01T00:00:00+01:00",  # before the year 1 in UTC
        "9999-12-31T23:30:00-01:00",  # after the year 9999 in UTC
        "2999-01-01T00:00:00Z",  # in the future
        "2026-01-01T00:00:00",  # no time zone
    ]
    lines = _lines(
        *(
            make_event(
                id=f"odd-{n}",
                occurred_at=moment,
                job=first if n % 2 else second,
                application={"id": f"odd-app-{n}", "candidate_id": "c-1"},
            )
            for n, moment in enumerate(dates)
        ),
        make_event(id="fine", job=first, application={"id": "fine-app", "candidate_id": "c-1"}),
    )

    before = {p.month for p in partition_list("failures_recruitingevent")}

    result = events_import(connection=connection, lines=lines, workers=2)

    assert result.imported == 1
    assert [(e.line, e.field) for e in result.errors] == [(n, "occurred_at") for n in range(1, 5)]
    created = {p.month for p in partition_list("failures_recruitingevent")} - before
    assert not any(month.year in (1, 2999, 9999) for month in created)


def test_a_job_id_with_spaces_is_the_same_job_in_the_same_worker(org, make_event):
    connection = AtsConnectionFactory(organization=org)
    ids = [" J1", "J1", "J1 "]  # event_parse strips them: one job, its lines in order
    lines = _lines(
        *(
            make_event(
                id=f"j-{n}",
                job={"id": job_id},
                application={"id": "app-j", "candidate_id": "c-j"},
                stage={"name": f"Stage {n}"},
                occurred_at=f"2026-11-0{n + 1}T09:00:00Z",
            )
            for n, job_id in enumerate(ids)
        )
    )

    result = events_import(connection=connection, lines=lines, chunk_lines=1, workers=3)

    assert (result.imported, result.invalid) == (3, 0)
    application = Application.objects.get(connection=connection, ats_id="app-j")
    assert (application.job.ats_id, application.current_stage) == ("J1", "Stage 2")


def test_workers_never_use_or_close_a_connection_the_parent_kept_open(org, make_event, monkeypatch):
    """Forked with the parent's session still open: each worker opens its own."""
    from django.db import connections

    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    # The parent cannot close its connection (as when Django keeps one for a transaction).
    monkeypatch.setattr(connections, "close_all", lambda: None)
    db.ensure_connection()
    parent_session = db.connection
    lines = _lines(
        *(
            make_event(
                id=f"open-{n}",
                job=(first, second)[n % 2],
                application={"id": f"open-app-{n % 6}", "candidate_id": f"c-{n % 6}"},
            )
            for n in range(60)
        )
    )

    result = events_import(connection=connection, lines=lines, chunk_lines=5, workers=2)

    assert (result.imported, result.invalid) == (60, 0)
    assert db.connection is parent_session  # still the parent's, and still working
    assert RecruitingEvent.objects.filter(connection=connection).count() == 60


def test_a_worker_killed_outright_stops_the_import_instead_of_hanging(org, make_event, monkeypatch):
    """As when the kernel's out-of-memory killer picks a worker: no word from it, ever."""
    import os
    import signal

    import failures.bulk as bulk

    chunk_import = bulk._chunk_import

    def die_on_one_line(connection, lines, detect, result):
        if any(line.event.id == "die" for line in lines):
            os.kill(os.getpid(), signal.SIGKILL)
        return chunk_import(connection, lines, detect, result)

    monkeypatch.setattr(bulk, "_chunk_import", die_on_one_line)
    connection = AtsConnectionFactory(organization=org)
    first, second = _jobs_in_two_workers()
    lines = _lines(
        *(make_event(id=f"fine-{n}", job=second) for n in range(200)),
        make_event(id="die", job=first, application={"id": "app-d", "candidate_id": "c-d"}),
    )

    with pytest.raises(WorkerFailed, match="died"):
        events_import(connection=connection, lines=lines, chunk_lines=10, workers=2)

    assert not multiprocessing.active_children()
