"""Detection through the services: offer declines on events, screening SLA on events and scans."""

from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.utils import timezone

from failures.choices import ApplicationStatus, DetectorKind, StageCategory, VersionStatus
from failures.models import (
    Application,
    AtsConnection,
    DefinitionVersion,
    Failure,
    Organization,
    StageTransition,
)
from failures.services import detection_scan, event_record
from failures.signals import failures_recorded
from tests.factories import AtsConnectionFactory

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
LIMIT = 7 * DAY  # SCR-SLA-BREACH max_days of the standard definitions

_event_ids = count(1)


@pytest.fixture
def T() -> datetime:
    """When the application entered screening: well in the past, on a whole second."""
    return (timezone.now() - 60 * DAY).replace(microsecond=0)


def send(
    connection: AtsConnection,
    kind: str,
    at: datetime,
    *,
    stage: str | None = None,
    category: str | None = None,
    app: str = "app-1",
    candidate: str = "cand-1",
    job: str = "job-1",
    event_id: str | None = None,
    **extra: Any,
):
    """Record one canonical event through the service every channel uses."""
    payload: dict[str, Any] = {
        "id": event_id or f"det-{next(_event_ids)}",
        "kind": kind,
        "occurred_at": at.isoformat(),
        "application": {"id": app, "candidate_id": candidate},
        "job": {"id": job, "title": "Backend Engineer"},
        **extra,
    }
    if stage is not None:
        payload["stage"] = {"name": stage}
        if category is not None:
            payload["stage"]["category"] = category
    return event_record(connection=connection, payload=payload)


def version_of(organization: Organization, code: str, number: int = 1) -> DefinitionVersion:
    return DefinitionVersion.objects.get(
        definition__organization=organization, definition__code=code, number=number
    )


def sla_failures(organization: Organization):
    return Failure.objects.filter(organization=organization, definition__code="SCR-SLA-BREACH")


def enter_screening(connection: AtsConnection, at: datetime, **kwargs: Any):
    return send(connection, "application.created", at, stage="Application Review", **kwargs)


# --- OFR-DECLINED ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_offer_declined_records_one_failure_with_the_version_in_force(org, connection):
    definition = version_of(org, "OFR-DECLINED").definition
    now = timezone.now()
    v2 = DefinitionVersion.objects.create(
        definition=definition,
        number=2,
        detector=DetectorKind.OFFER_DECLINED,
        parameters={},
        status=VersionStatus.APPROVED,
        effective_from=now - 30 * DAY,
    )
    DefinitionVersion.objects.create(  # approved, but not in force yet
        definition=definition,
        number=3,
        detector=DetectorKind.OFFER_DECLINED,
        parameters={},
        status=VersionStatus.APPROVED,
        effective_from=now + 30 * DAY,
    )
    declined_at = (now - 2 * DAY).replace(microsecond=0)
    send(connection, "offer.extended", declined_at - DAY, stage="Offer")

    result = send(
        connection,
        "offer.declined",
        declined_at,
        stage="Offer",
        event_id="decline-1",
        details={"reason": "Compensation"},
    )

    failure = Failure.objects.get()
    assert result.created is True
    assert result.failures == [failure]
    application = Application.objects.get(ats_id="app-1")
    assert failure.definition == definition
    assert failure.definition.code == "OFR-DECLINED"
    assert failure.definition_version == v2
    assert failure.organization == org
    assert failure.application == application
    assert failure.candidate == application.candidate
    assert failure.job == application.job
    assert failure.dedupe_key == "event:decline-1"
    assert failure.occurred_at == declined_at
    assert failure.details == {"event_id": "decline-1", "reason": "Compensation"}
    assert failure.status == "open"


@pytest.mark.django_db
def test_replaying_offer_declined_records_nothing_new(org, connection, T):
    first = send(connection, "offer.declined", T, stage="Offer", event_id="decline-1")
    before = Failure.objects.get()

    replay = send(connection, "offer.declined", T, stage="Offer", event_id="decline-1")

    assert first.created is True
    assert replay.created is False
    assert replay.failures == []
    assert replay.event == first.event
    assert list(Failure.objects.all()) == [before]


@pytest.mark.django_db
def test_other_events_do_not_record_offer_declined(org, connection, T):
    send(connection, "offer.extended", T, stage="Offer")
    send(connection, "offer.accepted", T + DAY, stage="Offer")
    send(connection, "application.hired", T + 2 * DAY)

    assert not Failure.objects.exists()


# --- SCR-SLA-BREACH by the scan -------------------------------------------------------------


@pytest.mark.django_db
def test_exactly_max_days_in_screening_is_on_time(org, connection, T):
    enter_screening(connection, T)

    result = detection_scan(now=T + LIMIT)

    assert result.recorded == 0
    assert not sla_failures(org).exists()


@pytest.mark.django_db
def test_one_second_over_max_days_is_a_breach_dated_at_the_limit(org, connection, T):
    enter_screening(connection, T)

    result = detection_scan(now=T + LIMIT + SECOND)

    failure = sla_failures(org).get()
    assert result.recorded == 1
    assert result.codes == {"SCR-SLA-BREACH": 1}
    assert failure.occurred_at == T + LIMIT
    assert failure.detected_at == T + LIMIT + SECOND
    assert failure.definition_version == version_of(org, "SCR-SLA-BREACH")
    assert failure.application.ats_id == "app-1"
    assert failure.dedupe_key == f"screening:{T.isoformat()}"
    assert failure.details["found_by"] == "scan"
    assert failure.details["max_days"] == 7


@pytest.mark.django_db
def test_scanning_twice_records_the_breach_once(org, connection, T):
    enter_screening(connection, T)

    first = detection_scan(now=T + LIMIT + SECOND)
    second = detection_scan(now=T + LIMIT + SECOND)
    later = detection_scan(now=T + 30 * DAY)

    assert (first.recorded, second.recorded, later.recorded) == (1, 0, 0)
    assert sla_failures(org).count() == 1


# --- SCR-SLA-BREACH on leaving screening ----------------------------------------------------


@pytest.mark.django_db
def test_leaving_screening_late_records_the_breach_on_the_transition(org, connection, T):
    enter_screening(connection, T)

    result = send(connection, "application.stage_changed", T + 8 * DAY, stage="Onsite")

    failure = sla_failures(org).get()
    assert result.failures == [failure]
    assert failure.occurred_at == T + LIMIT
    assert failure.dedupe_key == f"screening:{T.isoformat()}"
    assert failure.details["found_by"] == "transition"
    assert failure.details["left_at"] == (T + 8 * DAY).isoformat()
    assert failure.details["category_entered_at"] == T.isoformat()
    assert failure.definition_version == version_of(org, "SCR-SLA-BREACH")

    assert detection_scan(now=T + 30 * DAY).recorded == 0
    assert sla_failures(org).count() == 1


@pytest.mark.django_db
def test_a_breach_found_by_the_scan_is_not_recorded_again_on_leaving(org, connection, T):
    enter_screening(connection, T)
    detection_scan(now=T + LIMIT + SECOND)

    result = send(connection, "application.stage_changed", T + 9 * DAY, stage="Onsite")

    assert result.failures == []
    failure = sla_failures(org).get()
    assert failure.details["found_by"] == "scan"


@pytest.mark.django_db
def test_leaving_screening_at_exactly_max_days_is_on_time(org, connection, T):
    enter_screening(connection, T)

    result = send(connection, "application.stage_changed", T + LIMIT, stage="Onsite")

    assert result.failures == []
    assert detection_scan(now=T + 30 * DAY).recorded == 0
    assert not sla_failures(org).exists()


@pytest.mark.django_db
def test_moving_between_screening_stages_does_not_restart_the_clock(org, connection, T):
    enter_screening(connection, T)

    send(connection, "application.stage_changed", T + 3 * DAY, stage="Phone Screen")

    application = Application.objects.get(ats_id="app-1")
    assert application.current_stage == "Phone Screen"
    assert application.stage_entered_at == T + 3 * DAY
    assert application.category_entered_at == T
    result = detection_scan(now=T + LIMIT + SECOND)
    assert result.recorded == 1
    assert sla_failures(org).get().occurred_at == T + LIMIT


@pytest.mark.django_db
def test_leaving_after_moving_within_screening_counts_from_the_first_stage(org, connection, T):
    enter_screening(connection, T)
    send(connection, "application.stage_changed", T + 5 * DAY, stage="Phone Screen")

    # 3 days in Phone Screen, but 8 in screening.
    result = send(connection, "application.stage_changed", T + 8 * DAY, stage="Onsite")

    assert len(result.failures) == 1
    assert result.failures[0].occurred_at == T + LIMIT


@pytest.mark.django_db
def test_rejection_after_ten_days_in_screening_is_a_breach(org, connection, T):
    enter_screening(connection, T)

    result = send(connection, "application.rejected", T + 10 * DAY)

    failure = sla_failures(org).get()
    assert result.failures == [failure]
    assert failure.occurred_at == T + LIMIT
    assert failure.details["found_by"] == "transition"
    application = Application.objects.get(ats_id="app-1")
    assert application.status == ApplicationStatus.REJECTED
    assert application.stage_category == StageCategory.CLOSED


@pytest.mark.django_db
def test_rejection_within_the_limit_is_not_a_breach(org, connection, T):
    enter_screening(connection, T)

    result = send(connection, "application.rejected", T + 6 * DAY)

    assert result.failures == []
    assert detection_scan(now=T + 30 * DAY).recorded == 0


@pytest.mark.django_db
def test_the_scan_ignores_applications_that_are_not_waiting_in_screening(org, connection, T):
    for app in ("app-interviewing", "app-rejected", "app-withdrawn", "app-waiting"):
        enter_screening(connection, T, app=app)
    send(connection, "application.stage_changed", T + DAY, stage="Onsite", app="app-interviewing")
    send(connection, "application.rejected", T + DAY, app="app-rejected")
    send(connection, "application.withdrawn", T + DAY, app="app-withdrawn")

    result = detection_scan(now=T + 30 * DAY)

    assert result.recorded == 1
    assert [f.application.ats_id for f in sla_failures(org)] == ["app-waiting"]


@pytest.mark.django_db
def test_a_second_stay_in_screening_gets_its_own_breach(org, connection, T):
    enter_screening(connection, T)
    first = send(connection, "application.stage_changed", T + 8 * DAY, stage="Onsite")
    back_at = T + 10 * DAY
    send(connection, "application.stage_changed", back_at, stage="Phone Screen")

    assert detection_scan(now=back_at + LIMIT).recorded == 0
    result = detection_scan(now=back_at + LIMIT + SECOND)
    again = detection_scan(now=back_at + 20 * DAY)

    assert len(first.failures) == 1
    assert (result.recorded, again.recorded) == (1, 0)
    breaches = sorted(sla_failures(org), key=lambda f: f.occurred_at)
    assert [(f.occurred_at, f.dedupe_key) for f in breaches] == [
        (T + LIMIT, f"screening:{T.isoformat()}"),
        (back_at + LIMIT, f"screening:{back_at.isoformat()}"),
    ]


@pytest.mark.django_db
def test_a_late_second_stay_is_breached_even_when_the_first_was_on_time(org, connection, T):
    enter_screening(connection, T)
    send(connection, "application.stage_changed", T + 2 * DAY, stage="Onsite")
    back_at = T + 5 * DAY
    send(connection, "application.stage_changed", back_at, stage="Application Review")

    result = send(connection, "application.stage_changed", back_at + 9 * DAY, stage="Onsite")

    failure = sla_failures(org).get()
    assert result.failures == [failure]
    assert failure.occurred_at == back_at + LIMIT


@pytest.mark.django_db
def test_a_rejected_application_moved_back_to_screening_is_watched_again(org, connection, T):
    enter_screening(connection, T)
    send(connection, "application.rejected", T + DAY)
    reopened_at = T + 3 * DAY
    send(connection, "application.stage_changed", reopened_at, stage="Phone Screen")

    application = Application.objects.get(ats_id="app-1")
    assert application.status == ApplicationStatus.ACTIVE
    assert application.closed_at is None
    assert application.category_entered_at == reopened_at
    assert detection_scan(now=reopened_at + LIMIT + SECOND).recorded == 1
    assert sla_failures(org).get().occurred_at == reopened_at + LIMIT


# --- Tenancy and definition lifecycle ------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_definitions_are_not_applied(org, other_org, connection, T):
    # other_org tightens its own screening SLA to one day.
    other_sla = version_of(other_org, "SCR-SLA-BREACH").definition
    DefinitionVersion.objects.create(
        definition=other_sla,
        number=2,
        detector=DetectorKind.STAGE_SLA,
        parameters={"max_days": 1},
        status=VersionStatus.APPROVED,
        effective_from=T - 30 * DAY,
    )
    other_connection = AtsConnectionFactory(organization=other_org)
    enter_screening(connection, T)
    enter_screening(other_connection, T)

    result = detection_scan(now=T + 3 * DAY)

    assert result.recorded == 1
    failure = Failure.objects.get()
    assert failure.organization == other_org
    assert failure.definition == other_sla
    assert failure.application.organization == other_org
    assert not Failure.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_an_offer_declined_in_one_organization_uses_only_its_definition(
    org, other_org, connection, T
):
    send(connection, "offer.declined", T, stage="Offer")

    failure = Failure.objects.get()
    assert failure.organization == org
    assert failure.definition.organization == org
    assert failure.definition_version.definition.organization == org


@pytest.mark.django_db
def test_the_scan_can_be_limited_to_one_organization(org, other_org, connection, T):
    other_connection = AtsConnectionFactory(organization=other_org)
    enter_screening(connection, T)
    enter_screening(other_connection, T)

    result = detection_scan(now=T + 10 * DAY, organization=org)

    assert result.recorded == 1
    assert Failure.objects.get().organization == org


@pytest.mark.django_db
@pytest.mark.parametrize("status", [VersionStatus.RETIRED, VersionStatus.DRAFT])
def test_a_version_that_is_not_approved_does_not_detect(org, connection, T, status):
    # Retire every approved version; for the draft case, leave only unapproved drafts
    DefinitionVersion.objects.filter(definition__organization=org).update(
        status=VersionStatus.RETIRED, retired_at=T
    )
    if status == VersionStatus.DRAFT:
        for definition in org.definitions.all():
            first = definition.versions.get(number=1)
            DefinitionVersion.objects.create(
                definition=definition,
                number=2,
                detector=first.detector,
                parameters=first.parameters,
                status=VersionStatus.DRAFT,
            )
    enter_screening(connection, T)

    on_leave = send(connection, "application.stage_changed", T + 9 * DAY, stage="Onsite")
    enter_screening(connection, T, app="app-2", candidate="cand-2")
    declined = send(connection, "offer.declined", T + DAY, stage="Offer", app="app-3")
    scan = detection_scan(now=T + 30 * DAY)

    assert on_leave.failures == []
    assert declined.failures == []
    assert scan.recorded == 0
    assert scan.versions == 0
    assert not Failure.objects.exists()


@pytest.mark.django_db
def test_a_draft_version_with_a_stricter_limit_is_not_applied(org, connection, T):
    sla = version_of(org, "SCR-SLA-BREACH").definition
    DefinitionVersion.objects.create(
        definition=sla,
        number=2,
        detector=DetectorKind.STAGE_SLA,
        parameters={"max_days": 1},
        status=VersionStatus.DRAFT,
    )
    enter_screening(connection, T)

    assert detection_scan(now=T + 3 * DAY).recorded == 0
    assert detection_scan(now=T + LIMIT + SECOND).recorded == 1
    assert sla_failures(org).get().definition_version.number == 1


@pytest.mark.django_db
def test_a_retired_version_gives_way_to_no_detection_while_a_newer_one_detects(org, connection, T):
    v1 = version_of(org, "SCR-SLA-BREACH")
    v1.status = VersionStatus.RETIRED
    v1.save()
    v2 = DefinitionVersion.objects.create(
        definition=v1.definition,
        number=2,
        detector=DetectorKind.STAGE_SLA,
        parameters={"max_days": 3},
        status=VersionStatus.APPROVED,
        effective_from=T - 30 * DAY,
    )
    enter_screening(connection, T)

    result = detection_scan(now=T + 4 * DAY)

    assert result.recorded == 1
    failure = sla_failures(org).get()
    assert failure.definition_version == v2
    assert failure.occurred_at == T + 3 * DAY


# --- Out-of-order events -------------------------------------------------------------------


@pytest.mark.django_db
def test_an_older_stage_event_arriving_late_does_not_move_the_stage_back(org, connection, T):
    enter_screening(connection, T)
    send(connection, "application.stage_changed", T + 5 * DAY, stage="Onsite")

    result = send(connection, "application.stage_changed", T + 2 * DAY, stage="Phone Screen")

    application = Application.objects.get(ats_id="app-1")
    assert result.created is True
    assert application.current_stage == "Onsite"
    assert application.stage_category == StageCategory.INTERVIEWING
    assert application.stage_entered_at == T + 5 * DAY
    assert application.category_entered_at == T + 5 * DAY
    assert application.last_event_at == T + 5 * DAY
    # Kept in the history all the same.
    assert StageTransition.objects.filter(
        application=application, to_stage="Phone Screen", occurred_at=T + 2 * DAY
    ).exists()
    assert detection_scan(now=T + 30 * DAY).recorded == 0
    assert not Failure.objects.exists()


@pytest.mark.django_db
def test_an_older_rejection_arriving_late_does_not_close_an_application_that_moved_on(
    org, connection, T
):
    enter_screening(connection, T)
    send(connection, "application.stage_changed", T + 5 * DAY, stage="Onsite")

    send(connection, "application.rejected", T + 2 * DAY)

    application = Application.objects.get(ats_id="app-1")
    assert application.current_stage == "Onsite"
    assert application.stage_category == StageCategory.INTERVIEWING
    assert application.status == ApplicationStatus.ACTIVE
    assert application.closed_at is None


@pytest.mark.django_db
def test_an_older_stage_event_arriving_late_does_not_reopen_a_closed_application(
    org, connection, T
):
    enter_screening(connection, T)
    send(connection, "application.rejected", T + 5 * DAY)

    send(connection, "application.stage_changed", T + 2 * DAY, stage="Phone Screen")

    application = Application.objects.get(ats_id="app-1")
    assert application.stage_category == StageCategory.CLOSED
    assert application.status == ApplicationStatus.REJECTED
    assert application.closed_at == T + 5 * DAY


# --- The failures_recorded signal ------------------------------------------------------------


@pytest.fixture
def received():
    """The failure_ids lists failures_recorded was sent with, in order."""
    calls: list[list[int]] = []

    def receiver(sender, failure_ids, **kwargs):
        calls.append(list(failure_ids))

    failures_recorded.connect(receiver, dispatch_uid="test-detectors-receiver")
    yield calls
    failures_recorded.disconnect(dispatch_uid="test-detectors-receiver")


@pytest.mark.django_db
def test_failures_recorded_is_sent_only_after_commit(
    org, connection, T, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(connection, "offer.declined", T, stage="Offer")
        assert Failure.objects.count() == 1
        assert received == []

    assert received == []  # not committed yet: nothing sent
    for callback in callbacks:
        callback()
    assert received == [[Failure.objects.get().pk]]


@pytest.mark.django_db
def test_failures_recorded_is_sent_once_per_new_failure_and_not_for_repeats(
    org, connection, T, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(connection, "offer.declined", T, stage="Offer", event_id="decline-1")
        send(connection, "offer.declined", T, stage="Offer", event_id="decline-1")
        enter_screening(connection, T, app="app-2", candidate="cand-2")
        detection_scan(now=T + 10 * DAY)
        detection_scan(now=T + 11 * DAY)

    offer = Failure.objects.get(definition__code="OFR-DECLINED")
    breach = Failure.objects.get(definition__code="SCR-SLA-BREACH")
    assert received == [[offer.pk], [breach.pk]]
