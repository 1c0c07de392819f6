"""Celery: the beat schedule, and a real worker over the real Redis broker running the scan."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from failures.models import Failure
from failures.services import event_record
from failures.tasks import detection_scan_task, sessions_clear_task


def test_the_beat_schedule_runs_the_detection_scan_regularly():
    entries = [
        entry
        for entry in celery_app.conf.beat_schedule.values()
        if entry["task"] == "failures.detection_scan"
    ]

    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    assert 60 <= float(schedule) <= 24 * 3600
    # A scan that could not start before the next one is due is dropped, not stacked up.
    assert entries[0]["options"]["expires"] <= float(schedule)


def test_every_scheduled_task_is_registered():
    celery_app.loader.import_default_modules()
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks


def test_the_scan_task_is_acknowledged_late_and_requeued_if_the_worker_dies():
    assert detection_scan_task.name == "failures.detection_scan"
    assert detection_scan_task.acks_late is True
    assert detection_scan_task.reject_on_worker_lost is True
    assert sessions_clear_task.acks_late is True


def test_the_app_uses_the_configured_redis_broker():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert celery_app.conf.broker_url == settings.CELERY_BROKER_URL
    assert celery_app.conf.task_serializer == "json"
    assert celery_app.conf.accept_content == ["json"]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_a_breach_of_an_application_stuck_in_screening(org, connection):
    entered = (timezone.now() - timedelta(days=10)).replace(microsecond=0)
    event_record(
        connection=connection,
        payload={
            "id": "evt-stuck",
            "kind": "application.created",
            "occurred_at": entered.isoformat(),
            "application": {"id": "app-stuck", "candidate_id": "cand-stuck"},
            "job": {"id": "job-1"},
            "stage": {"name": "Application Review"},
        },
    )
    assert not Failure.objects.exists()
    celery_app.control.purge()  # nothing left over from an earlier run

    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        detection_scan_task.delay()
        deadline = time.monotonic() + 20
        while not Failure.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    failure = Failure.objects.get()
    assert failure.definition.code == "SCR-SLA-BREACH"
    assert failure.application.ats_id == "app-stuck"
    assert failure.occurred_at == entered + timedelta(days=7)
    assert failure.details["found_by"] == "scan"
