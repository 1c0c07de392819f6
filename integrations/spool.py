"""The durable local spool: accepted deliveries wait here while the database is down.

One JSON file per delivery, written to a temporary name, fsync'd, renamed into place and
the directory fsync'd — so once the vendor hears "accepted", a power cut cannot lose it.
`integrations.ingest.spool_drain` stores the files through the same dedupe path as live
deliveries and removes each one only after its row is committed (a crash in between stores
it again as a duplicate, which changes nothing).

The spool is local to the host that answered: each host's spool is drained by the sweeper
task when a worker runs there, by `manage.py spool_drain`, and — a few files at a time —
by the web process itself once it stores deliveries again (ingest.delivery_accept).

File format (version 1), one JSON object: `format`, `connection_id`, `vendor`,
`event_type`, `dedupe_key`, `body` (base64 of the raw bytes), `headers` (already without
credentials), `verified_with`, `received_at` (ISO 8601, UTC) and `refuse_reused_key`.
Files and the directory are readable by the service user only: bodies carry candidate data.
"""

import base64
import binascii
import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

FORMAT = 1
# Files whose content cannot be read back are moved here for an operator, never deleted.
UNREADABLE_DIR = "unreadable"
# A temporary file older than this belongs to a write that never finished (the process
# died before answering, so the vendor was not told "accepted"): it is removed.
STALE_TEMPORARY_SECONDS = 3600


class SpoolUnreadable(ValueError):
    """A spool file that is not a delivery of a format we know."""


@dataclass(frozen=True)
class SpooledDelivery:
    """Everything `delivery_store` needs, kept while the database could not take it."""

    connection_id: str
    vendor: str
    event_type: str
    dedupe_key: str
    body: bytes
    headers: dict[str, str]
    verified_with: str
    received_at: datetime
    refuse_reused_key: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = FORMAT
        data["body"] = base64.b64encode(self.body).decode("ascii")
        data["received_at"] = self.received_at.isoformat()
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "SpooledDelivery":
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
                raise SpoolUnreadable("not a spooled delivery of format 1")
            received_at = parse_datetime(str(data["received_at"]))
            if received_at is None or timezone.is_naive(received_at):
                raise SpoolUnreadable("received_at is not an aware ISO 8601 timestamp")
            headers = data.get("headers") or {}
            if not isinstance(headers, dict):
                raise SpoolUnreadable("headers is not an object")
            return cls(
                connection_id=str(uuid.UUID(str(data["connection_id"]))),
                vendor=str(data["vendor"]),
                event_type=str(data["event_type"]),
                dedupe_key=str(data["dedupe_key"]),
                body=base64.b64decode(data["body"], validate=True),
                headers={str(k): str(v) for k, v in headers.items()},
                verified_with=str(data["verified_with"]),
                received_at=received_at,
                refuse_reused_key=bool(data.get("refuse_reused_key", False)),
            )
        except SpoolUnreadable:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise SpoolUnreadable(f"{type(exc).__name__}: {exc}"[:200]) from exc


def spool_dir() -> Path:
    """The spool directory, created (owner-only) if missing."""
    path = Path(settings.FAILTRACK_SPOOL_DIR)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def spool_write(delivery: SpooledDelivery) -> Path:
    """Write one delivery durably before anyone is told it was accepted; returns its file.

    Raises OSError if it cannot (disk full, read-only): the caller must then not answer
    with success.
    """
    directory = spool_dir()
    name = f"{delivery.received_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex}.json"
    temporary = directory / f".{name}.tmp"
    data = delivery.to_json().encode("ascii")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        written = 0
        while written < len(data):
            written += os.write(descriptor, data[written:])
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.close(descriptor)
    final = directory / name
    os.rename(temporary, final)
    _fsync_directory(directory)
    return final


def spool_files() -> list[Path]:
    """Spooled deliveries, oldest first (file names start with the time received)."""
    directory = Path(settings.FAILTRACK_SPOOL_DIR)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


def spool_pending() -> bool:
    """Whether any delivery waits in this host's spool (cheap: stops at the first file)."""
    try:
        with os.scandir(settings.FAILTRACK_SPOOL_DIR) as entries:
            return any(
                e.name.endswith(".json") and not e.name.startswith(".") and e.is_file()
                for e in entries
            )
    except FileNotFoundError:
        return False


def spool_size() -> int:
    """How many deliveries wait in this host's spool."""
    return len(spool_files())


def spool_read(path: Path) -> SpooledDelivery:
    """The delivery in one spool file; SpoolUnreadable if it is not one."""
    return SpooledDelivery.from_json(path.read_bytes())


def spool_quarantine(path: Path) -> Path:
    """Move an unreadable file aside for an operator to look at; it is never deleted."""
    target_dir = spool_dir() / UNREADABLE_DIR
    target_dir.mkdir(mode=0o700, exist_ok=True)
    target = target_dir / path.name
    os.rename(path, target)
    return target


def spool_remove(path: Path) -> None:
    """Remove a file whose delivery is committed (a second drain may have done it already)."""
    path.unlink(missing_ok=True)


def spool_remove_stale_temporaries(now: float | None = None) -> int:
    """Remove temporary files of writes that died before the delivery was answered."""
    directory = Path(settings.FAILTRACK_SPOOL_DIR)
    if not directory.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for path in directory.glob(".*.json.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                path.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def spool_lock() -> Iterator[bool]:
    """Hold this host's drain lock; yields False if another drain holds it.

    Two drains at once would store the same files twice over (harmless thanks to dedupe,
    but wasted) and race on removing them; one drain per host at a time is enough.
    """
    path = spool_dir() / ".drain.lock"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
