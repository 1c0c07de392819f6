"""Bulk import at scale: canonical events per second into the event log and the mirror.

Usage (PostgreSQL on localhost, as in the tests):
    .venv/bin/python benchmarks/bulk_import.py [--small 100000] [--large 1000000] [--no-detect]
        [--workers N]

Creates (and afterwards drops, also on failure) a scratch database `failtrack_bench_bulk`.
For each size, a generator process writes a JSON-lines file of about N canonical events
(the ATS simulator's application stories, `failures.simulation`, merged in time order across
applications as an ATS export would list them; not timed); then a child process, on an
emptied database holding one simulated organization (stage mappings, regions, teams and
all nine detector kinds in force), runs `failures.bulk.events_import` over the file, as the
`events_import` command does (by default with one worker process per CPU, routed by job;
`--workers 1` measures one process). The import is timed end to end: reading and validating
every line, COPY into the event log, dedupe keys and the mirror (jobs, candidates,
applications, transitions, interviews, holds, integration errors) and the on-event
detection pass (unless --no-detect). CPU is the importing processes' (rusage, workers
included) and PostgreSQL's (every server process, from /proc). Peak resident memory comes
from the kernel, for the routing process and the largest worker; the ratio of the two sizes
shows whether memory stays flat. The target is 10,000
events per second at the large size.
"""

import argparse
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "failtrack_bench_bulk"
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
TARGET_EVENTS_PER_SECOND = 10_000
SEED = 7
EVENTS_PER_APPLICATION = 6.4  # measured on the simulator's stories; sizes the job count
RESULT_PREFIX = "RESULT "


def _say(message: str) -> None:
    print(message, flush=True)


def _setup_django() -> None:
    import django

    django.setup()


def _organization():  # type: ignore[no-untyped-def]
    """The simulated organization (rules since before the history), on an emptied database."""
    from django.core.management import call_command
    from django.utils import timezone

    from failures.simulation import HISTORY_DAYS, organization_prepare

    call_command("flush", interactive=False, verbosity=0)
    now = timezone.now()
    return organization_prepare(
        slug="bench",
        name="Bench Corp",
        jobs=300,
        rng=random.Random(SEED),
        rules_since=now - timedelta(days=HISTORY_DAYS + 1),
    )


# --- Generator: one file of about N events, in time order ------------------------------------


def generate(size: int, path: str) -> None:
    """Write about `size` events; stories are merged by time with a bounded heap."""
    _setup_django()
    from django.utils import timezone

    from failures.simulation import HISTORY_DAYS, _application_story, _stamp

    org = _organization()
    rng = random.Random(SEED)
    now = timezone.now().replace(microsecond=0)
    applications = max(1, round(size / EVENTS_PER_APPLICATION))
    span = timedelta(days=HISTORY_DAYS).total_seconds()
    # Applications arrive in time order; a heap holds the events of the ones under way.
    heap: list[tuple] = []
    written = 0
    sequence = 0
    with open(path, "w", encoding="utf-8") as out:

        def emit_until(moment) -> None:  # type: ignore[no-untyped-def]
            nonlocal written
            while heap and heap[0][0] <= moment:
                _, _, event = heapq.heappop(heap)
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
                written += 1

        for n in range(1, applications + 1):
            applied = (
                now - timedelta(days=HISTORY_DAYS) + timedelta(seconds=span * n / applications)
            )
            emit_until(applied)
            job = org.jobs[rng.randrange(len(org.jobs))]
            application = {
                "id": f"app-{n}",
                "candidate_id": f"cand-{n}",
                "source": "LinkedIn",
                "applied_at": _stamp(applied),
            }
            recruiter = f"rec-{rng.randint(1, 12)}"
            for k, step in enumerate(_application_story(rng, applied, n)):
                if step.at > now - timedelta(minutes=5):
                    continue
                event = {
                    "id": f"bench-{n}-{k}",
                    "kind": step.kind,
                    "occurred_at": _stamp(step.at),
                    "application": application,
                    "job": job,
                    "actor": {
                        "id": recruiter if step.role == "recruiter" else f"{step.role}-{n}",
                        "role": step.role,
                    },
                }
                if step.stage:
                    event["stage"] = {"name": step.stage}
                if step.details:
                    event["details"] = step.details
                if step.interview:
                    event["interview"] = {"id": step.interview}
                sequence += 1
                heapq.heappush(heap, (step.at, sequence, event))
        emit_until(now)
    print(RESULT_PREFIX + json.dumps({"events": written, "applications": applications}))


# --- Child: one import, in its own process -------------------------------------------------


def _postgres_cpu() -> dict[int, float]:
    """User + system CPU seconds of every PostgreSQL process on this machine, by pid."""
    seen = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = text.split(" (", 1)[1].rsplit(")", 1)
        if name != "postgres":
            continue
        fields = rest.split()
        seen[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seen


class _PostgresMeter(threading.Thread):
    """PostgreSQL's CPU during the import: every server process (backends of the importing
    processes, WAL writer, checkpointer, autovacuum), sampled twice a second so that a
    backend that exits with its worker is still counted (to within half a second)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first = _postgres_cpu()
        self.last = dict(self.first)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.last.update(_postgres_cpu())

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        self.last.update(_postgres_cpu())
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def child(path: str, detect: bool, workers: int) -> None:
    _setup_django()
    from django.db import connection

    from failures.bulk import events_import, lines_read
    from failures.models import Application, Failure, RecruitingEvent, StageTransition

    org = _organization()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    meter = _PostgresMeter()
    meter.start()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    done = 0
    started = time.perf_counter()
    last = started

    def progress(lines: int) -> None:
        nonlocal done, last
        done += lines
        now = time.perf_counter()
        if now - last >= 10:
            last = now
            _say(f"    {done:>10,} lines  {done / (now - started):8,.0f}/s")

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "rb") as stream:
        result = events_import(
            connection=org.connection,
            lines=lines_read(stream),
            progress=progress,
            detect=detect,
            workers=workers,
        )
    seconds = time.perf_counter() - started
    backend_cpu = meter.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers_usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # joined worker processes
    cpu_seconds = (
        usage.ru_utime
        + usage.ru_stime
        - cpu.ru_utime
        - cpu.ru_stime
        + workers_usage.ru_utime
        + workers_usage.ru_stime
    )
    assert result.invalid == 0, result.errors[:5]
    assert result.imported == RecruitingEvent.objects.count()
    figures = {
        "lines": result.lines,
        "imported": result.imported,
        "duplicates": result.duplicates,
        "failures": result.failures,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "postgres_cpu_seconds": backend_cpu,
        "applications": Application.objects.count(),
        "transitions": StageTransition.objects.count(),
        "failures_in_db": Failure.objects.count(),
        "rss_before_import_mb": rss_before,
        "workers": workers,
        "router_peak_rss_mb": usage.ru_maxrss / 1024,
        "worker_peak_rss_mb": workers_usage.ru_maxrss / 1024,  # the largest worker
    }
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


# --- Parent: scratch database, files, one child per size, summary ----------------------------


def _admin_sql(statement: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement], check=True)


def _spawn(arguments: list[str]) -> dict:
    process = subprocess.Popen(
        [sys.executable, __file__, *arguments], env=ENV, stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    assert process.stdout is not None
    figures = None
    for line in process.stdout:
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or figures is None:
        raise SystemExit(f"benchmark step {arguments} failed")
    figures["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return figures


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--no-detect", action="store_true", help="skip the on-event pass")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="importing processes, as `manage.py events_import --workers` (default: one per "
        "CPU, as there)",
    )
    parser.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(int(args.generate[0]), args.generate[1])
        return
    if args.child:
        child(args.child, detect=not args.no_detect, workers=args.workers)
        return

    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    rows = []
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], env=ENV, cwd=ROOT, check=True
        )
        with tempfile.TemporaryDirectory(prefix="bench-bulk-") as folder:
            for size in (args.small, args.large):
                path = str(Path(folder) / f"events-{size}.jsonl")
                _say(f"size {size:,}: writing the file (not timed)")
                written = _spawn(["--generate", str(size), path])
                megabytes = Path(path).stat().st_size / 1e6
                _say(f"  {written['events']:,} events, {megabytes:,.0f} MB; importing")
                load_before = _load_average()
                figures = _spawn(
                    [
                        "--child",
                        path,
                        "--workers",
                        str(args.workers),
                        *(["--no-detect"] if args.no_detect else []),
                    ]
                )
                figures["load_before"] = load_before
                figures["load_after"] = _load_average()
                figures["megabytes"] = megabytes
                rows.append(figures)
                Path(path).unlink()
                rate = figures["imported"] / figures["seconds"]
                cpu = figures["cpu_seconds"] + figures["postgres_cpu_seconds"]
                figures["events_per_cpu_second"] = figures["imported"] / cpu
                _say(
                    f"size {figures['lines']:>9,} events  {figures['seconds']:7.1f} s  "
                    f"{rate:8,.0f} events/s  CPU: importer {figures['cpu_seconds']:.0f} s + "
                    f"PostgreSQL {figures['postgres_cpu_seconds']:.0f} s = "
                    f"{figures['events_per_cpu_second']:,.0f} events per CPU second  "
                    f"applications {figures['applications']:,}  "
                    f"transitions {figures['transitions']:,}  failures {figures['failures']:,}  "
                    f"peak RSS {figures['peak_rss_mb']:.1f} MB (router "
                    f"{figures['router_peak_rss_mb']:.1f}, largest of {figures['workers']} "
                    f"workers {figures['worker_peak_rss_mb']:.1f})  "
                    f"load average {figures['load_before']} -> {figures['load_after']}"
                )
        small, large = rows
        _say(
            f"ratios large/small: events {large['lines'] / small['lines']:.1f}x, "
            f"time {large['seconds'] / small['seconds']:.1f}x, "
            f"peak RSS {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x"
        )
        rate = large["imported"] / large["seconds"]
        met = rate >= TARGET_EVENTS_PER_SECOND
        _say(
            f"verdict: {large['imported']:,} events at {rate:,.0f} events/s wall clock, "
            f"{'meets' if met else 'BELOW'} the {TARGET_EVENTS_PER_SECOND:,} events/s target "
            f"(load average {large['load_before']} before the run; "
            f"{large['events_per_cpu_second']:,.0f} events per CPU second of importer and "
            "PostgreSQL together)"
        )
    finally:
        _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
