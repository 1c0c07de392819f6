"""Detection scan at scale: how long does the periodic scan take over N active applications?

Usage (PostgreSQL on localhost, as in the tests):
    .venv/bin/python benchmarks/detection_scan.py [--small 100000] [--large 1000000] [--explain]

Creates (and afterwards drops, also on failure) a scratch database `failtrack_bench_scan`.
Each size runs in its own child process on an emptied database: one organization with the
standard definitions (in force since a year ago), one connection, a few hundred jobs, then
N candidates and N active applications loaded server-side (INSERT ... SELECT
generate_series, in batches, with progress). One application in ten waits in screening
beyond the 7-day limit (entered 7 days 1 hour to 59 days ago); the others are in other
categories or entered screening less than 7 days ago. The tables are vacuumed and analyzed.

Then, timed separately from the load:
- "detect only": the scanning detectors drained without recording (SELECT + Detections);
- run 1: `detection_scan()`, as the periodic task calls it; records every breach;
- run 2: `detection_scan()` again; must record nothing (idempotency).
Both runs' times (and the CPU the benchmark process spent), failures recorded and SQL
statements issued are printed, with the child's peak resident memory (kernel rusage) after
each phase. Run 1 must record exactly the stuck applications generated, run 2 none. The
verdict compares the large run 1 with 60 s.
--explain prints EXPLAIN (ANALYZE, BUFFERS) of the scan's SELECT before run 1 and after run 2.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "failtrack_bench_scan"
ENV = {
    **os.environ,
    "DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    ),
    "DEBUG": "0",
    "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnop",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "LOG_LEVEL": "WARNING",
    "PYTHONPATH": str(ROOT),
}
TARGET_SECONDS = 60.0
JOBS = 307  # prime: which job (and whether strategic) is independent of the bucket
BATCH = 100_000
# Of every 20 applications (by index modulo 20): 2 stuck in screening beyond the limit,
# 4 in screening for less than the limit, 4 sourcing, 4 interviewing, 3 offer, 3 onboarding.
STUCK_BUCKETS = (0, 1)
RESULT_PREFIX = "RESULT "

CANDIDATES_SQL = """
INSERT INTO failures_candidate (organization_id, connection_id, ats_id, created_at)
SELECT %(org)s, %(conn)s, 'c' || g, %(now)s - interval '60 days'
FROM generate_series(%(lo)s, %(hi)s) AS g
"""

# b: the bucket; s: a well-spread pseudo-random number of seconds per application.
APPLICATIONS_SQL = """
INSERT INTO failures_application (
    organization_id, connection_id, ats_id, candidate_id, job_id, source, current_stage,
    stage_category, stage_entered_at, category_entered_at, status, applied_at, closed_at,
    last_event_at
)
SELECT %(org)s, %(conn)s, 'a' || g, %(first_candidate)s + g,
       (%(jobs)s::bigint[])[1 + g %% %(njobs)s],
       'bench', x.stage, x.category, x.entered + (g %% 3) * interval '1 hour', x.entered,
       'active', x.entered - (1 + g %% 21) * interval '1 day', NULL,
       x.entered + (g %% 3) * interval '1 hour'
FROM generate_series(%(lo)s, %(hi)s) AS g
CROSS JOIN LATERAL (SELECT g %% 20 AS b, (g::bigint * 7919 + 104729) %% 4924800 AS s) AS r
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN r.b < 6 THEN 'screening' WHEN r.b < 10 THEN 'sourcing'
             WHEN r.b < 14 THEN 'interviewing' WHEN r.b < 17 THEN 'offer'
             ELSE 'onboarding' END AS category,
        CASE WHEN r.b < 6 THEN 'Phone screen' WHEN r.b < 10 THEN 'Sourced'
             WHEN r.b < 14 THEN 'Onsite interview' WHEN r.b < 17 THEN 'Offer extended'
             ELSE 'Onboarding' END AS stage,
        CASE
            -- stuck: entered screening 7 days 1 hour to 59 days ago (beyond the 7-day limit)
            WHEN r.b < 2
                THEN %(now)s - interval '7 days 1 hour' - (r.s %% 4492800) * interval '1 second'
            -- screening on time: entered 3 hours to 6 days 3 hours ago
            WHEN r.b < 6
                THEN %(now)s - interval '3 hours' - (r.s %% 518400) * interval '1 second'
            -- other categories: entered 3 hours to 57 days 3 hours ago
            ELSE %(now)s - interval '3 hours' - r.s * interval '1 second'
        END AS entered
) AS x
"""


# --- Child: one size, in its own process ----------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _say(message: str) -> None:
    print(message, flush=True)


def _stuck_count(size: int) -> int:
    full, rest = divmod(size, 20)
    return full * len(STUCK_BUCKETS) + sum(1 for b in STUCK_BUCKETS if b < rest)


def _load(size: int) -> dict:
    """Empty the tables and load one organization with `size` active applications."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from failures.models import Job, Organization
    from failures.services import connection_create, definitions_bootstrap

    call_command("flush", interactive=False, verbosity=0)
    now = timezone.now()
    organization = Organization.objects.create(name="Bench Corp", slug="bench-corp")
    definitions_bootstrap(organization=organization, effective_from=now - timedelta(days=365))
    ats = connection_create(actor=None, organization=organization, name="Bench ATS")
    jobs = Job.objects.bulk_create(
        Job(
            organization=organization,
            connection=ats,
            ats_id=f"j{n}",
            title=f"Job {n}",
            is_strategic=n % 10 == 0,
            opened_at=now - timedelta(days=120),
        )
        for n in range(JOBS)
    )
    params = {"org": organization.pk, "conn": ats.pk, "now": now}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for lo in range(0, size, BATCH):
            hi = min(lo + BATCH, size) - 1
            cursor.execute(CANDIDATES_SQL, {**params, "lo": lo, "hi": hi})
            _say(f"  candidates {hi + 1:>9,}/{size:,}  {time.perf_counter() - started:6.1f} s")
        cursor.execute("SELECT min(id), max(id), count(*) FROM failures_candidate")
        first, last, count = cursor.fetchone()
        assert count == size and last - first + 1 == size, "candidate ids are not contiguous"
        params |= {"first_candidate": first, "jobs": [job.pk for job in jobs], "njobs": JOBS}
        for lo in range(0, size, BATCH):
            hi = min(lo + BATCH, size) - 1
            cursor.execute(APPLICATIONS_SQL, {**params, "lo": lo, "hi": hi})
            _say(f"  applications {hi + 1:>9,}/{size:,}  {time.perf_counter() - started:6.1f} s")
        inserted = time.perf_counter() - started
        for table in ("failures_candidate", "failures_job", "failures_application"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute(
            "SELECT count(*) FILTER (WHERE a.stage_category = 'screening' "
            "AND a.category_entered_at < %(now)s - interval '7 days'), "
            "count(*) FILTER (WHERE a.stage_category = 'screening' "
            "AND a.category_entered_at < %(now)s - interval '7 days' AND j.is_strategic), "
            "count(*) FROM failures_application a JOIN failures_job j ON j.id = a.job_id",
            {"now": now},
        )
        stuck_in_db, stuck_strategic, applications = cursor.fetchone()
    stuck = _stuck_count(size)
    assert applications == size, (applications, size)
    assert stuck_in_db == stuck, (stuck_in_db, stuck)
    return {
        "insert_seconds": inserted,
        "load_seconds": time.perf_counter() - started,
        "stuck": stuck,
        "stuck_strategic": stuck_strategic,
    }


class _Statements:
    """Counts the SQL statements Django sends; keeps the scan's SELECT for EXPLAIN."""

    def __init__(self) -> None:
        self.count = 0
        self.scan_select: tuple[str, object] | None = None

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        if self.scan_select is None and "NOT EXISTS" in sql and "failures_application" in sql:
            self.scan_select = (sql, params)
        return execute(sql, params, many, context)


def _explain(statement: tuple[str, object] | None, title: str) -> None:
    from django.db import connection

    if statement is None:
        return
    sql, params = statement
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
    _say(f"  EXPLAIN ANALYZE of the scan's SELECT (non-strategic jobs), {title}:\n{plan}")


def child(size: int, explain: bool) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from failures.detectors import detector_for
    from failures.models import Failure
    from failures.selectors import definition_versions_in_force
    from failures.services import detection_scan

    figures: dict = {"size": size}
    figures |= _load(size)
    figures["rss_after_load_mb"] = _peak_rss_mb()
    _say(
        f"  loaded in {figures['load_seconds']:.1f} s "
        f"({figures['insert_seconds']:.1f} s inserting, the rest VACUUM ANALYZE); "
        f"{figures['stuck']:,} applications stuck in screening "
        f"({figures['stuck_strategic']:,} of them on strategic jobs)"
    )

    # Detection alone: drain the scanning detectors (their SELECTs and the Detection
    # objects) without recording anything.
    statements = _Statements()
    now = timezone.now()
    scanning = [v for v in definition_versions_in_force(at=now) if detector_for(v.detector).scans]
    started = time.perf_counter()
    with connection.execute_wrapper(statements):
        found = sum(1 for v in scanning for _ in detector_for(v.detector).scan(v, now))
    figures["query_seconds"] = time.perf_counter() - started
    assert found == figures["stuck"], (found, figures["stuck"])
    _say(f"  detect only: {found:,} detections in {figures['query_seconds']:.1f} s, none recorded")
    if explain:
        _explain(statements.scan_select, "before run 1")

    for run in (1, 2):
        statements = _Statements()
        cpu = _cpu_seconds()
        started = time.perf_counter()
        with connection.execute_wrapper(statements):
            result = detection_scan()
        seconds = time.perf_counter() - started
        figures[f"run{run}_cpu_seconds"] = _cpu_seconds() - cpu
        figures[f"run{run}_seconds"] = seconds
        figures[f"run{run}_recorded"] = result.recorded
        figures[f"run{run}_statements"] = statements.count
        figures[f"rss_after_run{run}_mb"] = _peak_rss_mb()
        _say(
            f"  run {run}: {seconds:7.1f} s (this process's CPU "
            f"{figures[f'run{run}_cpu_seconds']:.1f} s)  recorded {result.recorded:>8,}  "
            f"{statements.count:>9,} SQL statements  peak RSS {_peak_rss_mb():.1f} MB"
        )
    assert figures["run1_recorded"] == figures["stuck"], (figures["run1_recorded"], figures)
    assert figures["run2_recorded"] == 0, figures["run2_recorded"]
    assert Failure.objects.count() == figures["stuck"]
    if explain:
        _explain(statements.scan_select, "after run 2")
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


# --- Parent: scratch database, one child per size, summary --------------------------------


def _admin_sql(statement: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement],
        check=True,
    )


def _run(size: int, explain: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(size)]
    if explain:
        command.append("--explain")
    child_process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    assert child_process.stdout is not None
    figures = None
    for line in child_process.stdout:
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    _, status, usage = os.wait4(child_process.pid, 0)
    child_process.returncode = os.waitstatus_to_exitcode(status)
    if child_process.returncode != 0 or figures is None:
        raise SystemExit(f"detection scan benchmark of {size:,} applications failed")
    figures["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--explain", action="store_true", help="print the scan's query plans")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.explain)
        return

    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], env=ENV, cwd=ROOT, check=True
        )
        rows = []
        for size in (args.small, args.large):
            print(f"size {size:,}: loading", flush=True)
            started = time.perf_counter()
            figures = _run(size, args.explain)
            rows.append(figures)
            print(
                f"size {size:>9,} applications  load {figures['load_seconds']:6.1f} s  "
                f"detect only {figures['query_seconds']:6.1f} s  "
                f"run 1 {figures['run1_seconds']:7.1f} s ({figures['run1_recorded']:,} recorded, "
                f"{figures['run1_recorded'] / figures['run1_seconds']:,.0f}/s, "
                f"CPU {figures['run1_cpu_seconds']:.0f} s)  "
                f"run 2 {figures['run2_seconds']:6.1f} s ({figures['run2_recorded']} recorded)  "
                f"peak RSS {figures['peak_rss_mb']:6.1f} MB  "
                f"(child process {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        small, large = rows
        print(
            f"ratios large/small: size {large['size'] / small['size']:.1f}x, "
            f"run 1 time {large['run1_seconds'] / small['run1_seconds']:.1f}x, "
            f"run 2 time {large['run2_seconds'] / small['run2_seconds']:.1f}x, "
            f"peak RSS {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x"
        )
        met = large["run1_seconds"] < TARGET_SECONDS
        print(
            f"verdict: run 1 over {large['size']:,} active applications took "
            f"{large['run1_seconds']:.1f} s, {'within' if met else 'OVER'} the "
            f"{TARGET_SECONDS:.0f} s target"
        )
    finally:
        _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
