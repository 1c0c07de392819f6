"""The scan's batched recording writes exactly what recording one by one writes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from failures.detectors import detector_for
from failures.models import DefinitionException, Failure, Job
from failures.scan_recording import ExceptionBook, failures_record_batch
from failures.selectors import definition_versions_in_force
from failures.services import event_record, failure_record
from failures.signals import failures_recorded

pytestmark = pytest.mark.django_db

COMPARED = [
    "organization_id",
    "definition_id",
    "definition_version_id",
    "application_id",
    "candidate_id",
    "job_id",
    "dedupe_key",
    "occurred_at",
    "detected_at",
    "status",
    "status_changed_at",
    "status_changed_by_id",
    "status_reason",
    "details",
]
# history_date is when the row was written, which differs between the two runs by design.
HISTORY = [*COMPARED, "history_type", "history_change_reason", "history_user_id"]


def _stuck(connection, make_event, app: str, days: int) -> None:
    event_record(
        connection=connection,
        payload=make_event(
            "application.created",
            id=f"created-{app}",
            occurred_at=(timezone.now() - timedelta(days=days)).replace(microsecond=0).isoformat(),
            application={"id": app, "candidate_id": f"c-{app}"},
            job={"id": f"job-{app}"},
            stage={"name": "Application Review", "category": "screening"},
        ),
    )


def _rows() -> tuple[list[dict], list[dict]]:
    failures = list(Failure.objects.order_by("application_id").values(*COMPARED))
    history = list(Failure.history.order_by("application_id").values(*HISTORY))
    return failures, history


@pytest.mark.parametrize("exception", [False, True], ids=["open", "documented-exception"])
def test_batched_and_single_recording_write_the_same_rows(org, connection, make_event, exception):
    _stuck(connection, make_event, "s1", days=10)
    _stuck(connection, make_event, "s2", days=12)
    sla = next(
        v
        for v in definition_versions_in_force(at=timezone.now(), organization_id=org.pk)
        if v.definition.code == "SCR-SLA-BREACH"
    )
    if exception:
        DefinitionException.objects.create(
            definition=sla.definition,
            job=Job.objects.get(ats_id="job-s1"),
            reason="Hiring freeze",
            starts_at=timezone.now() - timedelta(days=30),
        )
    now = timezone.now()
    detections = list(detector_for(sla.detector).scan(sla, now))
    assert len(detections) == 2

    # One by one
    for detection in detections:
        failure_record(version=sla, detection=detection, detected_at=now)
    single = _rows()
    Failure.objects.all().delete()  # writes "-" history rows, removed next
    Failure.history.all().delete()

    # In one batch
    ids = failures_record_batch(
        version=sla,
        detections=detections,
        detected_at=now,
        exceptions=ExceptionBook(sla.definition_id),
    )

    assert len(ids) == 2
    assert _rows() == single
    assert not Failure.history.filter(history_date__isnull=True).exists()
    statuses = [row["status"] for row in single[0]]
    assert statuses == (["exempted", "open"] if exception else ["open", "open"])


def test_a_batch_skips_what_is_already_recorded_and_signals_after_commit(
    org, connection, make_event, django_capture_on_commit_callbacks
):
    _stuck(connection, make_event, "s3", days=10)
    sla = next(
        v
        for v in definition_versions_in_force(at=timezone.now(), organization_id=org.pk)
        if v.definition.code == "SCR-SLA-BREACH"
    )
    now = timezone.now()
    detections = list(detector_for(sla.detector).scan(sla, now))
    failure_record(version=sla, detection=detections[0], detected_at=now)
    sent = []
    failures_recorded.connect(lambda **kwargs: sent.append(kwargs["failure_ids"]), weak=False)

    with django_capture_on_commit_callbacks(execute=True):
        ids = failures_record_batch(
            version=sla,
            detections=detections,
            detected_at=now,
            exceptions=ExceptionBook(sla.definition_id),
        )

    assert ids == []
    assert Failure.objects.count() == 1
    assert sent == []
