"""The sweeper: what no task processed is found and processed by a real worker on Redis."""

import json
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery import app as celery_app
from failures.models import RecruitingEvent
from integrations.ingest import broker_backoff, deliveries_sweep, delivery_store
from integrations.models import DeliveryState, InboundDelivery
from integrations.publisher import processing_publisher
from integrations.spool import SpooledDelivery, spool_files, spool_write
from integrations.tasks import deliveries_sweep_task


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Own spool, an empty queue, and the sweeper looking at anything not yet processed."""
    settings.FAILTRACK_SPOOL_DIR = tmp_path / "spool"
    settings.FAILTRACK_SWEEP_AFTER_SECONDS = 0
    broker_backoff.reset()
    lose_queued_messages()
    yield
    lose_queued_messages()


def lose_queued_messages() -> int:
    """Drop every queued message (after the publisher sent what it gathered); how many."""
    processing_publisher.flush(10)
    return celery_app.control.purge()


def stored_without_a_task(connection, event: dict, received_at=None) -> int:
    """A delivery in the database whose processing message was lost."""
    body = json.dumps(event).encode()
    receipt = delivery_store(
        connection_id=connection.pk,
        organization_id=connection.organization_id,
        vendor="generic",
        event_type=event["kind"],
        dedupe_key=event["id"],
        body=body,
        headers={},
        verified_with="sha256 HMAC of body, key 'primary'",
        received_at=received_at or timezone.now() - timedelta(minutes=5),
    )
    return receipt.delivery_id


def wait_for(predicate, seconds: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_what_the_sweeper_finds(connection, make_event):
    lost = make_event()
    delivery_id = stored_without_a_task(connection, lost)
    spooled = make_event()  # accepted while the database was down
    body = json.dumps(spooled).encode()
    spool_write(
        SpooledDelivery(
            connection_id=str(connection.pk),
            vendor="generic",
            event_type=spooled["kind"],
            dedupe_key=spooled["id"],
            body=body,
            headers={},
            verified_with="sha256 HMAC of body, key 'primary'",
            received_at=timezone.now() - timedelta(minutes=2),
        )
    )
    # The delivery's own message is lost (a broker restart without persistence, say).
    assert lose_queued_messages() == 1
    assert InboundDelivery.objects.get(pk=delivery_id).state == DeliveryState.RECEIVED

    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        deliveries_sweep_task.delay()  # what beat sends every minute
        done = wait_for(
            lambda: InboundDelivery.objects.filter(state=DeliveryState.PROCESSED).count() == 2
        )

    assert done, list(InboundDelivery.objects.values("id", "state", "error"))
    assert spool_files() == []
    assert InboundDelivery.objects.get(dedupe_key=spooled["id"]).spooled is True
    for event in (lost, spooled):
        assert RecruitingEvent.objects.filter(event_id=event["id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_requeues_only_received_deliveries_old_enough(connection, make_event, settings):
    settings.FAILTRACK_SWEEP_AFTER_SECONDS = 120
    old = stored_without_a_task(connection, make_event())
    recent = stored_without_a_task(connection, make_event(), received_at=timezone.now())
    done = stored_without_a_task(connection, make_event())
    InboundDelivery.objects.filter(pk=done).update(state=DeliveryState.PROCESSED)
    failed = stored_without_a_task(connection, make_event())
    InboundDelivery.objects.filter(pk=failed).update(state=DeliveryState.FAILED)
    assert lose_queued_messages() >= 1

    result = deliveries_sweep()

    assert result["requeued"] == 1
    assert celery_app.control.purge() == 1  # one batch task, holding only `old`
    assert InboundDelivery.objects.get(pk=old).state == DeliveryState.RECEIVED
    assert InboundDelivery.objects.get(pk=recent).state == DeliveryState.RECEIVED


@pytest.mark.django_db(transaction=True)
def test_a_delivery_requeued_twice_is_recorded_once(connection, make_event):
    event = make_event()
    delivery_id = stored_without_a_task(connection, event)
    lose_queued_messages()

    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        deliveries_sweep_task.delay()
        deliveries_sweep_task.delay()  # two sweeps before the worker got to it
        wait_for(
            lambda: InboundDelivery.objects.get(pk=delivery_id).state == DeliveryState.PROCESSED
        )
        time.sleep(1.0)  # let the second batch run too

    delivery = InboundDelivery.objects.get(pk=delivery_id)
    assert delivery.state == DeliveryState.PROCESSED
    assert delivery.attempts == 1
    assert RecruitingEvent.objects.filter(event_id=event["id"]).count() == 1
