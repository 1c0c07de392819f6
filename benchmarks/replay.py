"""Retrospective replay throughput, and how far it is from the 1,000,000-application target.

Usage (PostgreSQL on localhost):
    .venv/bin/python benchmarks/replay.py [--applications 300]

Creates (and afterwards drops) a scratch database `failtrack_bench_replay`, simulates the
given number of applications, then replays the stage-SLA version over the whole simulated
history and prints the replay's events/s, its ratio to the simulator's own recording speed
measured in the same run, and the time a 1,000,000-application history would take at
that speed (target: under 5 minutes).
"""

import argparse
import os
import subprocess
import sys
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=300)
    args = parser.parse_args()
    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    try:
        import django

        django.setup()
        from datetime import timedelta

        from django.core.management import call_command
        from django.utils import timezone

        from failures.replay import version_replay
        from failures.simulation import HISTORY_DAYS, simulate

        call_command("migrate", verbosity=0)
        end = timezone.now().replace(microsecond=0)
        started = time.perf_counter()
        result = simulate(seed=3, applications=args.applications, until=end)
        recording = time.perf_counter() - started
        organization = result.organizations[0].organization
        version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
        started = time.perf_counter()
        replay = version_replay(
            version=version, start=end - timedelta(days=HISTORY_DAYS + 1), end=end
        )
        replaying = time.perf_counter() - started
        per_app = replay.events / args.applications
        million = 1_000_000 * per_app / (replay.events / replaying)
        print(
            f"recorded {result.events:,} events in {recording:.1f} s "
            f"({result.events / recording:.0f} events/s)"
        )
        ratio = (replay.events / replaying) / (result.events / recording)
        print(
            f"replayed {replay.events:,} events in {replaying:.1f} s "
            f"({replay.events / replaying:.0f} events/s, {ratio:.2f}x recording), "
            f"{replay.replayed.total} failures flagged"
        )
        print(
            f"1,000,000 applications ({per_app:.1f} events each) would take "
            f"{million / 60:,.0f} minutes at this speed; target 5 minutes: "
            f"{'met' if million <= 300 else 'NOT met'}"
        )
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
