"""Deliveries: stored once before we answer, spooled when the database is down, processed
into canonical events by Celery tasks, swept when a task was lost, replayed after a fix.

The states a delivery goes through (the database, not the broker, is the truth):

    received ──process──> processed | ignored | failed ──replay──> received ──> …

Nothing here logs a body, a header value or an adapter's exception message: they may carry
candidate data or secrets. Logs name deliveries by id, connections by id, and errors by
class and field.
"""

import hashlib
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    transaction,
)
from django.db import connection as db_connection
from django.db.models import F
from django.utils import timezone

from failures.events import EventInvalid
from failures.models import AtsConnection
from failures.services import event_record
from integrations.ats import ADAPTERS
from integrations.ats.base import AtsAdapter, DeliveryInvalid, Routed, StoredDelivery, body_sha256
from integrations.ats.mirror import Mirror
from integrations.credentials import DATABASE_BACKOFF_SECONDS, Backoff, database_backoff
from integrations.models import DeliveryKey, DeliveryState, InboundDelivery
from integrations.spool import (
    SpooledDelivery,
    SpoolUnreadable,
    spool_files,
    spool_lock,
    spool_pending,
    spool_quarantine,
    spool_read,
    spool_remove,
    spool_remove_stale_temporaries,
    spool_write,
)

logger = logging.getLogger(__name__)

# Headers that carry credentials in any vendor's scheme; never stored.
_ALWAYS_STRIPPED = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-hook-secret", "x-api-key"}
)
# Errors meaning "the database cannot take anything now": a drain stops, a task retries.
DATABASE_DOWN = (OperationalError, InterfaceError)
# Errors meaning "the database refuses this row" (the data is the problem, not the server).
DATA_REFUSED = (DataError, IntegrityError)
# Column sizes of InboundDelivery / DeliveryKey.
_EVENT_TYPE_LENGTH = 120
_DEDUPE_KEY_LENGTH = 300
# After a failed publish the broker is not tried again for this long (seconds): a webhook
# must answer fast, and the sweeper finds what was not queued.
BROKER_BACKOFF_SECONDS = 10.0
# A web process drains a little of its host's spool after it stored a delivery (so the
# database is back), at most this often and this much, so that a host without a worker
# empties its spool without an operator; the sweeper and `manage.py spool_drain` do bulk.
SPOOL_CHECK_SECONDS = 10.0
SPOOL_DRAIN_PER_CHECK = 10
# A delivery whose processing never finishes — the worker dies on it, or hits its hard time
# limit, every time — is given up (failed, replayable) after this many tries instead of
# being redelivered and re-swept forever, holding a worker each time.
MAX_UNFINISHED_TRIES = 5
_UNFINISHED = re.compile(r"^Processing started .* \(try (\d+) of \d+\), not finished\.$")
# Deliveries the sweeper re-queues per run, and per task.
SWEEP_LIMIT = 20000
SWEEP_BATCH = 200


class KeyReused(Exception):
    """A one-time signing token came again with a different body (a replay attempt)."""


@dataclass(frozen=True)
class Receipt:
    """What happened to a delivery we accepted."""

    delivery_id: int | None
    duplicate: bool = False
    spooled: bool = False


@dataclass
class DrainResult:
    """What one spool drain did."""

    stored: int = 0
    duplicates: int = 0
    refused: int = 0  # a reused one-time key: dropped, as the live path would have refused it
    kept: int = 0  # left in the spool (connection gone, or the database refused the row)
    unreadable: int = 0  # moved to the spool's unreadable/ directory
    busy: bool = False  # another drain held the lock; nothing was done
    delivery_ids: list[int] = field(default_factory=list)

    @property
    def drained(self) -> int:
        """Files removed from the spool because their delivery is in the database."""
        return self.stored + self.duplicates + self.refused


broker_backoff = Backoff()
spool_check = Backoff()


def _storable(text: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogates (both become U+FFFD)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def dedupe_key_stored(key: str) -> str:
    """The dedupe key as stored: the key itself when it fits, else a collision-free form.

    A key longer than the column, or one PostgreSQL cannot store, keeps a readable prefix
    and gains the SHA-256 of the whole key — truncating alone would make two different
    long keys one, and silently drop the second delivery as a duplicate.
    """
    if len(key) <= _DEDUPE_KEY_LENGTH and _storable(key) == key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_storable(key[:200])}…sha256:{digest}"


def headers_to_store(adapter: AtsAdapter, headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers without anything that could be a credential."""
    stripped = _ALWAYS_STRIPPED | adapter.credential_headers
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if (
            lowered in stripped
            or "signature" in lowered
            or "secret" in lowered
            or "token" in lowered
        ):
            continue
        kept[_storable(lowered)] = _storable(str(value)[:1000])
    return kept


def delivery_store(
    *,
    connection_id: Any,
    organization_id: int,
    vendor: str,
    event_type: str,
    dedupe_key: str,
    body: bytes,
    headers: dict[str, str],
    verified_with: str,
    received_at: datetime,
    spooled: bool = False,
    refuse_reused_key: bool = False,
) -> Receipt:
    """Store a verified delivery once per (connection, dedupe key); enqueue its processing.

    Two identical deliveries racing on different workers both try; the unique dedupe key
    lets one commit and turns the other into a duplicate (PostgreSQL makes the second
    insert wait for the first transaction, so the duplicate is always recognised). Raises
    DatabaseError when the database cannot take it (the caller spools), KeyReused for a
    replayed one-time token.
    """
    digest = body_sha256(body)
    key = dedupe_key_stored(dedupe_key)
    if db_connection.vendor == "postgresql":
        delivery_id = _store_one_statement(
            connection_id=connection_id,
            organization_id=organization_id,
            vendor=vendor,
            event_type=_storable(event_type[:_EVENT_TYPE_LENGTH]),
            key=key,
            body=body,
            digest=digest,
            headers=headers,
            verified_with=_storable(verified_with[:200]),
            received_at=received_at,
            spooled=spooled,
        )
        if delivery_id is not None:
            transaction.on_commit(lambda: delivery_enqueue(delivery_id))
            return Receipt(delivery_id=delivery_id)
        return _duplicate(connection_id, key, digest, refuse_reused_key)
    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(
                received_at=received_at,
                organization_id=organization_id,
                connection_id=connection_id,
                vendor=vendor,
                event_type=_storable(event_type[:_EVENT_TYPE_LENGTH]),
                dedupe_key=key,
                body=body,
                body_sha256=digest,
                headers=headers,
                verified_with=_storable(verified_with[:200]),
                spooled=spooled,
            )
            DeliveryKey.objects.create(
                connection_id=connection_id,
                dedupe_key=key,
                delivery_id=delivery.pk,
                received_at=received_at,
                body_sha256=digest,
            )
            transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    except IntegrityError:
        if not DeliveryKey.objects.filter(connection_id=connection_id, dedupe_key=key).exists():
            raise  # the constraint that failed was not the dedupe key
        return _duplicate(connection_id, key, digest, refuse_reused_key)
    return Receipt(delivery_id=delivery.pk)


def _duplicate(connection_id: Any, key: str, digest: str, refuse_reused_key: bool) -> Receipt:
    first = DeliveryKey.objects.get(connection_id=connection_id, dedupe_key=key)
    if refuse_reused_key and first.body_sha256 != digest:
        raise KeyReused(key) from None
    return Receipt(delivery_id=first.delivery_id, duplicate=True)


# On PostgreSQL the dedupe key and the delivery are written by one statement: the key first
# (ON CONFLICT DO NOTHING — a concurrent duplicate waits on the unique key, then inserts
# nothing), the delivery only if its key went in. One round trip instead of four: the
# webhook benchmark measured 0.8 ms of web CPU saved per delivery (docs/performance.md).
_STORE_SQL = """
WITH new_delivery AS (
    SELECT nextval(pg_get_serial_sequence('integrations_inbounddelivery', 'id')) AS id
), stored_key AS (
    INSERT INTO integrations_deliverykey
        (connection_id, dedupe_key, delivery_id, received_at, body_sha256)
    SELECT %(connection)s::uuid, %(key)s, new_delivery.id, %(received_at)s, %(digest)s
    FROM new_delivery
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING delivery_id
)
INSERT INTO integrations_inbounddelivery (
    id, received_at, organization_id, connection_id, vendor, event_type, dedupe_key, body,
    body_sha256, headers, verified_with, spooled, state, error, attempts, events_recorded,
    event_ids
)
SELECT stored_key.delivery_id, %(received_at)s, %(organization)s, %(connection)s::uuid,
       %(vendor)s, %(event_type)s, %(key)s, %(body)s, %(digest)s, %(headers)s::jsonb,
       %(verified_with)s, %(spooled)s, %(state)s, '', 0, 0, '[]'::jsonb
FROM stored_key
RETURNING id
"""


def _store_one_statement(
    *,
    connection_id: Any,
    organization_id: int,
    vendor: str,
    event_type: str,
    key: str,
    body: bytes,
    digest: str,
    headers: dict[str, str],
    verified_with: str,
    received_at: datetime,
    spooled: bool,
) -> int | None:
    """The new delivery's id, or None when its dedupe key was already stored."""
    import json

    # psycopg's own cursor binds parameters on the server, sends the body as binary and
    # prepares the statement after a few runs; Django's cursor would quote every value into
    # the SQL text (the body as a hex literal) and have it parsed and planned each time.
    db_connection.ensure_connection()
    # (Django's wrapper turns psycopg's errors into django.db ones, so a database that went
    # away still reaches delivery_accept's spool as a DatabaseError.)
    with db_connection.wrap_database_errors, db_connection.connection.cursor() as cursor:
        cursor.execute(
            _STORE_SQL,
            {
                "connection": str(connection_id),
                "organization": organization_id,
                "vendor": vendor,
                "event_type": event_type,
                "key": key,
                "body": body,
                "digest": digest,
                "headers": json.dumps(headers),
                "verified_with": verified_with,
                "received_at": received_at,
                "spooled": spooled,
                "state": str(DeliveryState.RECEIVED),
            },
            prepare=True,
        )
        row = cursor.fetchone()
    return row[0] if row else None


def delivery_accept(**fields: Any) -> Receipt:
    """Store a delivery, or spool it durably when the database cannot take it.

    Any database error spools — not only "server down": a read-only failover, a missing
    partition or a half-finished deploy must not cost a delivery from a vendor that never
    retries. Right after the database failed, deliveries are spooled without trying it
    (`database_backoff`). The spool file is fsync'd before this returns; if even that
    fails, the OSError propagates and the vendor gets an error (and retries, if it does).
    """
    if not database_backoff.active():
        try:
            receipt = delivery_store(**fields)
        except DatabaseError as exc:
            if isinstance(exc, DATABASE_DOWN):
                database_backoff.start(DATABASE_BACKOFF_SECONDS)
            logger.warning(
                "database refused the delivery (%s); spooling connection=%s",
                type(exc).__name__,
                fields["connection_id"],
            )
        else:
            _spool_drain_a_little()
            return receipt
    try:
        spool_write(
            SpooledDelivery(
                connection_id=str(fields["connection_id"]),
                vendor=fields["vendor"],
                event_type=fields["event_type"],
                dedupe_key=fields["dedupe_key"],
                body=fields["body"],
                headers=fields["headers"],
                verified_with=fields["verified_with"],
                received_at=fields["received_at"],
                refuse_reused_key=bool(fields.get("refuse_reused_key", False)),
            )
        )
    except OSError as exc:
        logger.error(
            "spool write failed (%s); delivery not accepted connection=%s",
            type(exc).__name__,
            fields["connection_id"],
        )
        raise
    return Receipt(delivery_id=None, spooled=True)


def _spool_drain_a_little() -> None:
    """Drain a few spooled deliveries of this host, at most every SPOOL_CHECK_SECONDS."""
    if spool_check.active():
        return
    spool_check.start(SPOOL_CHECK_SECONDS)
    try:
        if spool_pending():
            spool_drain(SPOOL_DRAIN_PER_CHECK)
    except Exception as exc:  # never at the cost of the delivery just stored
        logger.warning("spool drain after a stored delivery stopped (%s)", type(exc).__name__)


def spool_drain(
    limit: int | None = None, *, on_file: Callable[[str], None] | None = None
) -> DrainResult:
    """Store this host's spooled deliveries (oldest first), removing each file once stored.

    Idempotent: a file stored but not removed (a crash in between) is stored again as a
    duplicate. Stops at the first "database down" error (raised; the rest stay spooled).
    `on_file(outcome)` is called after each file, for progress.
    """
    result = DrainResult()
    with spool_lock() as locked:
        if not locked:
            result.busy = True
            return result
        spool_remove_stale_temporaries()
        connections: dict[str, dict | None] = {}  # one lookup per connection, not per file
        for path in spool_files():
            if limit is not None and result.drained + result.kept + result.unreadable >= limit:
                break
            outcome = _drain_one(path, result, connections)
            if on_file is not None:
                on_file(outcome)
    if result.drained or result.kept or result.unreadable:
        logger.info(
            "spool drained stored=%d duplicates=%d refused=%d kept=%d unreadable=%d",
            result.stored,
            result.duplicates,
            result.refused,
            result.kept,
            result.unreadable,
        )
    return result


def _drain_one(path: Path, result: DrainResult, connections: dict[str, dict | None]) -> str:
    try:
        spooled = spool_read(path)
    except FileNotFoundError:
        return "gone"
    except SpoolUnreadable as exc:
        spool_quarantine(path)
        result.unreadable += 1
        logger.error("unreadable spool file moved aside file=%s reason=%s", path.name, exc)
        return "unreadable"
    if spooled.connection_id not in connections:
        connections[spooled.connection_id] = (
            AtsConnection.objects.filter(pk=spooled.connection_id)
            .values("pk", "organization_id")
            .first()
        )
    connection = connections[spooled.connection_id]
    if connection is None:
        result.kept += 1
        logger.error("spooled delivery for a deleted connection kept file=%s", path.name)
        return "kept"
    try:
        receipt = delivery_store(
            connection_id=connection["pk"],
            organization_id=connection["organization_id"],
            vendor=spooled.vendor,
            event_type=spooled.event_type,
            dedupe_key=spooled.dedupe_key,
            body=spooled.body,
            headers=spooled.headers,
            verified_with=spooled.verified_with,
            received_at=spooled.received_at,
            spooled=True,
            refuse_reused_key=spooled.refuse_reused_key,
        )
    except KeyReused:
        result.refused += 1
        logger.warning("spooled delivery reused a one-time key; dropped file=%s", path.name)
        spool_remove(path)
        return "refused"
    except DATABASE_DOWN:
        raise
    except DatabaseError as exc:  # this row is refused (e.g. no partition yet): keep it
        result.kept += 1
        logger.error(
            "database refused a spooled delivery (%s); kept file=%s", type(exc).__name__, path.name
        )
        return "kept"
    spool_remove(path)
    if receipt.duplicate:
        result.duplicates += 1
        return "duplicate"
    result.stored += 1
    if receipt.delivery_id is not None:
        result.delivery_ids.append(receipt.delivery_id)
    return "stored"


def delivery_enqueue(delivery_id: int) -> None:
    """Queue processing; if the broker is down the sweeper finds the delivery later.

    Never raises and never waits long: a failed publish pauses publishing in this process
    for BROKER_BACKOFF_SECONDS (each attempt at a dead broker costs seconds), and the
    delivery's row, already committed, is the outbox the sweeper reads. A lone delivery
    is published at once; while the process is busy, ids are gathered and published in
    batches by a background thread, without holding the answer (integrations/publisher.py).
    """
    from integrations.publisher import processing_publisher

    if broker_backoff.active():
        return
    processing_publisher.add(delivery_id)


def _stored(delivery: InboundDelivery) -> StoredDelivery:
    try:
        payload = json.loads(bytes(delivery.body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DeliveryInvalid("body", f"Not valid JSON ({type(exc).__name__}).") from exc
    return StoredDelivery(
        id=delivery.pk,
        connection_id=str(delivery.connection_id),
        event_type=delivery.event_type,
        dedupe_key=delivery.dedupe_key,
        headers=delivery.headers,
        payload=payload,
        received_at=delivery.received_at,
    )


def _where(exc: BaseException) -> str:
    """Where an exception was raised, as file:line of our own frames (no values)."""
    root = str(settings.BASE_DIR) + os.sep
    frames = [
        f"{frame.filename.removeprefix(root)}:{frame.lineno}"
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.startswith(root) and f"{os.sep}.venv{os.sep}" not in frame.filename
    ]
    return " < ".join(reversed(frames[-3:])) or "unknown"


def _try_begin(delivery_id: int) -> str | None:
    """Count a try at a received delivery, committed before the work; "" means go on.

    The try is written to `error` ("Processing started …, not finished."), which the
    processing itself overwrites. Finding that text means the last try never finished; after
    MAX_UNFINISHED_TRIES the delivery is failed. Returns None when there is nothing to do.
    """
    with transaction.atomic():
        row = (
            InboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=delivery_id, state=DeliveryState.RECEIVED)
            .values("error")
            .first()
        )
        if row is None:
            return None
        unfinished = _UNFINISHED.match(row["error"])
        tries = int(unfinished.group(1)) if unfinished else 0
        now = timezone.now()
        this = InboundDelivery.objects.filter(pk=delivery_id)
        if tries >= MAX_UNFINISHED_TRIES:
            this.update(
                state=DeliveryState.FAILED,
                processed_at=now,
                error=(
                    f"Gave up: processing never finished in {tries} tries (the worker died, "
                    "hit its time limit or lost the database each time). Replay after fixing "
                    "the cause."
                ),
            )
            logger.error("delivery %s given up after %d unfinished tries", delivery_id, tries)
            return DeliveryState.FAILED
        this.update(
            attempts=F("attempts") + 1,
            error=(
                f"Processing started {now:%Y-%m-%d %H:%M:%S} UTC "
                f"(try {tries + 1} of {MAX_UNFINISHED_TRIES}), not finished."
            ),
        )
    return ""


def delivery_process(delivery_id: int) -> str | None:
    """Turn one received delivery into canonical events; returns its new state.

    All of a delivery's events are recorded or none: a delivery that cannot be mapped is
    marked failed with the reason and stays replayable. Running it twice records nothing
    twice (the state is checked under a row lock, and event ids are idempotent). Returns
    None when there was nothing to do (not received, or another worker holds it).
    """
    verdict = _try_begin(delivery_id)
    if verdict != "":
        return verdict
    with transaction.atomic():
        delivery = (
            InboundDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection__organization")
            .filter(pk=delivery_id, state=DeliveryState.RECEIVED)
            .first()
        )
        if delivery is None:
            return None
        adapter = ADAPTERS.get(delivery.vendor)
        events: list[dict] | None = None
        recorded: list[str] = []
        try:
            with transaction.atomic():
                if adapter is None:
                    raise DeliveryInvalid("vendor", f"No adapter for vendor {delivery.vendor!r}.")
                events = adapter.to_events(_stored(delivery), Mirror(delivery.connection))
                for item in events or ():
                    target, payload = _target(delivery, item)
                    result = event_record(connection=target, payload=payload)
                    recorded.append(result.event.event_id)
        except DeliveryInvalid as exc:
            _fail(delivery, exc.field, f"{exc.field}: {exc.message}")
        except EventInvalid as exc:
            _fail(delivery, exc.field, f"mapped event invalid, {exc.field}: {exc.message}")
        except DATA_REFUSED as exc:  # the database refuses what the mapping produced
            _fail(
                delivery,
                "database",
                f"the database refused a mapped event ({type(exc).__name__}) at {_where(exc)}",
            )
        except DatabaseError:
            raise  # the server is away: the task retries; the row stays received for the sweeper
        except Exception as exc:  # a bug in a mapping: keep the delivery, say where it broke
            where = _where(exc)
            logger.error(
                "delivery %s: %s in the %s adapter at %s",
                delivery.pk,
                type(exc).__name__,
                delivery.vendor,
                where,
            )
            _fail(
                delivery,
                "adapter",
                f"internal error in the {delivery.vendor} adapter: {type(exc).__name__} at {where}",
                log=False,
            )
        else:
            delivery.state = (
                DeliveryState.PROCESSED if events is not None else DeliveryState.IGNORED
            )
            delivery.error = "" if events is not None else _ignored_reason(delivery)
            delivery.events_recorded = len(recorded)
            delivery.event_ids = recorded
        delivery.processed_at = timezone.now()
        delivery.save(
            update_fields=[
                "state",
                "error",
                "processed_at",
                "events_recorded",
                "event_ids",
            ]
        )
        return delivery.state


def _target(delivery: InboundDelivery, item: Any) -> tuple[AtsConnection, Any]:
    """Where an adapter's event is recorded: the delivery's connection, or (Routed) another
    connection of the same organization — never one of another tenant."""
    if not isinstance(item, Routed):
        return delivery.connection, item
    target = AtsConnection.objects.filter(
        pk=item.connection_id, organization_id=delivery.organization_id
    ).first()
    if target is None:
        raise DeliveryInvalid(
            "connection", "The application's connection is not in this organization."
        )
    return target, item.payload


def _ignored_reason(delivery: InboundDelivery) -> str:
    return f"Nothing to record for event type {delivery.event_type!r} (ping, test or unknown)."


def _fail(delivery: InboundDelivery, field_name: str, reason: str, *, log: bool = True) -> None:
    """Mark failed with the full reason (for the admin); the log names only the field."""
    delivery.state = DeliveryState.FAILED
    delivery.error = reason[:2000]
    delivery.events_recorded = 0
    delivery.event_ids = []
    if log:
        logger.warning(
            "delivery %s failed vendor=%s field=%s", delivery.pk, delivery.vendor, field_name
        )


def deliveries_process(ids: Iterable[int]) -> dict[str, int]:
    """Process several deliveries; returns how many ended in each state."""
    counts: dict[str, int] = {}
    for delivery_id in ids:
        state = delivery_process(delivery_id)
        if state:
            counts[state] = counts.get(state, 0) + 1
    return counts


def deliveries_process_pending(*, older_than: timedelta | None = None, limit: int = 5000) -> int:
    """Process received deliveries (oldest first), e.g. those a lost task left behind."""
    pending = InboundDelivery.objects.filter(state=DeliveryState.RECEIVED)
    if older_than is not None:
        pending = pending.filter(received_at__lt=timezone.now() - older_than)
    ids = list(pending.order_by("received_at", "id").values_list("id", flat=True)[:limit])
    deliveries_process(ids)
    return len(ids)


def deliveries_sweep() -> dict[str, int]:
    """The periodic sweeper: drain the spool, then re-queue deliveries no task processed.

    "No task processed" = still received FAILTRACK_SWEEP_AFTER_SECONDS after arrival (the
    broker was down when it was stored, a message was lost, a task gave up). A delivery
    re-queued twice is processed once (delivery_process checks the state under a lock).
    """
    from integrations.tasks import deliveries_process_task

    drained = spool_drain()
    cutoff = timezone.now() - timedelta(seconds=settings.FAILTRACK_SWEEP_AFTER_SECONDS)
    ids = list(
        InboundDelivery.objects.filter(state=DeliveryState.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:SWEEP_LIMIT]
    )
    for start in range(0, len(ids), SWEEP_BATCH):
        deliveries_process_task.apply_async(args=[ids[start : start + SWEEP_BATCH]], expires=3600)
    if ids:
        logger.info("sweeper re-queued deliveries=%d", len(ids))
    return {
        "spooled": drained.stored,
        "spool_duplicates": drained.duplicates,
        "spool_kept": drained.kept + drained.unreadable,
        "requeued": len(ids),
    }


def delivery_replay(delivery: InboundDelivery) -> str | None:
    """Process a failed (or ignored) delivery again, e.g. after a mapping was fixed.

    Returns the new state, or None if the delivery was not failed or ignored (a processed
    delivery is never recorded twice).
    """
    updated = InboundDelivery.objects.filter(
        pk=delivery.pk, state__in=[DeliveryState.FAILED, DeliveryState.IGNORED]
    ).update(state=DeliveryState.RECEIVED, error="")
    if not updated:
        return None
    logger.info("delivery %s replayed", delivery.pk)
    return delivery_process(delivery.pk)
