"""Business days, holidays, time zones and holds: the working calendar and the SLA detector."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from failures.business_days import DAY, MONDAY_TO_FRIDAY, Hold, WorkingCalendar
from failures.choices import VersionStatus
from failures.detectors import StageSlaDetector
from failures.models import DefinitionVersion, Failure, Region
from failures.services import detection_scan, event_record


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


WEEKDAYS = WorkingCalendar(working_weekdays=MONDAY_TO_FRIDAY)

# --- The calendar ---------------------------------------------------------------------------


def test_calendar_days_count_plain_elapsed_time():
    plain = WorkingCalendar()
    start = at("2026-10-02T12:00:00")  # a Friday

    assert plain.working_seconds(start, start + timedelta(days=3)) == 3 * DAY
    assert plain.add_working_time(start, DAY) == at("2026-10-03T12:00:00")
    assert plain.cutoff(at("2026-10-05T12:00:00"), DAY) == at("2026-10-04T12:00:00")


def test_a_business_day_from_friday_noon_ends_on_monday_noon():
    friday_noon = at("2026-10-02T12:00:00")

    assert WEEKDAYS.add_working_time(friday_noon, DAY) == at("2026-10-05T12:00:00")
    assert WEEKDAYS.working_seconds(friday_noon, at("2026-10-05T12:00:00")) == DAY
    assert WEEKDAYS.working_seconds(at("2026-10-03T00:00:00"), at("2026-10-05T00:00:00")) == 0


def test_the_cutoff_separates_breached_from_on_time_starts():
    end = at("2026-10-05T12:00:00")  # Monday noon
    cutoff = WEEKDAYS.cutoff(end, DAY)

    assert cutoff == at("2026-10-02T12:00:00")
    assert WEEKDAYS.working_seconds(cutoff, end) == DAY  # exactly the limit: on time
    assert WEEKDAYS.working_seconds(cutoff - timedelta(seconds=1), end) > DAY


def test_a_cutoff_on_a_day_boundary_reaches_back_over_the_weekend():
    # Monday counts whole; any start during the weekend ties with Monday 00:00
    end = at("2026-10-06T00:00:00")  # Tuesday 00:00
    cutoff = WEEKDAYS.cutoff(end, DAY)

    assert cutoff == at("2026-10-03T00:00:00")  # Saturday 00:00
    assert WEEKDAYS.working_seconds(at("2026-10-04T10:00:00"), end) == DAY
    assert WEEKDAYS.working_seconds(at("2026-10-02T23:00:00"), end) == DAY + 3600


def test_public_holidays_of_the_region_are_not_business_days():
    germany = WorkingCalendar(working_weekdays=MONDAY_TO_FRIDAY, country="DE")
    thursday = at("2026-12-24T00:00:00")

    # Thursday counts; Friday 25 and Saturday 26 are holidays, then the weekend
    assert germany.add_working_time(thursday, 2 * DAY) == at("2026-12-29T00:00:00")
    assert WEEKDAYS.add_working_time(thursday, 2 * DAY) == at("2026-12-26T00:00:00")


def test_days_begin_at_local_midnight_in_the_regions_time_zone():
    berlin = WorkingCalendar(working_weekdays=MONDAY_TO_FRIDAY, timezone="Europe/Berlin")
    # Friday 23:30 in Berlin is 21:30 UTC; half an hour of Friday is left, then the weekend
    start = at("2026-10-02T21:30:00")

    assert berlin.add_working_time(start, 3600) == at("2026-10-04T22:30:00")  # Mon 00:30 CEST


def test_time_on_hold_does_not_count():
    plain = WorkingCalendar()
    start = at("2026-10-05T00:00:00")
    hold = Hold(at("2026-10-05T12:00:00"), at("2026-10-06T12:00:00"))

    assert plain.active_seconds(start, at("2026-10-07T00:00:00"), [hold]) == DAY
    assert plain.deadline(start, 2 * DAY, [hold]) == at("2026-10-08T00:00:00")
    assert plain.deadline(start, 2 * DAY, [Hold(at("2026-10-05T12:00:00"), None)]) is None
    assert plain.deadline(start, DAY / 4, [Hold(at("2026-10-05T12:00:00"), None)]) == at(
        "2026-10-05T06:00:00"
    )


# --- The detector's parameters ----------------------------------------------------------------


def test_sla_parameters_have_defaults_and_are_checked():
    detector = StageSlaDetector()

    assert detector.validate_parameters({"max_days": 5}) == {
        "max_days": 5,
        "unit": "calendar_days",
        "working_days": [1, 2, 3, 4, 5],
    }
    for bad, named in [
        ({"max_days": 5, "unit": "weeks"}, "unit"),
        ({"max_days": 5, "working_days": []}, "working_days"),
        ({"max_days": 5, "working_days": [0, 1]}, "working_days"),
        ({"max_days": 5, "working_days": [1, 1]}, "working_days"),
        ({"max_days": 5, "working_days": "1-5"}, "working_days"),
    ]:
        with pytest.raises(ValidationError) as error:
            detector.validate_parameters(bad)
        assert named in str(error.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"holiday_subdivision": "BY"}, "holiday_subdivision"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_a_region_calendar_is_validated(org, fields, named):
    region = Region(organization=org, code="BAD", **fields)

    with pytest.raises(ValidationError) as error:
        region.full_clean()

    assert named in error.value.message_dict


# --- The detector, end to end ------------------------------------------------------------------


def _business_version(org, max_days: int = 1) -> DefinitionVersion:
    definition = org.definitions.get(code="SCR-SLA-BREACH")
    version = DefinitionVersion(
        definition=definition,
        number=2,
        detector="stage_sla",
        parameters={"max_days": max_days, "unit": "business_days"},
        status=VersionStatus.APPROVED,
        effective_from=at("2026-01-01T00:00:00"),
    )
    version.full_clean()
    version.save()
    return version


def _enter(connection, make_event, app: str, when: str, region: str = "EMEA", kind=None):
    return event_record(
        connection=connection,
        payload=make_event(
            kind or "application.created",
            id=f"{app}-{kind or 'created'}-{when}",
            occurred_at=when,
            application={"id": app, "candidate_id": f"c-{app}"},
            job={"id": f"job-{region}", "region": region},
            stage={"name": "Application Review", "category": "screening"},
        ),
    )


@pytest.mark.django_db
def test_scan_counts_business_days_over_a_weekend(org, connection, make_event):
    _business_version(org)
    _enter(connection, make_event, "w1", "2026-10-02T12:00:00Z")  # Friday noon

    detection_scan(now=at("2026-10-05T11:59:59"))  # Monday, a second early
    assert not Failure.objects.exists()

    detection_scan(now=at("2026-10-05T12:00:01"))
    breach = Failure.objects.get()
    assert breach.occurred_at == at("2026-10-05T12:00:00")
    assert breach.details["unit"] == "business_days"


@pytest.mark.django_db
def test_scan_leaves_out_the_public_holidays_of_the_jobs_region(org, connection, make_event):
    _business_version(org)
    Region.objects.create(organization=org, code="US-EAST", holiday_country="US")
    # Wednesday before Thanksgiving (Thursday 26 November 2026)
    _enter(connection, make_event, "h1", "2026-11-25T12:00:00Z", region="US-EAST")
    _enter(connection, make_event, "h2", "2026-11-25T12:00:00Z", region="EMEA")

    detection_scan(now=at("2026-11-27T11:00:00"))

    # EMEA has no holiday that Thursday: breached at Thursday noon; the US job not yet
    assert list(Failure.objects.values_list("application__ats_id", "occurred_at")) == [
        ("h2", at("2026-11-26T12:00:00"))
    ]
    detection_scan(now=at("2026-11-27T12:00:01"))
    assert Failure.objects.get(application__ats_id="h1").occurred_at == at("2026-11-27T12:00:00")


@pytest.mark.django_db
def test_time_on_hold_stops_the_clock_for_scan_and_transition(org, connection, make_event):
    # Calendar-day v1 (7 days). Held for 3 days in the middle of a 9-day stay.
    _enter(connection, make_event, "p1", "2026-10-01T00:00:00Z")
    _enter(connection, make_event, "p1", "2026-10-03T00:00:00Z", kind="application.on_hold")
    _enter(connection, make_event, "p1", "2026-10-06T00:00:00Z", kind="application.resumed")

    detection_scan(now=at("2026-10-10T00:00:00"))  # 9 days elapsed, 6 active
    assert not Failure.objects.exists()

    detection_scan(now=at("2026-10-11T00:00:01"))  # 7 active days and a second
    assert Failure.objects.get().occurred_at == at("2026-10-11T00:00:00")


@pytest.mark.django_db
def test_an_application_on_hold_is_not_flagged_while_held(org, connection, make_event):
    _enter(connection, make_event, "p2", "2026-10-01T00:00:00Z")
    _enter(connection, make_event, "p2", "2026-10-02T00:00:00Z", kind="application.on_hold")

    detection_scan(now=at("2026-11-20T00:00:00"))

    assert not Failure.objects.exists()


@pytest.mark.django_db
def test_leaving_late_is_judged_without_the_held_time(org, connection, make_event):
    _enter(connection, make_event, "p3", "2026-10-01T00:00:00Z")
    _enter(connection, make_event, "p3", "2026-10-02T00:00:00Z", kind="application.on_hold")
    _enter(connection, make_event, "p3", "2026-10-05T00:00:00Z", kind="application.resumed")
    # Leaves after 9 days, 6 of them active: on time
    event_record(
        connection=connection,
        payload=make_event(
            "application.rejected",
            id="p3-rejected",
            occurred_at="2026-10-10T00:00:00Z",
            application={"id": "p3", "candidate_id": "c-p3"},
            job={"id": "job-EMEA", "region": "EMEA"},
        ),
    )

    assert not Failure.objects.exists()
