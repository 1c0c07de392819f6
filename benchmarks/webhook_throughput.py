"""Webhook throughput: the full hook path against a bare HMAC-and-insert view, side by side.

Usage (PostgreSQL and Redis on localhost):
    .venv/bin/python benchmarks/webhook_throughput.py [--clients 16] [--duration 8]
        [--rounds 3] [--warmup 3] [--workers 2] [--threads 8]

Creates (and afterwards drops, also on failure) a scratch database `failtrack_bench_hook`,
migrates it, opens one organization with one generic connection (known secret) and the
bare view's table, empties Redis database 8 (the Celery broker of this run; no worker
runs, so the published processing messages wait there and are counted), then starts
gunicorn with production settings (DEBUG=0, LOG_LEVEL=WARNING) serving
`benchmarks.webhook_urls`: the whole site plus `/bench/bare/`, a plain Django view that
checks the HMAC-SHA256 of the raw body in constant time and inserts one row.

Both endpoints get signed, unique canonical events (docs/webhooks.md) from the same number
of keep-alive clients. After a warm-up of each, rounds alternate (bare, full, full, bare,
...) for a fixed duration each, so both see the same machine load. Printed per endpoint:
requests/s, p50/p95/p99 latency, errors; then full/bare and the verdict (target: full at
least 60 % of bare, full p99 under 100 ms). Every 2xx of the hook must be a stored
InboundDelivery (and every bare 2xx a row), or the run fails: it cannot pass by dropping
work.

gunicorn runs 2 gthread workers of 8 threads by default: one process per core, because
Python code holds the GIL and only processes use both cores; threads so that a worker
keeps its core busy while requests wait on PostgreSQL or Redis (a delivery makes four
database round trips, whose latency grows when PostgreSQL competes for the same cores),
and 8 of them so that none of the 16 clients queues behind busy threads. Measured here,
2 x 4 and 2 x 8 gave the hook the same throughput within the run-to-run noise, and
single-thread or sync workers less (sync workers also close every connection). gthread
keeps client connections alive, as a vendor's sender or a proxy in front would. Both
endpoints are served by the same workers.

The load generator runs in this process: one asyncio event loop, one raw HTTP/1.1
keep-alive connection per client, requests prepared ahead of each round (body, signature),
latency measured from the first byte written to the last byte of the answer read. It
shares the 2 cores with gunicorn and PostgreSQL; its CPU time is printed.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = os.environ.get("BENCH_DATABASE", "failtrack_bench_hook")
REDIS_URL = "redis://127.0.0.1:6379/8"
SECRET = "bench-hook-secret-0123456789abcdef"
HOST = "127.0.0.1"
ENV = {
    **os.environ,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    "DEBUG": "0",
    "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "CELERY_BROKER_URL": REDIS_URL,
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "benchmarks.webhook_settings",
    "BENCH_HOOK_SECRET": SECRET,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))


def _admin_sql(statement: str, check: bool = True) -> bool:
    # Bounded: DROP DATABASE waits for every backend of the cluster to answer a barrier.
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", statement],
        env={**os.environ, "PGOPTIONS": "-c statement_timeout=120s"},
        check=check,
    )
    return done.returncode == 0


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- requests -------------------------------------------------------------------------


def canonical_event(event_id: str) -> dict:
    """The shape of tests' make_event: a stage change of one application."""
    return {
        "id": event_id,
        "kind": "application.stage_changed",
        "occurred_at": "2026-11-02T09:30:00Z",
        "application": {
            "id": "app-9",
            "candidate_id": "cand-4",
            "source": "LinkedIn",
            "applied_at": "2026-10-20T08:00:00Z",
        },
        "job": {
            "id": "job-7",
            "title": "Backend Engineer",
            "team": "Platform",
            "region": "EMEA",
            "job_family": "Engineering",
        },
        "stage": {"name": "Phone Screen", "category": "screening"},
        "actor": {"id": "u-1", "role": "recruiter"},
    }


def signed_request(path: str, event_id: str) -> bytes:
    body = json.dumps(canonical_event(event_id)).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Failtrack-Signature: sha256={signature}\r\n\r\n"
    )
    return head.encode() + body


# --- load -----------------------------------------------------------------------------


@dataclass
class Tally:
    """What one endpoint saw over the measured rounds (and in total, warm-up included)."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    rounds: list[float] = field(default_factory=list)  # requests/s of each round
    ok_total: int = 0  # 2xx including the warm-up: what must be stored
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds: web, database, client

    def add(self, other: "Tally", measured: bool) -> None:
        self.ok_total += other.ok
        if not measured:
            return
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.ok += other.ok
        self.errors += other.errors
        for part, seconds in other.cpu.items():
            self.cpu[part] = self.cpu.get(part, 0.0) + seconds
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.rounds.append(other.ok / other.seconds)


async def _client(port: int, requests: list[bytes], deadline: float, tally: Tally) -> None:
    reader = writer = None
    index = 0
    while time.perf_counter() < deadline and index < len(requests):
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(requests[index])
            index += 1
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            tally.ok += 1
        else:
            tally.errors += 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_round(
    port: int, path: str, tag: str, clients: int, seconds: float, cap: int, server: "Server"
) -> Tally:
    """`clients` keep-alive connections posting unique signed events for `seconds`."""
    per_client = [
        [signed_request(path, f"{tag}-c{c}-{n}") for n in range(cap)] for c in range(clients)
    ]
    tally = Tally()

    async def drive() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, reqs, deadline, tally) for reqs in per_client))

    before = server.cpu_snapshot()
    client_cpu = _cpu_seconds()
    started = time.perf_counter()
    asyncio.run(drive())
    tally.seconds = time.perf_counter() - started
    tally.cpu = {**server.cpu_since(before), "client": _cpu_seconds() - client_cpu}
    return tally


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- server ---------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


class Server:
    """gunicorn serving the benchmark URLs, and where its CPU goes (workers, our backends)."""

    def __init__(self, port: int, workers: int, threads: int, worker_class: str, app: str):
        command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            app,
            f"--bind={HOST}:{port}",
            f"--workers={workers}",
            f"--threads={threads}",
            f"--worker-class={worker_class}",
            "--keep-alive=30",
            "--log-level=warning",
            "--no-control-socket",
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, env=ENV, start_new_session=True)
        self._wait_ready(port)

    def _wait_ready(self, port: int) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                probe = http.client.HTTPConnection(HOST, port, timeout=2)
                probe.request("GET", "/health/")
                status = probe.getresponse().status
                probe.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /health/ within 60 s")

    def cpu_snapshot(self) -> dict[str, dict[int, float]]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = [pid for (pid,) in cursor.fetchall()]
        groups = {"web": _children(self.process.pid), "database": backends}
        return {
            name: {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}
            for name, pids in groups.items()
        }

    def cpu_since(self, before: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds spent since `before`; processes started meanwhile count whole."""
        after = self.cpu_snapshot()
        spent = {}
        for name, now in after.items():
            pids = set(now) | set(before[name])
            spent[name] = sum(
                now.get(pid, before[name].get(pid, 0.0)) - before[name].get(pid, 0.0)
                for pid in pids
            )
        return spent

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# --- main -----------------------------------------------------------------------------


def setup_database() -> str:
    """Migrate, one organization + generic connection, the bare table; returns the hook path."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from benchmarks.webhook_urls import BARE_TABLE_SQL
    from failures.models import Organization
    from failures.services import connection_create

    call_command("migrate", verbosity=0)
    organization = Organization.objects.create(name="Bench", slug="bench")
    hook = connection_create(actor=None, organization=organization, name="bench", secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute(BARE_TABLE_SQL)
    return f"/api/v1/hooks/{hook.vendor}/{hook.pk}/"


def stored_counts() -> dict:
    from django.db import connection

    from benchmarks.webhook_urls import BARE_TABLE
    from integrations.models import DeliveryKey, InboundDelivery

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")
        (bare_rows,) = cursor.fetchone()
    delivery_ids = set(InboundDelivery.objects.values_list("id", flat=True))
    return {
        "delivery_ids": delivery_ids,
        "deliveries": len(delivery_ids),
        "keys": DeliveryKey.objects.count(),
        "bare": bare_rows,
    }


def report(name: str, tally: Tally) -> None:
    rps = tally.ok / tally.seconds if tally.seconds else 0.0
    spread = ", ".join(f"{r:.0f}" for r in tally.rounds)
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items()))
    per_request = "  ".join(
        f"{part} {seconds / max(tally.ok, 1) * 1000:.2f} ms"
        for part, seconds in sorted(tally.cpu.items(), key=lambda item: item[0] != "web")
    )
    print(
        f"{name:>5}: {rps:7.1f} req/s  p50 {_percentile(tally.latencies, 0.50) * 1000:6.1f} ms  "
        f"p95 {_percentile(tally.latencies, 0.95) * 1000:6.1f} ms  "
        f"p99 {_percentile(tally.latencies, 0.99) * 1000:6.1f} ms  errors {tally.errors}  "
        f"({tally.ok:,} ok in {tally.seconds:.1f} s; rounds req/s: {spread}; status {codes})"
    )
    print(f"{'':>5}  CPU per request: {per_request}")


def queued_deliveries(broker) -> tuple[int, set[int]]:
    """Messages waiting in the Celery queue, and the delivery ids they ask to process."""
    ids: set[int] = set()
    messages = broker.lrange("celery", 0, -1)
    for raw in messages:
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        for value in args:
            ids.update(value if isinstance(value, list) else [value])
    return len(messages), ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds each")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker (gthread)")
    parser.add_argument(
        "--worker-class",
        default="gthread",
        choices=["gthread", "sync"],
        help="gunicorn worker class (sync: no keep-alive, one request at a time)",
    )
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument(
        "--app", default="config.wsgi:application", help="WSGI application gunicorn serves"
    )
    args = parser.parse_args()
    # Requests are prepared ahead: enough for 1,000 requests/s per client.
    cap = int(max(args.duration, args.warmup) * 1000)

    _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin_sql(f"CREATE DATABASE {BENCH_DB}")
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    server = None
    static_root = tempfile.mkdtemp(prefix="failtrack-bench-static-")
    ENV["STATIC_ROOT"] = static_root  # an empty directory: whitenoise only finds nothing
    try:
        hook_path = setup_database()
        server = Server(args.port, args.workers, args.threads, args.worker_class, args.app)
        paths = {"bare": "/bench/bare/", "full": hook_path}
        tallies = {"bare": Tally(), "full": Tally()}
        load_before = _loadavg()
        for name in ("bare", "full"):
            tallies[name].add(
                run_round(
                    args.port, paths[name], f"w-{name}", args.clients, args.warmup, cap, server
                ),
                measured=False,
            )
        for number in range(args.rounds):
            order = ("bare", "full") if number % 2 == 0 else ("full", "bare")
            for name in order:
                result = run_round(
                    args.port,
                    paths[name],
                    f"r{number}-{name}",
                    args.clients,
                    args.duration,
                    cap,
                    server,
                )
                tallies[name].add(result, measured=True)
        load_after = _loadavg()
        server.stop()  # graceful: a worker hands over what it still has to publish
        server = None

        bare, full = tallies["bare"], tallies["full"]
        counts = stored_counts()
        messages, queued = queued_deliveries(broker)
        ratio = (full.ok / full.seconds) / (bare.ok / bare.seconds)
        p99 = _percentile(full.latencies, 0.99) * 1000
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads "
            f"({args.worker_class}), DEBUG=0, LOG_LEVEL=WARNING, "
            f"broker {REDIS_URL} (no Celery worker running); {os.cpu_count()} cores"
        )
        print(
            f"load: {args.clients} keep-alive clients on one asyncio event loop in the "
            f"benchmark process (raw HTTP/1.1, requests signed ahead of each round); "
            f"{args.rounds} rounds of {args.duration:g} s per endpoint, alternating "
            f"(bare, full, full, bare, ...), after {args.warmup:g} s warm-up each"
        )
        print(f"load average before {load_before}, after {load_after}")
        report("bare", bare)
        report("full", full)
        stored_ok = (
            counts["deliveries"] == full.ok_total
            and counts["keys"] == full.ok_total
            and counts["bare"] == bare.ok_total
        )
        all_queued = queued == counts["delivery_ids"]
        print(
            f"stored: {counts['deliveries']:,} deliveries / {counts['keys']:,} dedupe keys for "
            f"{full.ok_total:,} hook 2xx, {counts['bare']:,} bare rows for {bare.ok_total:,} "
            f"bare 2xx ({'all stored' if stored_ok else 'MISMATCH'}); queued for processing: "
            f"{len(queued):,} deliveries in {messages:,} Celery messages "
            f"({'every stored delivery' if all_queued else 'NOT every stored delivery'})"
        )
        met = ratio >= 0.60 and p99 < 100.0 and stored_ok and full.errors == 0
        print(
            f"full/bare throughput {ratio:.1%} (target >= 60 %), full p99 {p99:.1f} ms "
            f"(target < 100 ms): {'met' if met else 'NOT met'}"
        )
        return 0 if stored_ok and all_queued else 1
    finally:
        if server is not None:
            server.stop()
        from django.db import connections

        connections.close_all()
        if not _admin_sql(f"DROP DATABASE IF EXISTS {BENCH_DB}", check=False):
            print(f"could not drop the scratch database {BENCH_DB}; drop it later")
        broker.flushdb()
        shutil.rmtree(static_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
