"""Deliveries: stored once before we answer, spooled when the database is down, processed
into canonical events by Celery tasks, swept when a task was lost, replayed after a fix."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from failures.events import EventInvalid
from failures.models import AtsConnection
from failures.services import event_record
from integrations.ats import ADAPTERS
from integrations.ats.base import AtsAdapter, DeliveryInvalid, StoredDelivery, body_sha256
from integrations.ats.mirror import Mirror
from integrations.models import DeliveryKey, DeliveryState, InboundDelivery
from integrations.spool import SpooledDelivery, spool_files, spool_write

logger = logging.getLogger(__name__)

# Headers that carry credentials in any vendor's scheme; never stored.
_ALWAYS_STRIPPED = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-hook-secret", "x-api-key"}
)
# Errors meaning "the database cannot take this now" (as opposed to a bad row).
DATABASE_DOWN = (OperationalError, InterfaceError)


class KeyReused(Exception):
    """A one-time signing token came again with a different body (a replay attempt)."""


@dataclass(frozen=True)
class Receipt:
    """What happened to a delivery we accepted."""

    delivery_id: int | None
    duplicate: bool = False
    spooled: bool = False


def headers_to_store(adapter: AtsAdapter, headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers without anything that could be a credential."""
    stripped = _ALWAYS_STRIPPED | adapter.credential_headers
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in stripped or "signature" in lowered or "secret" in lowered:
            continue
        kept[lowered] = str(value)[:1000]
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
    lets one commit and turns the other into a duplicate. Raises a DATABASE_DOWN error when
    the database cannot take it (the caller spools), KeyReused for a replayed one-time token.
    """
    digest = body_sha256(body)
    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(
                received_at=received_at,
                organization_id=organization_id,
                connection_id=connection_id,
                vendor=vendor,
                event_type=event_type[:120],
                dedupe_key=dedupe_key[:300],
                body=body,
                body_sha256=digest,
                headers=headers,
                verified_with=verified_with[:200],
                spooled=spooled,
            )
            DeliveryKey.objects.create(
                connection_id=connection_id,
                dedupe_key=dedupe_key[:300],
                delivery_id=delivery.pk,
                received_at=received_at,
                body_sha256=digest,
            )
            transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    except IntegrityError:
        first = DeliveryKey.objects.filter(
            connection_id=connection_id, dedupe_key=dedupe_key[:300]
        ).first()
        if first is None:  # the constraint that failed was not the dedupe key
            raise
        if refuse_reused_key and first.body_sha256 != digest:
            raise KeyReused(dedupe_key) from None
        return Receipt(delivery_id=first.delivery_id, duplicate=True)
    return Receipt(delivery_id=delivery.pk)


def delivery_accept(**fields: Any) -> Receipt:
    """Store a delivery, or spool it durably when the database cannot be reached."""
    try:
        return delivery_store(**fields)
    except DATABASE_DOWN:
        logger.warning(
            "database unavailable; delivery spooled connection=%s", fields["connection_id"]
        )
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
            )
        )
        return Receipt(delivery_id=None, spooled=True)


def spool_drain(limit: int | None = None) -> int:
    """Store spooled deliveries (oldest first) and remove their files; returns how many.

    Stops at the first database error: the rest stay spooled for the next drain.
    """
    drained = 0
    for path in spool_files():
        if limit is not None and drained >= limit:
            break
        spooled = SpooledDelivery.from_json(path.read_text())
        connection = AtsConnection.objects.filter(pk=spooled.connection_id).first()
        if connection is None:
            logger.error("spooled delivery for a deleted connection kept file=%s", path.name)
            continue
        try:
            delivery_store(
                connection_id=connection.pk,
                organization_id=connection.organization_id,
                vendor=spooled.vendor,
                event_type=spooled.event_type,
                dedupe_key=spooled.dedupe_key,
                body=spooled.body,
                headers=spooled.headers,
                verified_with=spooled.verified_with,
                received_at=spooled.received_at,
                spooled=True,
            )
        except KeyReused:
            logger.warning("spooled delivery reused a one-time key; dropped file=%s", path.name)
        path.unlink()
        drained += 1
    if drained:
        logger.info("spool drained deliveries=%d", drained)
    return drained


def delivery_enqueue(delivery_id: int) -> None:
    """Queue processing; if the broker is down the sweeper finds the delivery later."""
    from integrations.tasks import delivery_process_task

    try:
        delivery_process_task.apply_async(args=[delivery_id], expires=3600)
    except Exception:  # the broker is down or slow: the database row is the outbox
        logger.warning("broker unavailable; delivery %s left for the sweeper", delivery_id)


def _stored(delivery: InboundDelivery) -> StoredDelivery:
    import json

    try:
        payload = json.loads(bytes(delivery.body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeliveryInvalid("body", f"Not valid JSON: {exc}") from exc
    return StoredDelivery(
        id=delivery.pk,
        connection_id=str(delivery.connection_id),
        event_type=delivery.event_type,
        dedupe_key=delivery.dedupe_key,
        headers=delivery.headers,
        payload=payload,
        received_at=delivery.received_at,
    )


def delivery_process(delivery_id: int) -> str | None:
    """Turn one received delivery into canonical events; returns its new state.

    All of a delivery's events are recorded or none: a delivery that cannot be mapped is
    marked failed with the reason and stays replayable. Running it twice records nothing
    twice (the state is checked under a row lock, and event ids are idempotent).
    """
    with transaction.atomic():
        delivery = (
            InboundDelivery.objects.select_for_update(skip_locked=True)
            .select_related("connection__organization")
            .filter(pk=delivery_id, state=DeliveryState.RECEIVED)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        adapter = ADAPTERS.get(delivery.vendor)
        try:
            with transaction.atomic():
                if adapter is None:
                    raise DeliveryInvalid("vendor", f"No adapter for vendor {delivery.vendor!r}.")
                events = adapter.to_events(_stored(delivery), Mirror(delivery.connection))
                recorded = []
                for payload in events or ():
                    result = event_record(connection=delivery.connection, payload=payload)
                    recorded.append(result.event.event_id)
        except DeliveryInvalid as exc:
            _fail(delivery, f"{exc.field}: {exc.message}")
        except EventInvalid as exc:
            _fail(delivery, f"mapped event invalid, {exc.field}: {exc.message}")
        except DatabaseError:
            raise  # the task retries; the row stays received for the sweeper
        except Exception as exc:  # a bug in a mapping: keep the delivery, say what broke
            logger.exception("delivery %s failed in its adapter", delivery.pk)
            _fail(
                delivery, f"internal error in the {delivery.vendor} adapter: {type(exc).__name__}"
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
                "attempts",
                "processed_at",
                "events_recorded",
                "event_ids",
            ]
        )
        return delivery.state


def _ignored_reason(delivery: InboundDelivery) -> str:
    return f"Nothing to record for event type {delivery.event_type!r} (ping, test or unknown)."


def _fail(delivery: InboundDelivery, reason: str) -> None:
    delivery.state = DeliveryState.FAILED
    delivery.error = reason[:2000]
    logger.warning("delivery %s failed: %s", delivery.pk, reason[:200])


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
    """The periodic sweeper: drain the spool, then re-queue deliveries no task processed."""
    from integrations.tasks import deliveries_process_task

    drained = spool_drain()
    cutoff = timezone.now() - timedelta(seconds=settings.FAILTRACK_SWEEP_AFTER_SECONDS)
    ids = list(
        InboundDelivery.objects.filter(state=DeliveryState.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:20000]
    )
    for start in range(0, len(ids), 200):
        deliveries_process_task.apply_async(args=[ids[start : start + 200]], expires=3600)
    if ids:
        logger.info("sweeper re-queued deliveries=%d", len(ids))
    return {"spooled": drained, "requeued": len(ids)}


def delivery_replay(delivery: InboundDelivery) -> str | None:
    """Process a failed (or ignored) delivery again, e.g. after a mapping was fixed."""
    updated = InboundDelivery.objects.filter(
        pk=delivery.pk, state__in=[DeliveryState.FAILED, DeliveryState.IGNORED]
    ).update(state=DeliveryState.RECEIVED, error="")
    if not updated:
        return None
    return delivery_process(delivery.pk)
