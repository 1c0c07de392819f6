"""Scheduling missed, feedback overdue, approval missing, integration errors, bad hires."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from failures.choices import VersionStatus
from failures.detectors import detector_for
from failures.models import DefinitionVersion, Failure, FailureDefinition
from failures.services import detection_scan, event_record

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _version(org, code, category, detector, parameters, kind="process"):
    definition = FailureDefinition.objects.create(
        organization=org, code=code, name=code, stage_category=category, kind=kind
    )
    version = DefinitionVersion(
        definition=definition,
        number=1,
        detector=detector,
        parameters=parameters,
        status=VersionStatus.APPROVED,
        effective_from=at("2026-01-01T00:00:00"),
    )
    version.full_clean()
    version.save()
    return version


@pytest.fixture
def send(connection, make_event):
    """send(kind, when, app="a1", stage=None, interview=None, details=None) -> result."""
    counter = iter(range(1, 10**6))

    def post(kind, when, app="a1", stage=None, interview=None, details=None):
        payload = make_event(
            kind,
            id=f"e{next(counter)}",
            occurred_at=when,
            application={"id": app, "candidate_id": f"c-{app}"},
            job={"id": "job-1"},
            details=details or {},
        )
        if stage:
            payload["stage"] = {"name": stage}
        else:
            payload.pop("stage")
        if interview:
            payload["interview"] = interview
        return event_record(connection=connection, payload=payload)

    return post


def failures_of(version):
    return list(
        Failure.objects.filter(definition_version=version)
        .order_by("occurred_at")
        .values_list("dedupe_key", "occurred_at")
    )


# --- Scheduling missed ------------------------------------------------------------------------


def test_no_interview_scheduled_within_the_working_hours_is_found_by_the_scan(org, send):
    version = _version(
        org, "INT-UNSCHEDULED", "interviewing", "scheduling_missed", {"max_hours": 24}
    )
    send("application.created", "2026-10-02T12:00:00Z", stage="Onsite")  # Friday noon
    send("application.created", "2026-10-02T12:00:00Z", app="a2", stage="Onsite")
    send(
        "interview.scheduled",
        "2026-10-05T09:00:00Z",
        app="a2",
        interview={"id": "i-a2", "scheduled_for": "2026-10-09T09:00:00Z"},
    )

    detection_scan(now=at("2026-10-05T11:59:59"))  # 24 working hours end Monday noon
    assert failures_of(version) == []

    detection_scan(now=at("2026-10-05T12:00:01"))
    detection_scan(now=at("2026-10-06T12:00:01"))
    assert failures_of(version) == [
        ("unscheduled:2026-10-02T12:00:00+00:00", at("2026-10-05T12:00:00"))
    ]
    assert Failure.objects.get(definition_version=version).application.ats_id == "a1"


def test_scheduling_late_is_recorded_when_the_interview_is_finally_scheduled(org, send):
    version = _version(
        org,
        "INT-UNSCHEDULED",
        "interviewing",
        "scheduling_missed",
        {"max_hours": 24, "unit": "calendar_days"},
    )
    send("application.created", "2026-10-01T00:00:00Z", stage="Onsite")

    send("interview.scheduled", "2026-10-03T00:00:00Z", interview={"id": "i1"})
    detection_scan(now=at("2026-10-10T00:00:00"))

    assert failures_of(version) == [
        ("unscheduled:2026-10-01T00:00:00+00:00", at("2026-10-02T00:00:00"))
    ]


def test_a_cancelled_interview_not_rescheduled_in_time_is_a_failure(org, send):
    version = _version(
        org,
        "INT-UNSCHEDULED",
        "interviewing",
        "scheduling_missed",
        {"max_hours": 24, "unit": "calendar_days"},
    )
    send("application.created", "2026-10-01T00:00:00Z", stage="Onsite")
    send("interview.scheduled", "2026-10-01T06:00:00Z", interview={"id": "i1"})
    send("interview.cancelled", "2026-10-01T08:00:00Z", interview={"id": "i1"})
    send("application.created", "2026-10-01T00:00:00Z", app="a2", stage="Onsite")
    send("interview.scheduled", "2026-10-01T06:00:00Z", app="a2", interview={"id": "i2"})
    send("interview.cancelled", "2026-10-01T08:00:00Z", app="a2", interview={"id": "i2"})
    send("interview.scheduled", "2026-10-01T20:00:00Z", app="a2", interview={"id": "i2"})

    detection_scan(now=at("2026-10-03T00:00:00"))

    assert failures_of(version) == [("cancelled:i1", at("2026-10-02T08:00:00"))]


def test_a_no_show_is_a_failure_at_once(org, send):
    version = _version(
        org, "INT-UNSCHEDULED", "interviewing", "scheduling_missed", {"max_hours": 24}
    )
    send("application.created", "2026-10-01T00:00:00Z", stage="Onsite")
    send("interview.scheduled", "2026-10-01T01:00:00Z", interview={"id": "i1"})

    send("interview.no_show", "2026-10-02T09:00:00Z", interview={"id": "i1"})

    assert failures_of(version) == [("no-show:i1", at("2026-10-02T09:00:00"))]


# --- Feedback overdue --------------------------------------------------------------------------


def test_a_scorecard_missing_after_n_hours_is_overdue(org, send):
    version = _version(org, "INT-FEEDBACK", "interviewing", "feedback_overdue", {"max_hours": 48})
    send("application.created", "2026-10-01T00:00:00Z", stage="Onsite")
    send("interview.scheduled", "2026-10-01T01:00:00Z", interview={"id": "i1"})
    send("interview.scheduled", "2026-10-01T01:00:00Z", interview={"id": "i2"})
    send("interview.completed", "2026-10-02T10:00:00Z", interview={"id": "i1"})
    send("interview.completed", "2026-10-02T10:00:00Z", interview={"id": "i2"})
    send("scorecard.submitted", "2026-10-03T10:00:00Z", interview={"id": "i2"})

    detection_scan(now=at("2026-10-04T10:00:00"))  # exactly 48 hours: on time
    assert failures_of(version) == []

    detection_scan(now=at("2026-10-04T10:00:01"))
    detection_scan(now=at("2026-10-09T00:00:00"))
    assert failures_of(version) == [("scorecard:i1", at("2026-10-04T10:00:00"))]


def test_a_late_scorecard_is_recorded_when_it_arrives(org, send):
    version = _version(org, "INT-FEEDBACK", "interviewing", "feedback_overdue", {"max_hours": 24})
    send("application.created", "2026-10-01T00:00:00Z", stage="Onsite")
    send("interview.completed", "2026-10-01T10:00:00Z", interview={"id": "i1"})

    send("scorecard.submitted", "2026-10-03T10:00:00Z", interview={"id": "i1"})
    detection_scan(now=at("2026-10-09T00:00:00"))

    assert failures_of(version) == [("scorecard:i1", at("2026-10-02T10:00:00"))]


# --- Approval missing -----------------------------------------------------------------------------


def test_an_offer_extended_without_prior_approval_is_a_failure(org, send):
    version = _version(org, "OFR-UNAPPROVED", "offer", "approval_missing", {})
    send("application.created", "2026-10-01T00:00:00Z", app="ok", stage="Offer")
    send("offer.approved", "2026-10-02T00:00:00Z", app="ok")
    send("offer.extended", "2026-10-03T00:00:00Z", app="ok")
    send("application.created", "2026-10-01T00:00:00Z", app="late", stage="Offer")
    send("offer.extended", "2026-10-03T00:00:00Z", app="late")
    send("offer.approved", "2026-10-04T00:00:00Z", app="late")

    assert [f[1] for f in failures_of(version)] == [at("2026-10-03T00:00:00")]
    assert Failure.objects.get(definition_version=version).application.ats_id == "late"


# --- Integration errors ------------------------------------------------------------------------


def test_only_persistent_integration_errors_become_failures(org, send):
    version = _version(
        org, "BGC-ERROR", "onboarding", "integration_error", {"window_minutes": 60, "min_errors": 3}
    )
    check = {"system": "checkr"}
    send("application.created", "2026-10-01T00:00:00Z", app="p", stage="Offer")
    send("application.created", "2026-10-01T00:00:00Z", app="r", stage="Offer")
    send("application.created", "2026-10-01T00:00:00Z", app="f", stage="Offer")
    for minute in ("00", "10", "20"):
        send("integration.error", f"2026-10-02T09:{minute}:00Z", app="p", details=check)
        send("integration.error", f"2026-10-02T09:{minute}:00Z", app="r", details=check)
    send("integration.recovered", "2026-10-02T09:30:00Z", app="r", details=check)
    for minute in ("00", "10"):  # fewer than three in the window: transient
        send("integration.error", f"2026-10-02T09:{minute}:00Z", app="f", details=check)

    detection_scan(now=at("2026-10-02T09:59:00"))  # window still open: not judged yet
    assert failures_of(version) == []

    detection_scan(now=at("2026-10-02T12:00:00"))
    detection_scan(now=at("2026-10-02T13:00:00"))
    failure = Failure.objects.get(definition_version=version)
    assert failure.application.ats_id == "p"
    assert failure.occurred_at == at("2026-10-02T09:20:00")
    assert failure.details["system"] == "checkr"
    assert failure.dedupe_key == "integration:checkr:2026-10-02T09:00:00+00:00"


# --- Bad hire ----------------------------------------------------------------------------------


def test_a_hire_leaving_within_n_days_is_a_bad_hire(org, send):
    version = _version(
        org, "HIRE-EARLY-EXIT", "onboarding", "bad_hire", {"max_days": 90}, kind="outcome"
    )
    send("application.created", "2026-06-01T00:00:00Z", app="short", stage="Offer")
    send("application.hired", "2026-06-10T00:00:00Z", app="short")
    send("employment.ended", "2026-08-01T00:00:00Z", app="short", details={"reason": "Resigned"})
    send("application.created", "2026-01-01T00:00:00Z", app="long", stage="Offer")
    send("application.hired", "2026-01-10T00:00:00Z", app="long")
    send("employment.ended", "2026-08-01T00:00:00Z", app="long")

    failure = Failure.objects.get(definition_version=version)
    assert failure.application.ats_id == "short"
    assert failure.details == {"days_employed": 52, "found_by": "event", "reason": "Resigned"}


@pytest.mark.parametrize(
    ("detector", "parameters", "named"),
    [
        ("scheduling_missed", {}, "max_hours"),
        ("scheduling_missed", {"max_hours": 0}, "max_hours"),
        ("feedback_overdue", {"max_hours": 5, "unit": "fortnights"}, "unit"),
        ("integration_error", {"min_errors": 0}, "min_errors"),
        ("integration_error", {"window_minutes": 20000}, "window_minutes"),
        ("bad_hire", {"max_days": 731}, "max_days"),
        ("approval_missing", {"anything": 1}, "anything"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(detector, parameters, named):
    with pytest.raises(ValidationError) as error:
        detector_for(detector).validate_parameters(parameters)
    assert named in str(error.value)


def test_an_interview_event_without_its_interview_is_refused(send):
    from failures.events import EventInvalid

    with pytest.raises(EventInvalid) as error:
        send("interview.scheduled", "2026-10-01T00:00:00Z")
    assert error.value.field == "interview"
