"""Simulator throughput and memory: does peak memory stay flat as the size grows 10x?

Usage (PostgreSQL on localhost, as in the tests):
    .venv/bin/python benchmarks/simulator.py [--small 200] [--large 2000]

Creates (and afterwards drops) a scratch database `failtrack_bench`. Each size runs in its
own child process on an emptied database; the child's peak resident memory (from the
kernel's rusage, no tracing overhead) and wall time are printed with the large/small ratios.
Flat memory means a peak-memory ratio near 1 while the size ratio is 10.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "failtrack_bench"
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
CHILD = """
import json, sys, time
import django
django.setup()
from django.core.management import call_command
from django.utils import timezone
from failures.simulation import simulate
call_command("flush", interactive=False, verbosity=0)
started = time.perf_counter()
result = simulate(seed=11, applications=int(sys.argv[1]), organizations=1, until=timezone.now())
print(json.dumps({"events": result.events, "seconds": time.perf_counter() - started}))
"""


def _admin_sql(statement: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement],
        check=True,
    )


def _run(size: int) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(size)], env=ENV, stdout=subprocess.PIPE, cwd=ROOT
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"simulation of {size} applications failed")
    figures = json.loads(output)
    figures["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()

    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], env=ENV, cwd=ROOT, check=True
        )
        rows = []
        for size in (args.small, args.large):
            started = time.perf_counter()
            figures = _run(size)
            rows.append((size, figures))
            print(
                f"size {size:>7,} applications  {figures['events']:>8,} events  "
                f"{figures['seconds']:7.1f} s  {size / figures['seconds']:6.1f} applications/s  "
                f"{figures['events'] / figures['seconds']:6.1f} events/s  "
                f"peak RSS {figures['peak_rss_mb']:6.1f} MB  "
                f"(child process {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        (small, s), (large, big) = rows
        print(
            f"ratios large/small: size {large / small:.1f}x, time "
            f"{big['seconds'] / s['seconds']:.1f}x, peak RSS "
            f"{big['peak_rss_mb'] / s['peak_rss_mb']:.2f}x"
        )
    finally:
        _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
