"""Candidate drop-off, recruiter inactivity, and what re-opening an application does."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from failures.choices import FailureStatus, ReopenPolicy, VersionStatus
from failures.detectors import detector_for
from failures.models import DefinitionVersion, Failure, FailureDefinition
from failures.services import detection_scan, event_record

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _definition(org, code: str, category: str, detector: str, parameters: dict, **fields):
    definition = FailureDefinition.objects.create(
        organization=org, code=code, name=code, stage_category=category, kind="process"
    )
    version = DefinitionVersion(
        definition=definition,
        number=1,
        detector=detector,
        parameters=parameters,
        status=VersionStatus.APPROVED,
        effective_from=at("2026-01-01T00:00:00"),
        **fields,
    )
    version.full_clean()
    version.save()
    return version


def _event(connection, make_event, kind: str, app: str, when: str, stage=None, **extra):
    payload = make_event(
        kind,
        id=f"{app}-{kind}-{when}",
        occurred_at=when,
        application={"id": app, "candidate_id": f"c-{app}"},
        job={"id": "job-1"},
        **extra,
    )
    if stage is None:
        payload.pop("stage", None)
    else:
        payload["stage"] = {"name": stage}
    return event_record(connection=connection, payload=payload)


# --- Drop-off -----------------------------------------------------------------------------------


def test_a_withdrawal_at_the_stage_is_a_drop_off_naming_the_last_stage(org, connection, make_event):
    version = _definition(org, "SCR-DROP-OFF", "screening", "candidate_drop_off", {})
    _event(
        connection,
        make_event,
        "application.created",
        "d1",
        "2026-10-01T00:00:00Z",
        stage="Application Review",
    )
    _event(
        connection,
        make_event,
        "application.stage_changed",
        "d1",
        "2026-10-02T00:00:00Z",
        stage="Phone Screen",
    )

    _event(
        connection,
        make_event,
        "application.withdrawn",
        "d1",
        "2026-10-03T00:00:00Z",
        details={"reason": "Took another job"},
    )

    failure = Failure.objects.get(definition_version=version)
    assert failure.details["last_stage"] == "Phone Screen"
    assert failure.details["reason"] == "Took another job"
    assert failure.occurred_at == at("2026-10-03T00:00:00")


def test_a_withdrawal_at_another_stage_is_not_this_definitions_drop_off(
    org, connection, make_event
):
    _definition(org, "SCR-DROP-OFF", "screening", "candidate_drop_off", {})
    _event(
        connection, make_event, "application.created", "d2", "2026-10-01T00:00:00Z", stage="Onsite"
    )

    _event(connection, make_event, "application.withdrawn", "d2", "2026-10-03T00:00:00Z")

    assert not Failure.objects.filter(definition__code="SCR-DROP-OFF").exists()


def test_a_compliance_reason_withdrawal_is_counted_not_recorded(org, connection, make_event):
    version = _definition(
        org,
        "SCR-DROP-OFF",
        "screening",
        "candidate_drop_off",
        {},
        excluded_reasons=["Accommodation"],
    )
    _event(
        connection,
        make_event,
        "application.created",
        "d3",
        "2026-10-01T00:00:00Z",
        stage="Phone Screen",
    )

    _event(
        connection,
        make_event,
        "application.withdrawn",
        "d3",
        "2026-10-02T00:00:00Z",
        details={"reason": "accommodation"},
    )

    assert not Failure.objects.filter(definition_version=version).exists()
    assert version.compliance_exclusions.get().count == 1


def test_silence_for_n_days_is_a_drop_off_found_by_the_scan_once(org, connection, make_event):
    version = _definition(
        org, "SCR-GHOSTED", "screening", "candidate_drop_off", {"inactive_days": 10}
    )
    _event(
        connection,
        make_event,
        "application.created",
        "d4",
        "2026-10-01T00:00:00Z",
        stage="Phone Screen",
    )

    detection_scan(now=at("2026-10-11T00:00:00"))  # exactly 10 days: not yet
    assert not Failure.objects.filter(definition_version=version).exists()

    detection_scan(now=at("2026-10-11T00:00:01"))
    detection_scan(now=at("2026-10-20T00:00:00"))
    failure = Failure.objects.get(definition_version=version)
    assert failure.occurred_at == at("2026-10-11T00:00:00")
    assert failure.details == {
        "last_stage": "Phone Screen",
        "inactive_days": 10,
        "found_by": "inactivity",
    }


def test_drop_off_parameters_are_checked():
    with pytest.raises(ValidationError) as error:
        detector_for("candidate_drop_off").validate_parameters({"inactive_days": -1})
    assert "inactive_days" in str(error.value)


# --- Re-opening ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (ReopenPolicy.DISMISS, FailureStatus.DISMISSED),
        (ReopenPolicy.RESOLVE, FailureStatus.RESOLVED),
        (ReopenPolicy.KEEP, FailureStatus.OPEN),
    ],
)
def test_reopening_the_application_applies_the_versions_policy(
    org, connection, make_event, policy, expected
):
    version = _definition(
        org, "SCR-DROP-OFF", "screening", "candidate_drop_off", {}, on_reopen=policy
    )
    _event(
        connection,
        make_event,
        "application.created",
        "r1",
        "2026-10-01T00:00:00Z",
        stage="Phone Screen",
    )
    _event(connection, make_event, "application.withdrawn", "r1", "2026-10-02T00:00:00Z")
    assert Failure.objects.get(definition_version=version).status == FailureStatus.OPEN

    # The ATS moves the application back into the pipeline
    _event(
        connection,
        make_event,
        "application.stage_changed",
        "r1",
        "2026-10-04T00:00:00Z",
        stage="Phone Screen",
    )

    failure = Failure.objects.get(definition_version=version)
    assert failure.status == expected
    if expected != FailureStatus.OPEN:
        assert "re-opened" in failure.status_reason
        assert failure.history.first().history_change_reason.startswith("The ATS re-opened")


# --- Recruiter inactivity -----------------------------------------------------------------------


def test_no_recruiter_action_for_n_business_days_is_found_by_the_scan(org, connection, make_event):
    version = _definition(org, "REC-IDLE", "screening", "recruiter_inactivity", {"max_days": 2})
    # A recruiter acts on Thursday; the candidate writes on Friday (not a recruiter action)
    _event(
        connection,
        make_event,
        "application.created",
        "i1",
        "2026-10-01T09:00:00Z",
        stage="Phone Screen",
        actor={"id": "r-1", "role": "recruiter"},
    )
    _event(
        connection,
        make_event,
        "application.stage_changed",
        "i1",
        "2026-10-02T09:00:00Z",
        stage="Application Review",
        actor={"id": "cand", "role": "candidate"},
    )

    # Two business days from Thursday 09:00 end on Monday 09:00 (weekend left out)
    detection_scan(now=at("2026-10-05T08:59:59"))
    assert not Failure.objects.filter(definition_version=version).exists()

    detection_scan(now=at("2026-10-05T09:00:01"))
    detection_scan(now=at("2026-10-06T09:00:01"))
    failure = Failure.objects.get(definition_version=version)
    assert failure.occurred_at == at("2026-10-05T09:00:00")
    assert failure.dedupe_key == "recruiter-idle:2026-10-01T09:00:00+00:00"


def test_a_new_recruiter_action_starts_a_new_inactivity_clock(org, connection, make_event):
    version = _definition(
        org,
        "REC-IDLE",
        "screening",
        "recruiter_inactivity",
        {"max_days": 1, "unit": "calendar_days"},
    )
    _event(
        connection,
        make_event,
        "application.created",
        "i2",
        "2026-10-01T00:00:00Z",
        stage="Phone Screen",
        actor={"id": "r-1", "role": "recruiter"},
    )
    detection_scan(now=at("2026-10-03T00:00:00"))
    _event(
        connection,
        make_event,
        "application.stage_changed",
        "i2",
        "2026-10-04T00:00:00Z",
        stage="Onsite",
        actor={"id": "r-1", "role": "Recruiter"},
    )

    detection_scan(now=at("2026-10-05T00:00:01"))

    assert list(
        Failure.objects.filter(definition_version=version)
        .order_by("occurred_at")
        .values_list("occurred_at", flat=True)
    ) == [at("2026-10-02T00:00:00"), at("2026-10-05T00:00:00")]


# --- Offer declined filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "seniority", "reason", "recorded"),
    [
        ({}, None, None, True),
        ({"min_seniority": 5}, 6, None, True),
        ({"min_seniority": 5}, 5, None, True),
        ({"min_seniority": 5}, 4, None, False),
        ({"min_seniority": 5}, None, None, False),
        ({"reasons": ["Compensation"]}, None, "compensation", True),
        ({"reasons": ["Compensation"]}, None, "Location", False),
        ({"reasons": ["Compensation"]}, None, None, False),
    ],
)
def test_offer_declined_can_be_limited_by_seniority_and_reason(
    org, connection, make_event, parameters, seniority, reason, recorded
):
    version = _definition(org, "OFR-SENIOR", "offer", "offer_declined", parameters)
    job = {"id": "job-s", "seniority": seniority} if seniority is not None else {"id": "job-s"}
    payload = make_event(
        "offer.declined",
        occurred_at="2026-10-01T00:00:00Z",
        application={"id": "o1", "candidate_id": "c-o1"},
        job=job,
        stage={"name": "Offer"},
        details={"reason": reason} if reason else {},
    )

    event_record(connection=connection, payload=payload)

    assert Failure.objects.filter(definition_version=version).exists() is recorded


def test_offer_parameters_are_checked():
    detector = detector_for("offer_declined")
    for bad in ({"min_seniority": 21}, {"reasons": "Compensation"}, {"reasons": [""]}):
        with pytest.raises(ValidationError):
            detector.validate_parameters(bad)
    assert detector.validate_parameters({}) == {"min_seniority": 0, "reasons": []}
