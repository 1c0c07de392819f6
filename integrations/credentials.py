"""Connections and their decrypted signing keys, cached per process.

The cache is what lets a webhook be verified, and so accepted into the spool, while the
database is down. Fresh entries are reused for `FAILTRACK_CREDENTIALS_FRESH_SECONDS`
(default 30); when the database cannot be reached an entry of any age is used (the keys
were valid when last read, and refusing would lose deliveries of vendors that do not
retry). A connection this process never read cannot be verified then: the view answers 503.

`database_backoff` is this process's memory that the database just failed: for a moment
nobody waits on it again (a connection attempt to an unreachable server lasts up to
connect_timeout), cached keys of any age are used and deliveries go straight to the spool.
"""

import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from failures.models import AtsConnection
from integrations.ats.base import SigningKey

DEFAULT_FRESH_SECONDS = 30.0
# After the database failed, it is not tried again by this process for this long (seconds).
DATABASE_BACKOFF_SECONDS = 2.0

# (vendor, connection id) -> (when it was read, what was read); one dict, so that a reader
# in another thread never sees an entry without its time.
_cache: dict[tuple[str, str], tuple[float, "ConnectionCredentials | None"]] = {}


class Backoff:
    """A per-process "do not try before" time, shared by the threads of a process."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def active(self) -> bool:
        return time.monotonic() < self._until

    def start(self, seconds: float) -> None:
        with self._lock:
            self._until = time.monotonic() + seconds

    def reset(self) -> None:
        with self._lock:
            self._until = 0.0


database_backoff = Backoff()


class CredentialsUnavailable(Exception):
    """The database is down and this connection was never read by this process."""


@dataclass(frozen=True)
class ConnectionCredentials:
    connection_id: uuid.UUID
    organization_id: int
    vendor: str
    keys: tuple[SigningKey, ...]

    def keys_for(self, event_type: str) -> list[SigningKey]:
        return [k for k in self.keys if not k.event_type or k.event_type == event_type]


def _load(vendor: str, pk: uuid.UUID) -> ConnectionCredentials | None:
    connection = AtsConnection.objects.filter(pk=pk, vendor=vendor, is_active=True).first()
    if connection is None:
        return None
    keys = tuple(
        SigningKey(label=row.label, value=row.value, event_type=row.event_type)
        for row in connection.secrets.filter(is_active=True).order_by("-created_at", "-pk")
    )
    return ConnectionCredentials(
        connection_id=connection.pk,
        organization_id=connection.organization_id,
        vendor=connection.vendor,
        keys=keys,
    )


def credentials_get(vendor: str, connection_id: str) -> ConnectionCredentials | None:
    """The active connection with this id and vendor, or None if there is none."""
    try:
        pk = uuid.UUID(str(connection_id))
    except ValueError:
        return None
    key = (vendor, str(pk))
    now = time.monotonic()
    fresh_for = float(
        getattr(settings, "FAILTRACK_CREDENTIALS_FRESH_SECONDS", DEFAULT_FRESH_SECONDS)
    )
    cached = _cache.get(key)
    if cached is not None and (now - cached[0] < fresh_for or database_backoff.active()):
        return cached[1]
    if database_backoff.active():
        raise CredentialsUnavailable(str(connection_id))
    try:
        credentials = _load(vendor, pk)
    except DatabaseError as exc:
        if isinstance(exc, (OperationalError, InterfaceError)):
            database_backoff.start(DATABASE_BACKOFF_SECONDS)
        if cached is not None:  # stale, but the best we know while the database is away
            return cached[1]
        raise CredentialsUnavailable(str(connection_id)) from exc
    _cache[key] = (now, credentials)
    return credentials


def credentials_forget() -> None:
    """Forget what this process believes: cached keys, and that the database was down."""
    _cache.clear()
    database_backoff.reset()
