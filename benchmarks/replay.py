"""Retrospective replay throughput, and how far it is from the 1,000,000-application target.

Usage (PostgreSQL on localhost):
    .venv/bin/python benchmarks/replay.py [--applications 200] [--sizes 50000,200000]
                                          [--million]

Creates (and afterwards drops) a scratch database `failtrack_bench_replay`, then:

1. simulates `--applications` applications through `services.event_record` and replays
   the stage-SLA version over the whole history twice, with the reference path that
   re-records every event (`version_replay_recorded`) and with the streamed replay
   (`version_replay`): both must flag the same failures; prints both speeds and the ratio;
2. for each of `--sizes`, writes a history of that many applications straight into the
   event log and the mirror's application rows with COPY (the simulator's own stories:
   stays, holds, interviews, no-shows, offers, declines, background-check errors, hires,
   early exits), replays the stage-SLA version with `version_replay` and prints
   applications/s, events/s and the process's resident memory during the replay;
3. prints the time for 1,000,000 applications: measured with `--million` (a
   1,000,000-application history is written and replayed), else extrapolated with the
   straight line through the two largest sizes (target: under 5 minutes).
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "failtrack_bench_replay"
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnop",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
)
sys.path.insert(0, str(ROOT))


def _admin_sql(statement: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement], check=True)


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakMemory:
    """Samples the resident set size twice a second while a block runs."""

    def __enter__(self) -> "_PeakMemory":
        self.before = self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _history_write(slug: str, applications: int, end, seed: int) -> int:  # type: ignore[no-untyped-def]
    """A simulated organization whose history is COPYed in; returns the number of events."""
    from django.db import connection as db
    from django.db import transaction

    from failures.models import Job
    from failures.simulation import (
        HISTORY_DAYS,
        SOURCES,
        _application_story,
        _stamp,
        _weighted,
        organization_prepare,
    )

    rng = random.Random(seed)
    org = organization_prepare(
        slug=slug,
        name=f"Benchmark {slug}",
        jobs=max(3, applications // 25),
        rng=rng,
        rules_since=end - timedelta(days=HISTORY_DAYS + 1),
    )
    organization, connection = org.organization, org.connection
    Job.objects.bulk_create(
        Job(organization=organization, connection=connection, ats_id=job["id"]) for job in org.jobs
    )
    job_ids = dict(Job.objects.filter(organization=organization).values_list("ats_id", "id"))
    terminal = {
        "application.rejected": "rejected",
        "application.withdrawn": "withdrawn",
        "application.hired": "hired",
    }
    events = 0
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM failures_candidate")
        first_candidate = cursor.fetchone()[0] + 1
        cursor.execute("SELECT coalesce(max(id), 0) FROM failures_application")
        first_application = cursor.fetchone()[0] + 1
        raw = cursor.cursor
        with raw.copy(
            "COPY failures_candidate (id, organization_id, connection_id, ats_id, created_at) "
            "FROM STDIN"
        ) as copy:
            for n in range(1, applications + 1):
                copy.write_row(
                    (first_candidate + n - 1, organization.pk, connection.pk, f"cand-{n}", end)
                )
        for batch_start in range(1, applications + 1, 5000):
            stories = []
            for n in range(batch_start, min(batch_start + 5000, applications + 1)):
                job = org.jobs[rng.randrange(len(org.jobs))]
                applied = end - timedelta(seconds=rng.randint(2 * 3600, HISTORY_DAYS * 86400))
                application = {
                    "id": f"app-{n}",
                    "candidate_id": f"cand-{n}",
                    "source": _weighted(rng, SOURCES),
                    "applied_at": _stamp(applied),
                }
                recruiter = f"rec-{rng.randint(1, 12)}"
                steps = [s for s in _application_story(rng, applied, n) if s.at <= end]
                steps.sort(key=lambda s: s.at)
                stories.append((n, job, application, applied, recruiter, steps))
            with raw.copy(
                "COPY failures_application (id, organization_id, connection_id, ats_id, "
                "candidate_id, job_id, source, current_stage, stage_category, status, "
                "applied_at, closed_at) FROM STDIN"
            ) as copy:
                for n, job, application, applied, _, steps in stories:
                    closing = next((s for s in reversed(steps) if s.kind in terminal), None)
                    copy.write_row(
                        (
                            first_application + n - 1,
                            organization.pk,
                            connection.pk,
                            application["id"],
                            first_candidate + n - 1,
                            job_ids[job["id"]],
                            application["source"],
                            "",
                            "",
                            terminal[closing.kind] if closing else "active",
                            applied,
                            closing.at if closing else None,
                        )
                    )
            events += _events_copy(
                raw, organization, connection, first_application, stories, slug, end
            )
        for table in ("failures_candidate", "failures_application"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
    with db.cursor() as cursor:
        cursor.execute("ANALYZE failures_application")
        cursor.execute("ANALYZE failures_recruitingevent")
    return events


def _events_copy(raw, organization, connection, first_application, stories, slug, end) -> int:  # type: ignore[no-untyped-def]
    """Write a batch of applications' events into the event log."""
    from failures.simulation import _stamp

    count = 0
    # A separate COPY per batch keeps the stories in memory for one batch only.
    with raw.copy(
        "COPY failures_recruitingevent (organization_id, connection_id, event_id, kind, "
        "occurred_at, received_at, application_id, payload) FROM STDIN"
    ) as copy:
        for n, job, application, _, recruiter, steps in stories:
            for k, step in enumerate(steps):
                event_id = f"bench-{slug}-{n}-{k}"
                actor_id = recruiter if step.role == "recruiter" else f"{step.role}-{n}"
                event = {
                    "id": event_id,
                    "kind": step.kind,
                    "occurred_at": _stamp(step.at),
                    "application": application,
                    "job": job,
                    "actor": {"id": actor_id, "role": step.role},
                }
                if step.stage:
                    event["stage"] = {"name": step.stage}
                if step.details:
                    event["details"] = step.details
                if step.interview:
                    event["interview"] = {"id": step.interview}
                copy.write_row(
                    (
                        organization.pk,
                        connection.pk,
                        event_id,
                        step.kind,
                        step.at.replace(microsecond=0).astimezone(UTC),
                        end,
                        first_application + n - 1,
                        json.dumps(event),
                    )
                )
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=200)
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sizes = [int(size) for size in args.sizes.split(",") if size]
    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.utils import timezone

        from failures.replay import version_replay, version_replay_recorded
        from failures.simulation import HISTORY_DAYS, simulate

        call_command("migrate", verbosity=0)
        end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
        start = end - timedelta(days=HISTORY_DAYS + 1)

        # 1. The reference path and the streamed one on the same simulated history.
        result = simulate(seed=3, applications=args.applications, until=end)
        organization = result.organizations[0].organization
        version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
        started = time.perf_counter()
        old = version_replay_recorded(version=version, start=start, end=end)
        old_seconds = time.perf_counter() - started
        started = time.perf_counter()
        new = version_replay(version=version, start=start, end=end)
        new_seconds = time.perf_counter() - started
        assert new.replayed.keys == old.replayed.keys, "the two paths disagree"
        old_rate, new_rate = old.events / old_seconds, new.events / new_seconds
        print(
            f"{args.applications} simulated applications, {old.events:,} events, "
            f"{old.replayed.total} failures flagged by both paths"
        )
        print(f"  re-recording replay: {old_seconds:8.2f} s  {old_rate:>9,.0f} events/s")
        print(f"  streamed replay:     {new_seconds:8.2f} s  {new_rate:>9,.0f} events/s")
        print(f"  streamed / re-recording: {new_rate / old_rate:,.0f}x")

        # 2. Streamed replays of COPYed histories.
        if args.million:
            sizes = [*sizes, 1_000_000]
        measured: list[tuple[int, float]] = []
        for size in sizes:
            started = time.perf_counter()
            events = _history_write(f"bench-{size}", size, end, seed=size)
            writing = time.perf_counter() - started
            organization = organization.__class__.objects.get(slug=f"bench-{size}")
            version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
            cpu_before = _cpu_seconds()
            with _PeakMemory() as memory:
                started = time.perf_counter()
                replay = version_replay(version=version, start=start, end=end)
                seconds = time.perf_counter() - started
            cpu = _cpu_seconds() - cpu_before
            measured.append((size, seconds))
            workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"{size:>9,} applications, {events:,} events (written in {writing:.0f} s): "
                f"replayed in {seconds:.1f} s = {size / seconds:,.0f} applications/s, "
                f"{events / seconds:,.0f} events/s; {replay.replayed.total:,} failures; "
                f"Python CPU {cpu:.0f} s (PostgreSQL's not counted), load average "
                f"{os.getloadavg()[0]:.1f}; memory {memory.before:.0f} -> peak "
                f"{memory.peak:.0f} MiB, largest worker {workers_peak:.0f} MiB"
            )

        # 3. One million applications.
        if measured and measured[-1][0] == 1_000_000:
            million, how = measured[-1][1], "measured"
        elif len(measured) >= 2:
            (n1, t1), (n2, t2) = measured[-2], measured[-1]
            slope = (t2 - t1) / (n2 - n1)
            million, how = t2 + slope * (1_000_000 - n2), "extrapolated from the last two sizes"
        elif measured:
            million, how = measured[-1][1] * 1_000_000 / measured[-1][0], "scaled linearly"
        else:
            return
        print(
            f"1,000,000 applications: {million / 60:.1f} minutes ({how}); "
            f"target 5 minutes: {'met' if million <= 300 else 'NOT met'}"
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
