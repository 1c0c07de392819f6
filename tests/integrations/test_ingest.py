"""Every delivery, exactly once: storing, spooling, draining, processing, failing, replaying.

Real PostgreSQL and Redis throughout. "The database is down" is a real refused connection
(the Django connection pointed at a closed port), "the broker is down" a real Celery app
publishing to a closed port.
"""

import io
import json
import os
import re
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from failures.models import RecruitingEvent, StageMapping
from integrations import credentials, ingest, spool
from integrations.ats import ADAPTERS
from integrations.ats.generic import GenericAdapter
from integrations.credentials import database_backoff
from integrations.ingest import (
    KeyReused,
    broker_backoff,
    dedupe_key_stored,
    deliveries_process_pending,
    delivery_process,
    delivery_replay,
    delivery_store,
    spool_check,
    spool_drain,
)
from integrations.models import DeliveryKey, DeliveryState, InboundDelivery
from integrations.publisher import processing_publisher
from integrations.spool import SpooledDelivery, spool_files, spool_lock, spool_write
from tests.conftest import sign

SIGNATURE = "X-Failtrack-Signature"


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_unreachable() -> Iterator[None]:
    """The default database refuses connections until the block ends (a real outage)."""
    saved = db_connection.settings_dict["PORT"]
    db_connection.close()
    db_connection.settings_dict["PORT"] = str(closed_port())
    try:
        yield
    finally:
        db_connection.close()
        db_connection.settings_dict["PORT"] = saved


@contextmanager
def broker_unreachable() -> Iterator[None]:
    """The Celery app publishes to a closed port until the block ends."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.broker_write_url, celery_app._pool, celery_app.amqp._producer_pool
    dead = f"redis://127.0.0.1:{closed_port()}/6"
    conf.broker_url = conf.broker_write_url = dead
    celery_app._pool = celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url = saved[0], saved[1]
        celery_app._pool, celery_app.amqp._producer_pool = saved[2], saved[3]


@pytest.fixture(autouse=True)
def _spool(settings, tmp_path):
    """Each test has its own spool directory and a broker not in backoff."""
    settings.FAILTRACK_SPOOL_DIR = tmp_path / "spool"
    for backoff in (broker_backoff, database_backoff, spool_check):
        backoff.reset()
    yield settings.FAILTRACK_SPOOL_DIR
    for backoff in (broker_backoff, database_backoff, spool_check):
        backoff.reset()


def store_fields(connection, event: dict, **overrides) -> dict:
    """The keyword arguments of delivery_store/delivery_accept for a generic event."""
    body = json.dumps(event).encode()
    fields = {
        "connection_id": connection.pk,
        "organization_id": connection.organization_id,
        "vendor": "generic",
        "event_type": event["kind"],
        "dedupe_key": event["id"],
        "body": body,
        "headers": {"content-type": "application/json"},
        "verified_with": "sha256 HMAC of body, key 'primary'",
        "received_at": timezone.now(),
    }
    fields.update(overrides)
    return fields


def spooled_of(connection, event: dict, **overrides) -> SpooledDelivery:
    fields = store_fields(connection, event)
    fields.pop("organization_id")
    fields["connection_id"] = str(connection.pk)
    fields.update(overrides)
    return SpooledDelivery(**fields)


def signed_headers(connection, event: dict, **extra: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, {SIGNATURE: sign(connection.secret, body), **extra}


# --- Storing ------------------------------------------------------------------------------


def test_headers_are_stored_without_any_credential(connection, make_event, hook):
    body, headers = signed_headers(
        connection,
        make_event(),
        Authorization="Bearer tok-abc-123",
        Cookie="sessionid=cookie-value-456",
        **{
            "X-Hook-Secret": "hook-secret-789",
            "X-Api-Token": "api-token-000",
            "X-Request-Id": "req-1",
            "User-Agent": "Acme-ATS/2.1",
        },
    )

    response = hook(connection, body, headers, process=False)

    assert response.status_code == 202
    stored = InboundDelivery.objects.get().headers
    assert stored["x-request-id"] == "req-1"
    assert stored["user-agent"] == "Acme-ATS/2.1"
    for name in (
        "authorization",
        "cookie",
        "x-hook-secret",
        "x-api-token",
        "x-failtrack-signature",
    ):
        assert name not in stored
    flat = json.dumps(stored)
    signature = headers[SIGNATURE].removeprefix("sha256=")
    for secret in ("tok-abc-123", "cookie-value-456", "hook-secret-789", "api-token-000"):
        assert secret not in flat
    assert signature not in flat


def test_a_delivery_is_stored_as_received_then_processed_once(connection, make_event, hook):
    event = make_event()
    body, headers = signed_headers(connection, event)

    hook(connection, body, headers, process=False)
    delivery = InboundDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert delivery.state == DeliveryState.RECEIVED
    assert delivery.dedupe_key == event["id"]
    assert delivery.verified_with == "sha256 HMAC of body, key 'primary'"

    assert delivery_process(delivery.pk) == DeliveryState.PROCESSED
    assert delivery_process(delivery.pk) is None  # a second task finds nothing to do
    assert delivery_replay(delivery) is None  # a processed delivery is never replayed

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.event_ids == [event["id"]]
    assert RecruitingEvent.objects.filter(event_id=event["id"]).count() == 1


def test_a_duplicate_is_one_delivery_and_one_event(connection, make_event, hook):
    event = make_event()
    body, headers = signed_headers(connection, event)

    first = hook(connection, body, headers)
    second = hook(connection, body, headers)

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert DeliveryKey.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


def test_a_reused_one_time_key_with_another_body_is_refused(connection, make_event):
    event = make_event()
    delivery_store(**store_fields(connection, event, refuse_reused_key=True))

    again = delivery_store(**store_fields(connection, event, refuse_reused_key=True))
    assert again.duplicate

    tampered = {**event, "occurred_at": "2026-11-03T09:30:00Z"}
    with pytest.raises(KeyReused):
        delivery_store(
            **store_fields(connection, tampered, dedupe_key=event["id"], refuse_reused_key=True)
        )
    # Vendors without one-time tokens: another body under the same key is a duplicate.
    assert delivery_store(**store_fields(connection, tampered, dedupe_key=event["id"])).duplicate
    assert InboundDelivery.objects.count() == 1


def test_long_dedupe_keys_that_share_a_prefix_stay_two_deliveries(connection, make_event):
    prefix = "k" * 400
    first = delivery_store(**store_fields(connection, make_event(), dedupe_key=prefix + "-a"))
    second = delivery_store(**store_fields(connection, make_event(), dedupe_key=prefix + "-b"))

    assert not first.duplicate and not second.duplicate
    keys = list(DeliveryKey.objects.values_list("dedupe_key", flat=True))
    assert len(set(keys)) == 2
    assert all(len(key) <= 300 for key in keys)
    assert dedupe_key_stored(prefix + "-a") == dedupe_key_stored(prefix + "-a")


def test_text_postgresql_cannot_store_in_keys_is_stored_not_a_crash(connection, make_event):
    event = make_event()
    receipt = delivery_store(
        **store_fields(connection, event, dedupe_key="evt-\x00-\ud800", event_type="odd\x00kind")
    )

    delivery = InboundDelivery.objects.get(pk=receipt.delivery_id)
    assert "\x00" not in delivery.event_type and "\x00" not in delivery.dedupe_key
    assert delivery_store(**store_fields(connection, event, dedupe_key="evt-\x00-\ud800")).duplicate
    assert not delivery_store(
        **store_fields(connection, event, dedupe_key="evt-\ufffd-\ufffd")
    ).duplicate


# --- The spool ----------------------------------------------------------------------------


def test_a_spool_file_is_complete_owner_only_and_reads_back(connection, make_event, _spool):
    event = make_event()
    original = spooled_of(connection, event, refuse_reused_key=True)

    path = spool_write(original)

    assert path.parent == _spool
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(_spool.stat().st_mode) == 0o700
    assert [p.name for p in _spool.iterdir()] == [path.name]  # no temporary file left
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert data["connection_id"] == str(connection.pk)
    assert data["dedupe_key"] == event["id"]
    assert json.loads(__import__("base64").b64decode(data["body"])) == event
    assert data["refuse_reused_key"] is True
    assert spool.spool_read(path) == original


def test_a_spool_file_is_fsynced_before_it_is_renamed_into_place(
    connection, make_event, monkeypatch
):
    steps: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(descriptor: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def rename(source, target) -> None:
        steps.append(("rename", str(target)))
        real_rename(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)

    path = spool_write(spooled_of(connection, make_event()))

    assert [kind for kind, _ in steps] == ["fsync", "rename", "fsync"]
    assert steps[0][1].endswith(".tmp")  # the data, under its temporary name
    assert steps[1][1] == str(path)
    assert steps[2][1] == str(path.parent)  # the directory entry of the rename


def test_drain_stores_each_spooled_delivery_once_even_after_a_crash_before_unlink(
    connection, make_event
):
    event = make_event()
    path = spool_write(spooled_of(connection, event))
    saved = path.read_bytes()

    first = spool_drain()
    assert (first.stored, first.duplicates) == (1, 0)
    assert spool_files() == []
    # The process died after the commit but before the unlink: the file is still there.
    path.write_bytes(saved)
    second = spool_drain()
    assert (second.stored, second.duplicates) == (0, 1)
    assert spool_drain().drained == 0

    delivery = InboundDelivery.objects.get()
    assert delivery.spooled is True
    assert delivery.dedupe_key == event["id"]
    deliveries_process_pending()
    assert RecruitingEvent.objects.filter(event_id=event["id"]).count() == 1


def test_drain_keeps_order_skips_what_it_cannot_store_and_quarantines_garbage(
    connection, make_event, _spool
):
    received = timezone.now() - timedelta(minutes=5)
    events = [make_event() for _ in range(3)]
    for offset, event in enumerate(events):
        spool_write(spooled_of(connection, event, received_at=received + timedelta(seconds=offset)))
    orphan = spool_write(spooled_of(connection, make_event(), connection_id=str(uuid.uuid4())))
    (_spool / "00000000T000000000000-garbage.json").write_text('{"format": 1, "body": 3')
    outcomes: list[str] = []

    result = spool_drain(on_file=outcomes.append)

    assert (result.stored, result.kept, result.unreadable) == (3, 1, 1)
    assert outcomes[0] == "unreadable" and outcomes.count("stored") == 3
    assert [p.name for p in spool_files()] == [orphan.name]  # kept for an operator
    assert (_spool / "unreadable" / "00000000T000000000000-garbage.json").exists()
    stored = InboundDelivery.objects.order_by("id")
    assert [d.dedupe_key for d in stored] == [e["id"] for e in events]
    assert stored[0].received_at == received  # the time it reached us, not the drain's


def test_a_reused_one_time_key_found_in_the_spool_is_dropped(connection, make_event):
    event = make_event()
    delivery_store(**store_fields(connection, event))
    tampered = {**event, "occurred_at": "2026-11-03T09:30:00Z"}
    spool_write(spooled_of(connection, tampered, dedupe_key=event["id"], refuse_reused_key=True))

    result = spool_drain()

    assert (result.refused, result.stored) == (1, 0)
    assert spool_files() == []
    assert InboundDelivery.objects.count() == 1


def test_only_one_drain_runs_at_a_time(connection, make_event):
    spool_write(spooled_of(connection, make_event()))

    with spool_lock() as locked:
        assert locked
        assert spool_drain().busy

    assert spool_drain().stored == 1


def test_a_stale_temporary_file_of_a_dead_write_is_cleaned_up(_spool):
    _spool.mkdir(parents=True)
    stale = _spool / ".20261101T000000000000-dead.json.tmp"
    stale.write_text("{")
    old = time.time() - 2 * spool.STALE_TEMPORARY_SECONDS
    os.utime(stale, (old, old))
    fresh = _spool / ".20261101T000000000001-live.json.tmp"
    fresh.write_text("{")

    spool_drain()

    assert not stale.exists()
    assert fresh.exists()  # may be a write in progress right now


# --- The database is down -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_while_the_database_is_down_deliveries_are_spooled_then_drained_once(
    connection, other_org, make_event, hook, settings, caplog
):
    cold = type(connection).objects.create(organization=other_org, name="never seen")
    before = make_event()
    assert hook(connection, *signed_headers(connection, before)).status_code == 202
    during = [make_event() for _ in range(3)]
    settings.FAILTRACK_CREDENTIALS_FRESH_SECONDS = 0  # every cached entry is now stale

    signed = [signed_headers(connection, e) for e in [*during, before]]  # reads the secret

    with database_unreachable():
        *answers, resent = [hook(connection, *request, process=False) for request in signed]
        unknown = hook(cold, b'{"id": "x", "kind": "integration.ping"}', {}, process=False)

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert all(
        a.json() == {"status": "accepted", "delivery": None, "spooled": True} for a in answers
    )
    assert resent.status_code == 202  # a duplicate cannot be recognised without the database
    assert unknown.status_code == 503  # a connection never read cannot be verified
    assert unknown["Retry-After"] == "30"
    assert len(spool_files()) == 4

    result = spool_drain()
    deliveries_process_pending()

    assert (result.stored, result.duplicates) == (3, 1)
    assert InboundDelivery.objects.count() == 4
    assert InboundDelivery.objects.filter(spooled=True).count() == 3
    for event in [before, *during]:
        assert RecruitingEvent.objects.filter(event_id=event["id"]).count() == 1
    assert not InboundDelivery.objects.exclude(state=DeliveryState.PROCESSED).exists()
    assert connection.secret not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_right_after_a_failure_the_database_is_not_waited_on_and_the_spool_drains_itself(
    connection, make_event, hook, settings
):
    settings.FAILTRACK_CREDENTIALS_FRESH_SECONDS = 0
    first, second, third, fourth = (signed_headers(connection, make_event()) for _ in range(4))
    assert hook(connection, *first).status_code == 202  # the keys are cached
    spool_check.start(3600)  # no drain check before we say so

    with database_unreachable():
        down = hook(connection, *second, process=False)
    assert database_backoff.active()
    # The database answers again, but this process does not try it for a moment: it
    # neither reloads keys nor stores, and a connection it never read is a 503 at once.
    meanwhile = hook(connection, *third, process=False)
    with pytest.raises(credentials.CredentialsUnavailable):
        credentials.credentials_get("generic", str(uuid.uuid4()))

    assert down.json()["spooled"] and meanwhile.json()["spooled"]
    assert len(spool_files()) == 2
    database_backoff.reset()  # the moment has passed
    spool_check.reset()
    back = hook(connection, *fourth)

    assert back.json()["delivery"] is not None  # stored live again
    assert spool_files() == []  # and that request drained what this host had spooled
    assert InboundDelivery.objects.filter(spooled=True).count() == 2
    assert RecruitingEvent.objects.count() == 4


def test_a_stored_delivery_checks_the_spool_at_most_every_few_seconds(connection, make_event, hook):
    hook(connection, *signed_headers(connection, make_event()), process=False)  # checked
    waiting = spool_write(spooled_of(connection, make_event()))

    hook(connection, *signed_headers(connection, make_event()), process=False)

    assert spool_files() == [waiting]  # left for the next check, the sweeper or the command
    spool_check.reset()
    hook(connection, *signed_headers(connection, make_event()), process=False)
    assert spool_files() == []


def test_credentials_are_reused_while_fresh_and_reloaded_once_expired(connection):
    # Within the test transaction the database cannot be closed; a deactivation that the
    # cache has not seen yet shows which answer came from where.
    first = credentials.credentials_get("generic", str(connection.pk))
    type(connection).objects.filter(pk=connection.pk).update(is_active=False)

    assert credentials.credentials_get("generic", str(connection.pk)) == first  # fresh
    key = ("generic", str(connection.pk))
    credentials._cache[key] = (credentials._cache[key][0] - 3600, first)  # older than any TTL
    assert credentials.credentials_get("generic", str(connection.pk)) is None  # reloaded


@pytest.mark.django_db(transaction=True)
def test_an_expired_cache_entry_is_still_used_while_the_database_is_down(connection, settings):
    settings.FAILTRACK_CREDENTIALS_FRESH_SECONDS = 0
    first = credentials.credentials_get("generic", str(connection.pk))

    with database_unreachable():
        during = credentials.credentials_get("generic", str(connection.pk))
        with pytest.raises(credentials.CredentialsUnavailable):
            credentials.credentials_get("generic", str(uuid.uuid4()))

    assert during == first
    assert [key.value for key in during.keys] == [connection.secret]


# --- Processing -----------------------------------------------------------------------


def test_a_failed_delivery_keeps_its_reason_and_is_replayed_after_the_fix(
    connection, make_event, hook
):
    event = make_event(stage={"name": "Take-home Task", "category": None})
    hook(connection, *signed_headers(connection, event))

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("mapped event invalid, stage.category:")
    assert "not mapped" in delivery.error
    assert not RecruitingEvent.objects.exists()
    assert deliveries_process_pending() == 0  # failed is not retried by itself

    StageMapping.objects.create(
        organization=connection.organization, stage_name="Take-home Task", category="interviewing"
    )
    assert delivery_replay(delivery) == DeliveryState.PROCESSED

    delivery.refresh_from_db()
    assert delivery.error == ""
    assert delivery.attempts == 2
    assert RecruitingEvent.objects.get().event_id == event["id"]
    assert delivery_replay(delivery) is None


class ExplodingAdapter(GenericAdapter):
    """An adapter with a bug whose exception message quotes the payload."""

    def to_events(self, delivery, mirror):
        application = delivery.payload["application"]
        raise ValueError(f"cannot map candidate {application['candidate_id']} ({application})")


def test_an_adapter_bug_fails_the_delivery_without_logging_payload_data(
    connection, make_event, hook, monkeypatch, caplog
):
    event = make_event(application={"candidate_id": "cand-secret-4711"})
    hook(connection, *signed_headers(connection, event), process=False)
    monkeypatch.setitem(ADAPTERS, "generic", ExplodingAdapter())

    with caplog.at_level("DEBUG"):
        deliveries_process_pending()

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "internal error in the generic adapter: ValueError at " in delivery.error
    assert "tests/integrations/test_ingest.py:" in delivery.error  # where, for the developer
    assert "cand-secret-4711" not in delivery.error
    assert any("ValueError" in r.getMessage() for r in caplog.records)
    for text in (caplog.text, *(r.getMessage() for r in caplog.records)):
        assert "cand-secret-4711" not in text
        assert "app-9" not in text
        assert connection.secret not in text
    assert all(r.exc_info is None for r in caplog.records)  # no traceback text either
    assert not RecruitingEvent.objects.exists()


def test_a_row_the_database_refuses_fails_the_delivery_instead_of_retrying_forever(
    connection, make_event, hook, monkeypatch
):
    class InfinityAdapter(GenericAdapter):
        """Passes event validation, but no JSON column can hold Infinity."""

        def to_events(self, delivery, mirror):
            return [{**delivery.payload, "details": {"score": float("inf")}}]

    hook(connection, *signed_headers(connection, make_event()), process=False)
    monkeypatch.setitem(ADAPTERS, "generic", InfinityAdapter())

    deliveries_process_pending()

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("the database refused a mapped event (DataError) at ")
    assert delivery.attempts == 1
    assert not RecruitingEvent.objects.exists()


class WorkerDied(BaseException):
    """What a worker killed mid-task looks like from here: the work simply stops."""


class DyingAdapter(GenericAdapter):
    def to_events(self, delivery, mirror):
        raise WorkerDied


def test_a_delivery_whose_processing_never_finishes_is_given_up_and_stays_replayable(
    connection, make_event, hook, monkeypatch
):
    hook(connection, *signed_headers(connection, make_event()), process=False)
    delivery = InboundDelivery.objects.get()
    monkeypatch.setitem(ADAPTERS, "generic", DyingAdapter())

    for attempt in range(1, ingest.MAX_UNFINISHED_TRIES + 1):
        with pytest.raises(WorkerDied):
            delivery_process(delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.RECEIVED  # redelivered, swept: tried again
        assert f"(try {attempt} of 5), not finished." in delivery.error
    assert delivery_process(delivery.pk) == DeliveryState.FAILED

    delivery.refresh_from_db()
    assert delivery.error.startswith("Gave up: processing never finished in 5 tries")
    assert delivery.attempts == 5
    assert deliveries_process_pending() == 0  # no longer picked up by anyone
    monkeypatch.setitem(ADAPTERS, "generic", GenericAdapter())  # the fix
    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert RecruitingEvent.objects.count() == 1


# --- The broker is down ---------------------------------------------------------------


def test_with_the_broker_down_the_hook_answers_quickly_and_leaves_the_row(
    connection, make_event, hook, django_capture_on_commit_callbacks, caplog
):
    with broker_unreachable():
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            first = hook(connection, *signed_headers(connection, make_event()), process=False)
        first_took = time.monotonic() - started
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            second = hook(connection, *signed_headers(connection, make_event()), process=False)
        second_took = time.monotonic() - started

    assert (first.status_code, second.status_code) == (202, 202)
    assert first_took < 4.0  # one bounded attempt at the dead broker
    assert second_took < 0.5  # then no attempt at all for a while
    assert broker_backoff.active()
    assert InboundDelivery.objects.filter(state=DeliveryState.RECEIVED).count() == 2
    assert "left for the sweeper" in caplog.text


def test_delivery_enqueue_publishes_to_the_broker(connection, make_event):
    receipt = delivery_store(**store_fields(connection, make_event()))
    celery_app.control.purge()

    ingest.delivery_enqueue(receipt.delivery_id)
    processing_publisher.flush(10)  # in case it was gathered for a batch

    assert celery_app.control.purge() == 1


@pytest.mark.django_db(transaction=True)
def test_a_locked_connection_row_does_not_make_processing_skip_a_delivery(connection, make_event):
    """Only the delivery row is locked: a lock elsewhere must not hide it (SKIP LOCKED)."""
    receipt = delivery_store(**store_fields(connection, make_event()))
    locked, release = threading.Event(), threading.Event()

    def hold_connection_row() -> None:
        with transaction.atomic():
            # What an UPDATE of the connection (an admin renaming it) holds meanwhile.
            type(connection).objects.select_for_update(no_key=True).get(pk=connection.pk)
            locked.set()
            release.wait(10)
        db_connection.close()

    holder = threading.Thread(target=hold_connection_row)
    holder.start()
    try:
        assert locked.wait(10)
        state = delivery_process(receipt.delivery_id)
    finally:
        release.set()
        holder.join()

    assert state == DeliveryState.PROCESSED


# --- Management commands --------------------------------------------------------------


def test_spool_drain_command_stores_processes_and_summarises(connection, make_event):
    events = [make_event() for _ in range(3)]
    for event in events:
        spool_write(spooled_of(connection, event))
    spool_write(spooled_of(connection, events[0]))  # the vendor retried during the outage
    out, err = io.StringIO(), io.StringIO()

    call_command("spool_drain", "--process", stdout=out, stderr=err)

    assert "Stored 3, already stored 1, refused (reused one-time key) 0." in out.getvalue()
    assert "Processed: 3 processed" in out.getvalue()
    assert "0 deliveries remain in" in out.getvalue()
    assert "draining  4/4 deliveries" in err.getvalue()
    assert RecruitingEvent.objects.count() == 3

    again = io.StringIO()
    call_command("spool_drain", stdout=again)
    assert again.getvalue().startswith("The spool is empty")


def test_spool_drain_command_reports_what_it_kept_and_honours_the_limit(
    connection, make_event, _spool
):
    spool_write(spooled_of(connection, make_event(), connection_id=str(uuid.uuid4())))
    spool_write(spooled_of(connection, make_event()))
    spool_write(spooled_of(connection, make_event()))
    out = io.StringIO()

    call_command("spool_drain", "--limit", "2", stdout=out, stderr=io.StringIO())

    assert "Stored 1," in out.getvalue()
    assert "Kept 1 the database would not take" in out.getvalue()
    assert "2 deliveries remain in" in out.getvalue()
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("spool_drain", "--limit", "0")


def test_spool_drain_command_refuses_while_another_drain_runs(connection, make_event):
    spool_write(spooled_of(connection, make_event()))

    with spool_lock(), pytest.raises(CommandError, match="Another drain"):
        call_command("spool_drain", stdout=io.StringIO(), stderr=io.StringIO())

    assert len(spool_files()) == 1


@pytest.mark.django_db(transaction=True)
def test_spool_drain_command_keeps_the_spool_when_the_database_is_down(connection, make_event):
    spool_write(spooled_of(connection, make_event()))

    with database_unreachable(), pytest.raises(CommandError, match="database is unavailable"):
        call_command("spool_drain", stdout=io.StringIO(), stderr=io.StringIO())

    assert len(spool_files()) == 1
    call_command("spool_drain", stdout=io.StringIO(), stderr=io.StringIO())
    assert InboundDelivery.objects.count() == 1


def failed_delivery(connection, hook, make_event, stage: str, **kwargs) -> InboundDelivery:
    """A delivery that fails because its stage is not mapped."""
    event = make_event(stage={"name": stage, "category": None}, **kwargs)
    hook(connection, *signed_headers(connection, event))
    return InboundDelivery.objects.get(dedupe_key=event["id"])


def test_deliveries_replay_command_replays_the_failed_ones_chosen(
    connection, vendor_connection, hook, make_event
):
    first = failed_delivery(connection, hook, make_event, "Take-home Task")
    second = failed_delivery(connection, hook, make_event, "Reference Check")
    other = vendor_connection("generic", "another-secret-0123456789")
    elsewhere = failed_delivery(other, hook, make_event, "Take-home Task")
    StageMapping.objects.create(
        organization=connection.organization, stage_name="Take-home Task", category="interviewing"
    )
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "deliveries_replay",
        "--failed",
        "--connection",
        str(connection.pk),
        "--vendor",
        "generic",
        "--since",
        (timezone.now() - timedelta(hours=1)).isoformat(),
        stdout=out,
        stderr=err,
    )

    text = out.getvalue()
    assert "Replayed 2 deliveries:" in text
    assert re.search(r"processed\s+1\n", text)
    assert re.search(r"failed\s+1\n", text)
    assert "Still failing:" in text and "'Reference Check' is not mapped" in text
    assert "replaying  2/2 deliveries" in err.getvalue()
    states = dict(InboundDelivery.objects.values_list("pk", "state"))
    assert states[first.pk] == DeliveryState.PROCESSED
    assert states[second.pk] == DeliveryState.FAILED
    assert states[elsewhere.pk] == DeliveryState.FAILED  # another connection: untouched


def test_deliveries_replay_command_takes_ids_and_skips_processed_ones(connection, hook, make_event):
    failed = failed_delivery(connection, hook, make_event, "Take-home Task")
    hook(connection, *signed_headers(connection, make_event()))
    processed = InboundDelivery.objects.get(state=DeliveryState.PROCESSED)
    StageMapping.objects.create(
        organization=connection.organization, stage_name="Take-home Task", category="interviewing"
    )
    out = io.StringIO()

    call_command(
        "deliveries_replay", str(failed.pk), str(processed.pk), stdout=out, stderr=io.StringIO()
    )

    assert re.search(r"processed\s+1\n", out.getvalue())
    assert re.search(r"skipped \(not failed or ignored\)\s+1\n", out.getvalue())
    assert RecruitingEvent.objects.count() == 2  # the processed one was not recorded again


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "Give delivery ids, or --failed"),
        (["1", "--failed"], "not both"),
        (["1", "--vendor", "generic"], "--vendor only narrows --failed"),
        (["999999"], "No delivery with id 999999"),
        (["--failed", "--connection", "nope"], "must be a connection id"),
        (["--failed", "--since", "2026-11-01T00:00:00"], "with a time zone"),
        (["--failed", "--since", "yesterday"], "ISO 8601"),
    ],
)
def test_deliveries_replay_command_explains_bad_arguments(db, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("deliveries_replay", *arguments)


def test_deliveries_replay_command_dry_run_changes_nothing(connection, hook, make_event):
    delivery = failed_delivery(connection, hook, make_event, "Take-home Task")
    out = io.StringIO()

    call_command("deliveries_replay", "--failed", "--dry-run", stdout=out)

    assert out.getvalue().strip() == "1 deliveries would be replayed."
    delivery.refresh_from_db()
    assert delivery.attempts == 1
