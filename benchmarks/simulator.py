"""Simulator throughput and memory: does peak memory stay flat as the size grows 10x?

Usage (PostgreSQL on localhost, as in the tests):
    .venv/bin/python benchmarks/simulator.py [--small 200] [--large 2000]

It creates (and afterwards drops) a scratch database `failtrack_bench`, runs the simulator
at two sizes on an emptied database each time, and prints applications/s, events/s and the
peak Python heap (tracemalloc) of each run, with the large/small ratios. Flat memory means
a peak ratio near 1 while the size ratio is 10.
"""

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "failtrack_bench"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(statement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()

    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.utils import timezone

        from failures.simulation import simulate

        call_command("migrate", verbosity=0)
        rows = []
        for size in (args.small, args.large):
            call_command("flush", interactive=False, verbosity=0)
            tracemalloc.start()
            started = time.perf_counter()
            result = simulate(seed=11, applications=size, organizations=1, until=timezone.now())
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rows.append((size, result.events, elapsed, peak))
            print(
                f"size {size:>7,} applications  {result.events:>8,} events  "
                f"{elapsed:7.1f} s  {size / elapsed:7.0f} applications/s  "
                f"{result.events / elapsed:7.0f} events/s  peak heap {peak / 1e6:6.2f} MB",
                flush=True,
            )
        (s_size, _, s_time, s_peak), (l_size, _, l_time, l_peak) = rows
        print(
            f"ratios large/small: size {l_size / s_size:.1f}x, time {l_time / s_time:.1f}x, "
            f"peak heap {l_peak / s_peak:.2f}x"
        )
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
