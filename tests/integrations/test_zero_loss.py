"""Zero loss: PostgreSQL is stopped in the middle of a stream of deliveries to a real server.

A private PostgreSQL cluster (initdb into a temporary directory, its own port), the real
app under gunicorn, signed generic deliveries streamed over HTTP by client threads. The
cluster is stopped (`pg_ctl stop -m fast`) while the stream runs, kept down longer than the
credentials cache stays fresh, and started again; the server is then killed (SIGKILL), the
spool drained with `manage.py spool_drain` and the deliveries processed. Then every
delivery answered 2xx is stored exactly once and recorded as exactly one event, and only
deliveries answered 503 are missing.

Runs in every `make test` (about 30 s); it needs PostgreSQL's server binaries, which the
test database already requires on this machine.
"""

import glob
import http.client
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from config.celery import app as celery_app
from tests.conftest import sign

BASE_DIR = Path(settings.BASE_DIR)
SECRET = "zero-loss-secret-0123456789abcdef"
# Short, so that the cache entries go stale while the database is down.
CREDENTIALS_FRESH_SECONDS = 1.0
OUTAGE_SECONDS = 4.0


def postgres_bin() -> Path:
    """The directory of initdb and pg_ctl (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version, reverse=True)
    if not found and shutil.which("initdb"):
        found = [shutil.which("initdb")]
    if not found:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are needed for this test.")
    return Path(found[0]).parent


def _version(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port")


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by the `postgres` OS user when we are root."""

    def __init__(self, root: Path) -> None:
        self.bin = postgres_bin()
        self.root = root
        self.data = root / "data"
        self.port = free_port(5439)
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_owner, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)


@dataclass
class Answer:
    """One request of the stream and what the server said."""

    event_id: str
    connection: str  # "warm" (seen before the outage) or "cold" (never seen before it)
    sent_at: float
    status: int | None
    spooled: bool


class Stream:
    """Client threads posting signed deliveries until told to stop; some are resent."""

    def __init__(self, port: int, warm: str, cold: str, threads: int = 2) -> None:
        self.port = port
        self.urls = {
            "warm": f"/api/v1/hooks/generic/{warm}/",
            "cold": f"/api/v1/hooks/generic/{cold}/",
        }
        self.answers: list[Answer] = []
        self.sent: list[tuple[str, str, bytes]] = []
        self.cold_from: float | None = None  # when the cold connection may be used
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counter = 0
        self._random = random.Random(4)
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def count(self, predicate) -> int:  # type: ignore[no-untyped-def]
        with self._lock:
            return sum(1 for answer in self.answers if predicate(answer))

    def _next(self) -> tuple[str, str, bytes]:
        with self._lock:
            self._counter += 1
            number = self._counter
            if self.sent and number % 7 == 0:  # the vendor retries an earlier delivery
                return self._random.choice(self.sent)
            use_cold = self.cold_from is not None and number % 5 == 0
            label = "cold" if use_cold else "warm"
            event_id = f"zl-{number}"
            body = json.dumps(
                {
                    "id": event_id,
                    "kind": "application.stage_changed",
                    "occurred_at": "2026-11-02T09:30:00Z",
                    "application": {"id": f"app-{number}", "candidate_id": f"cand-{number}"},
                    "job": {"id": "job-7", "title": "Backend Engineer"},
                    "stage": {"name": "Phone Screen", "category": "screening"},
                }
            ).encode()
            self.sent.append((event_id, label, body))
            return event_id, label, body

    def _run(self) -> None:
        while not self._stop.is_set():
            event_id, label, body = self._next()
            sent_at = time.monotonic()
            status, spooled = self._post(self.urls[label], body)
            with self._lock:
                self.answers.append(Answer(event_id, label, sent_at, status, spooled))
            time.sleep(0.05)

    def _post(self, url: str, body: bytes) -> tuple[int | None, bool]:
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            client.request(
                "POST",
                url,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Failtrack-Signature": sign(SECRET, body),
                },
            )
            response = client.getresponse()
            payload = response.read()
        except OSError:
            return None, False
        finally:
            client.close()
        spooled = False
        if 200 <= response.status < 300:
            spooled = bool(json.loads(payload).get("spooled"))
        return response.status, spooled


def manage(env: dict[str, str], *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


SETUP = """
import json
from django.core.management import call_command
from failures.models import Organization
call_command("migrate", "--noinput", verbosity=0)
from failures.services import connection_create
organization = Organization.objects.create(name="Zero Loss", slug="zero-loss")
warm = connection_create(actor=None, organization=organization, name="warm", secret={secret!r})
cold = connection_create(actor=None, organization=organization, name="cold", secret={secret!r})
print(json.dumps({{"warm": str(warm.pk), "cold": str(cold.pk)}}))
"""

DRAIN_AND_PROCESS = """
import json
from django.core.management import call_command
from integrations.ingest import deliveries_process_pending
call_command("spool_drain")
print(json.dumps({"processed": deliveries_process_pending(limit=100000)}))
"""


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def answering(port: int) -> bool:
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        client.request("GET", "/api/v1/hooks/generic/not-a-connection/")
        client.getresponse().read()
        client.close()
        return True
    except OSError:
        return False


def test_every_delivery_answered_with_success_is_recorded_once_across_a_database_outage():
    root = Path(tempfile.mkdtemp(prefix="failtrack-zero-loss-"))
    cluster = PrivateCluster(root)
    server: subprocess.Popen | None = None
    cluster_running = False
    try:
        cluster.init()
        cluster.start()
        cluster_running = True
        with cluster.connect("postgres") as admin:
            admin.execute("CREATE DATABASE failtrack_zero_loss")

        work = Path(tempfile.mkdtemp(prefix="failtrack-zero-loss-app-", dir=root))
        (work / "zero_loss_settings.py").write_text(
            "from config.settings import *  # noqa: F403\n"
            f"FAILTRACK_CREDENTIALS_FRESH_SECONDS = {CREDENTIALS_FRESH_SECONDS}\n"
        )
        spool = work / "spool"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "zero_loss_settings",
            "PYTHONPATH": os.pathsep.join([str(work), str(BASE_DIR)]),
            "DATABASE_URL": cluster.url("failtrack_zero_loss"),
            "DEBUG": "0",
            "SECRET_KEY": "zero-loss-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "FAILTRACK_SPOOL_DIR": str(spool),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "LOG_LEVEL": "WARNING",
        }
        ids = json.loads(manage(env, "shell", "-c", SETUP.format(secret=SECRET)).split("\n")[-2])

        port = free_port(8439)
        server_log = open(root / "gunicorn.log", "wb")  # noqa: SIM115 (closed with the server)
        server = subprocess.Popen(
            [
                str(BASE_DIR / ".venv" / "bin" / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "30",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: master and workers die together
        )
        wait_until(lambda: answering(port), 30, "gunicorn")

        stream = Stream(port, warm=ids["warm"], cold=ids["cold"])
        stream.start()
        # Both workers have read the warm connection's keys before the outage.
        wait_until(lambda: stream.count(lambda a: a.status == 202) >= 20, 30, "a warm stream")

        stream.cold_from = time.monotonic()
        cluster.stop("fast")
        cluster_running = False
        stopped_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        restart_begun = time.monotonic()
        cluster.start()
        cluster_running = True
        time.sleep(2.0)  # the stream goes on against the restarted database
        stream.stop()
        # Killed, not stopped: whatever was answered must already be on disk or in the
        # database, nothing may wait in a process's memory (e.g. ids gathered for publishing).
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
        server_log.close()

        # The command an operator runs on a web host, then what a worker would do.
        drained = manage(env, "shell", "-c", DRAIN_AND_PROCESS)
        assert "Stored " in drained and "0 deliveries remain" in drained
        assert not list(spool.glob("*.json")) and not list(spool.glob(".*.tmp"))

        with cluster.connect("failtrack_zero_loss") as database:
            deliveries = database.execute(
                "SELECT connection_id::text, dedupe_key, state, spooled "
                "FROM integrations_inbounddelivery"
            ).fetchall()
            events = database.execute(
                "SELECT connection_id::text, event_id FROM failures_recruitingevent"
            ).fetchall()
    finally:
        for log in (root / "gunicorn.log", root / "server.log"):
            if log.exists():  # shown by pytest only when the test fails
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        if cluster_running:
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        celery_app.control.purge()  # tasks the server queued for a database now gone

    answers = stream.answers
    by_connection = {ids["warm"]: "warm", ids["cold"]: "cold"}
    stored: dict[tuple[str, str], int] = defaultdict(int)
    spooled_rows = set()
    for connection_id, key, state, was_spooled in deliveries:
        stored[(by_connection[connection_id], key)] += 1
        assert state == "processed", (key, state)
        if was_spooled:
            spooled_rows.add((by_connection[connection_id], key))
    recorded: dict[tuple[str, str], int] = defaultdict(int)
    for connection_id, event_id in events:
        recorded[(by_connection[connection_id], event_id)] += 1

    statuses = [a.status for a in answers]
    print(  # the figures of this run, for the record (pytest -s)
        f"zero-loss: {len(answers)} requests, {sum(s in (200, 202) for s in statuses)} 2xx, "
        f"{sum(a.spooled for a in answers)} spooled, {statuses.count(503)} 503, "
        f"{len(deliveries)} deliveries stored, {len(events)} events"
    )
    # Every answer was a success or a "retry later"; the connection never failed.
    assert {a.status for a in answers} <= {200, 202, 503}, sorted({a.status for a in answers})
    succeeded = {(a.connection, a.event_id) for a in answers if a.status in (200, 202)}
    refused = {(a.connection, a.event_id) for a in answers if a.status == 503} - succeeded

    # Exactly once: each delivery answered with success is one delivery and one event.
    for delivery in succeeded:
        assert stored[delivery] == 1, delivery
        assert recorded[delivery] == 1, delivery
    # Only deliveries answered 503 are missing, and they are missing entirely.
    assert set(stored) == succeeded
    assert set(recorded) == succeeded
    assert not refused & set(stored)

    # The spool path really carried deliveries, also after the cached keys went stale.
    spooled = [a for a in answers if a.spooled]
    assert len(spooled) >= 10, len(spooled)
    assert spooled_rows and spooled_rows <= {(a.connection, a.event_id) for a in spooled}
    stale = [
        a
        for a in spooled
        if stopped_at + CREDENTIALS_FRESH_SECONDS + 0.5 < a.sent_at < restart_begun
    ]
    assert stale, "no delivery was accepted with a stale cache entry"
    # A connection no worker had read could not be verified during the outage: 503, not 2xx.
    cold_during = [
        a for a in answers if a.connection == "cold" and stopped_at < a.sent_at < restart_begun
    ]
    assert cold_during and all(a.status == 503 for a in cold_during)
    # Retries of deliveries received before or during the outage were among them.
    assert len(answers) > len({(a.connection, a.event_id) for a in answers})
