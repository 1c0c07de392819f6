"""The ATS simulator: detection matches its ground truth, it is deterministic, its commands."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from failures.models import (
    Application,
    Failure,
    Organization,
    RecruitingEvent,
    Region,
    SimulationTruth,
)
from failures.services import detection_scan
from failures.simulation import (
    _add_business_time,
    _hold_time,
    _public_holidays,
    simulate,
    truth_compare,
)

UNTIL = datetime(2026, 9, 15, 12, 0, 0, tzinfo=UTC)
SEED = 11
CODES = {
    "SCR-SLA-BREACH",
    "OFR-DECLINED",
    "SCR-DROP-OFF",
    "INT-SCHEDULING",
    "INT-FEEDBACK",
    "OFR-UNAPPROVED",
    "BGC-INTEGRATION",
    "HIRE-EARLY-EXIT",
    "REC-INACTIVITY",
}
# Kinds common enough that a 150-application history always has some.
FREQUENT = {
    "SCR-SLA-BREACH",
    "OFR-DECLINED",
    "SCR-DROP-OFF",
    "INT-SCHEDULING",
    "INT-FEEDBACK",
}


def snapshot() -> dict:
    """What a simulation wrote, independent of database ids and of when it ran."""
    return {
        "events": sorted(
            RecruitingEvent.objects.values_list(
                "organization__slug", "event_id", "kind", "occurred_at", "application__ats_id"
            )
        ),
        "payloads": sorted(
            (e.event_id, repr(sorted(e.payload.items()))) for e in RecruitingEvent.objects.all()
        ),
        "applications": sorted(
            Application.objects.values_list(
                "organization__slug",
                "ats_id",
                "candidate__ats_id",
                "job__ats_id",
                "current_stage",
                "stage_category",
                "status",
                "category_entered_at",
            )
        ),
        "truth": sorted(
            SimulationTruth.objects.values_list(
                "organization__slug",
                "seed",
                "definition_code",
                "application_ats_id",
                "dedupe_key",
                "occurred_at",
            )
        ),
    }


def simulate_and_capture(seed: int) -> dict:
    """Run the simulator inside a savepoint, capture what it wrote, then roll it back."""
    with transaction.atomic():
        result = simulate(seed=seed, applications=40, organizations=2, until=UNTIL)
        captured = snapshot()
        captured["counts"] = (result.applications, result.events, dict(result.truths))
        transaction.set_rollback(True)
    assert not RecruitingEvent.objects.exists()
    return captured


@pytest.mark.django_db
def test_detection_matches_the_ground_truth_exactly():
    result = simulate(seed=SEED, applications=150, organizations=2, until=UNTIL)
    scan = detection_scan(now=UNTIL)

    assert result.applications == 150
    assert [o.organization.slug for o in result.organizations] == ["acme", "globex"]
    assert Application.objects.count() == 150
    assert RecruitingEvent.objects.count() == result.events
    truth_per_code = dict.fromkeys(CODES, 0)
    for simulated in result.organizations:
        rows = truth_compare(organization=simulated.organization)
        assert {row.code for row in rows} <= CODES
        for row in rows:
            assert (row.code, row.false_positives, row.false_negatives) == (row.code, 0, 0)
            assert row.precision == row.recall == 1.0
            assert row.status_mismatches == 0
            assert row.excluded_counted == row.excluded_expected
            assert row.exact
            truth_per_code[row.code] += row.true_positives
    assert all(truth_per_code[code] > 0 for code in FREQUENT), truth_per_code
    assert {c: n for c, n in truth_per_code.items() if n} == result.truths
    assert Failure.objects.count() == sum(result.truths.values())
    # Some breaches were only visible to the scan (still waiting at `until`)...
    assert scan.recorded > 0
    # ... and every recorded failure belongs to the organization of its application.
    assert not Failure.objects.exclude(organization=F("application__organization")).exists()
    # Scanning again at the same moment finds nothing new.
    assert detection_scan(now=UNTIL).recorded == 0
    assert Failure.objects.count() == sum(result.truths.values())
    # The history had holds, and some SLA truths only hold once hold time is left out.
    held = Application.objects.filter(holds__isnull=False).distinct()
    assert held.count() >= 5
    assert Failure.objects.filter(definition__code="SCR-SLA-BREACH", application__in=held).exists()
    # Regions count their public holidays as days off.
    assert set(Region.objects.values_list("holiday_country", flat=True)) == {"DE", "US", "SG"}


def test_the_truths_business_time_skips_weekends_and_public_holidays():
    christmas_eve = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)  # a Thursday
    days_off = _public_holidays("DE", christmas_eve, christmas_eve)

    # Thu 24th counts (not a German public holiday); 25th and 26th are; then a weekend.
    after_two_days = _add_business_time(christmas_eve, timedelta(days=2), days_off)

    assert after_two_days == datetime(2026, 12, 29, 9, 0, tzinfo=UTC)
    assert _add_business_time(christmas_eve, timedelta(days=2), set()) == datetime(
        2026, 12, 28, 9, 0, tzinfo=UTC
    )


def test_hold_time_counts_only_the_overlap_with_the_stay():
    start = datetime(2026, 5, 1, tzinfo=UTC)
    holds = [
        [start + timedelta(days=1), start + timedelta(days=3)],
        [start + timedelta(days=5), None],
    ]

    assert _hold_time(holds, start, start + timedelta(days=2)) == timedelta(days=1)
    assert _hold_time(holds, start, start + timedelta(days=6)) == timedelta(days=3)
    assert _hold_time(holds, start + timedelta(days=4), start + timedelta(days=5)) == timedelta()


@pytest.mark.django_db
def test_the_same_seed_and_until_give_the_same_history():
    first = simulate_and_capture(SEED)
    second = simulate_and_capture(SEED)
    other_seed = simulate_and_capture(SEED + 1)

    assert first["events"], "the simulation wrote no events"
    assert first == second
    assert other_seed["events"] != first["events"]


@pytest.mark.django_db
def test_detection_check_prints_full_precision_and_recall():
    out = StringIO()

    call_command("detection_check", seed=5, applications=120, stdout=out, stderr=StringIO())

    report = out.getvalue()
    rows = [line.split() for line in report.splitlines() if line.startswith("acme")]
    assert {row[1] for row in rows} >= FREQUENT, report
    for _slug, _code, truth, found, precision, recall, exempt_ok, excluded in rows:
        assert truth == found
        assert (precision, recall, exempt_ok) == ("100.00%", "100.00%", "yes")
        counted, expected = excluded.split("/")
        assert counted == expected
    assert "matches the ground truth exactly" in report


@pytest.mark.django_db
def test_detection_check_refuses_a_database_that_already_has_its_organizations():
    Organization.objects.create(slug="acme", name="Acme")

    with pytest.raises(CommandError, match="already exist"):
        call_command("detection_check", applications=100, stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options, message",
    [
        ({"applications": 50}, "--applications"),
        ({"applications": 1_000_001}, "--applications"),
        ({"applications": 100, "organizations": 5}, "--organizations"),
        ({"applications": 100, "organizations": 0}, "--organizations"),
        ({"applications": 100, "until": "2026-09-15T12:00:00"}, "--until"),
        ({"applications": 100, "until": "next week"}, "--until"),
    ],
)
def test_simulate_ats_refuses_bad_options(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_ats", stdout=StringIO(), stderr=StringIO(), **options)

    assert not RecruitingEvent.objects.exists()
    assert not Organization.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options, message",
    [
        ({"applications": 99}, "--applications"),
        ({"applications": 100, "organizations": 9}, "--organizations"),
    ],
)
def test_detection_check_refuses_bad_options(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("detection_check", stdout=StringIO(), stderr=StringIO(), **options)

    assert not Organization.objects.exists()


@pytest.mark.django_db
def test_simulate_ats_refuses_an_until_in_the_future():
    later = (timezone.now() + timedelta(days=1)).isoformat()

    with pytest.raises(CommandError, match="--until"):
        call_command("simulate_ats", applications=100, until=later, stdout=StringIO())

    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_simulate_ats_reports_what_it_simulated():
    out = StringIO()

    call_command(
        "simulate_ats",
        seed=SEED,
        applications=100,
        until=UNTIL.isoformat(),
        stdout=out,
        stderr=StringIO(),
    )

    assert "Simulated 100 applications" in out.getvalue()
    assert Application.objects.count() == 100
    assert SimulationTruth.objects.filter(seed=SEED).exists()
    # The history lies within the HISTORY_DAYS before --until, never after it.
    times = RecruitingEvent.objects.values_list("occurred_at", flat=True)
    assert max(times) <= UNTIL
    assert min(times) >= UNTIL - timedelta(days=150)
