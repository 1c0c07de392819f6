"""Exemptions (strategic hires, documented exceptions) and compliance exclusions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from failures.choices import FailureStatus, StrategicPolicy, VersionStatus
from failures.models import (
    ComplianceExclusion,
    DefinitionException,
    DefinitionVersion,
    Failure,
    Job,
)
from failures.services import detection_scan, event_record

pytestmark = pytest.mark.django_db


def _version(org, code: str, **fields) -> DefinitionVersion:
    """Put a new approved version of `code` in force (effective a day ago)."""
    definition = org.definitions.get(code=code)
    version = DefinitionVersion(
        definition=definition,
        number=definition.versions.count() + 1,
        detector=definition.versions.get(number=1).detector,
        parameters=dict(definition.versions.get(number=1).parameters),
        status=VersionStatus.APPROVED,
        effective_from=timezone.now() - timedelta(days=1),
        **fields,
    )
    version.full_clean()
    version.save()
    return version


def _stamp(moment) -> str:
    return moment.replace(microsecond=0).isoformat()


def _decline(connection, make_event, *, app: str, strategic: bool = False, reason=None):
    details = {"reason": reason} if reason else {}
    return event_record(
        connection=connection,
        payload=make_event(
            "offer.declined",
            id=f"decline-{app}-{reason}",
            occurred_at=_stamp(timezone.now() - timedelta(hours=1)),
            application={"id": app, "candidate_id": f"c-{app}"},
            job={"id": f"job-{app}", "is_strategic": strategic},
            stage={"name": "Offer", "category": "offer"},
            details=details,
        ),
    )


def _enter_screening(connection, make_event, *, app: str, days_ago: float, strategic: bool):
    entered = timezone.now() - timedelta(days=days_ago)
    event_record(
        connection=connection,
        payload=make_event(
            "application.created",
            id=f"created-{app}",
            occurred_at=_stamp(entered),
            application={"id": app, "candidate_id": f"c-{app}"},
            job={"id": f"job-{app}", "is_strategic": strategic},
            stage={"name": "Application Review", "category": "screening"},
        ),
    )
    return entered.replace(microsecond=0)


# --- Strategic hires ------------------------------------------------------------------------


def test_strategic_exempt_records_the_failure_as_exempted_with_the_reason(
    org, connection, make_event
):
    version = _version(org, "OFR-DECLINED", strategic_policy=StrategicPolicy.EXEMPT)

    _decline(connection, make_event, app="a1", strategic=True)
    _decline(connection, make_event, app="a2", strategic=False)

    exempted = Failure.objects.get(application__ats_id="a1")
    assert exempted.status == FailureStatus.EXEMPTED
    assert exempted.definition_version == version
    assert "Strategic hire" in exempted.status_reason
    assert exempted.history.first().history_change_reason.startswith("Detected by OFR-DECLINED")
    assert Failure.objects.get(application__ats_id="a2").status == FailureStatus.OPEN


def test_strategic_extend_multiplies_the_sla_for_strategic_jobs_only(org, connection, make_event):
    # Given max_days 7 and a strategic multiplier of 2
    _version(
        org,
        "SCR-SLA-BREACH",
        strategic_policy=StrategicPolicy.EXTEND,
        strategic_multiplier=Decimal("2.00"),
    )
    strategic_entered = _enter_screening(
        connection, make_event, app="s1", days_ago=10, strategic=True
    )
    _enter_screening(connection, make_event, app="n1", days_ago=10, strategic=False)

    # When the scan runs now (10 days in screening)
    detection_scan()

    # Then only the ordinary job breached; the strategic one has 14 days
    assert list(Failure.objects.values_list("application__ats_id", flat=True)) == ["n1"]

    # And once 14 days have passed, the strategic one breaches at entry + 14 days
    detection_scan(now=strategic_entered + timedelta(days=14, seconds=1))
    breach = Failure.objects.get(application__ats_id="s1")
    assert breach.occurred_at == strategic_entered + timedelta(days=14)
    assert breach.details["limit_multiplier"] == 2.0
    assert breach.status == FailureStatus.OPEN


def test_strategic_apply_treats_strategic_jobs_like_any_other(org, connection, make_event):
    _enter_screening(connection, make_event, app="s2", days_ago=8, strategic=True)

    detection_scan()

    assert Failure.objects.get(application__ats_id="s2").status == FailureStatus.OPEN


def test_the_multiplier_is_validated(org):
    definition = org.definitions.get(code="SCR-SLA-BREACH")
    version = DefinitionVersion(
        definition=definition,
        number=9,
        detector="stage_sla",
        parameters={"max_days": 7},
        strategic_multiplier=Decimal("0.5"),
    )
    with pytest.raises(ValidationError) as error:
        version.full_clean()
    assert "strategic_multiplier" in error.value.message_dict


# --- Documented exceptions --------------------------------------------------------------------


def test_a_documented_exception_exempts_the_job_while_it_applies(org, connection, make_event):
    job = Job.objects.create(organization=org, connection=connection, ats_id="job-x1")
    DefinitionException.objects.create(
        definition=org.definitions.get(code="OFR-DECLINED"),
        job=job,
        reason="Executive search handled by an agency",
        starts_at=timezone.now() - timedelta(days=5),
        ends_at=timezone.now() + timedelta(days=5),
    )

    _decline(connection, make_event, app="x1")

    failure = Failure.objects.get(application__ats_id="x1")
    assert failure.status == FailureStatus.EXEMPTED
    assert failure.status_reason == "Documented exception: Executive search handled by an agency"


def test_an_expired_exception_no_longer_applies(org, connection, make_event):
    job = Job.objects.create(organization=org, connection=connection, ats_id="job-x2")
    DefinitionException.objects.create(
        definition=org.definitions.get(code="OFR-DECLINED"),
        job=job,
        reason="Old freeze",
        starts_at=timezone.now() - timedelta(days=30),
        ends_at=timezone.now() - timedelta(days=20),
    )

    _decline(connection, make_event, app="x2")

    assert Failure.objects.get(application__ats_id="x2").status == FailureStatus.OPEN


def test_an_exception_for_another_organizations_job_is_refused(org, other_org):
    other_job = Job.objects.create(
        organization=other_org,
        connection=other_org.connections.create(name="Other ATS"),
        ats_id="job-other",
    )
    exception = DefinitionException(
        definition=org.definitions.get(code="OFR-DECLINED"),
        job=other_job,
        reason="Nope",
        starts_at=timezone.now(),
    )
    with pytest.raises(ValidationError) as error:
        exception.full_clean()
    assert "job" in error.value.message_dict


# --- Compliance exclusions ---------------------------------------------------------------------


def test_an_excluded_reason_is_counted_never_stored(org, connection, make_event):
    version = _version(org, "OFR-DECLINED", excluded_reasons=["Accommodation", "Legal"])

    _decline(connection, make_event, app="c1", reason="accommodation")
    _decline(connection, make_event, app="c2", reason="Accommodation")
    _decline(connection, make_event, app="c3", reason="Compensation")

    assert list(Failure.objects.values_list("application__ats_id", flat=True)) == ["c3"]
    counts = ComplianceExclusion.objects.get(version=version, reason="accommodation")
    assert counts.count == 2
    assert counts.day == timezone.now().date()


def test_excluded_reasons_must_be_a_list_of_short_texts(org):
    definition = org.definitions.get(code="OFR-DECLINED")
    for bad in ("Accommodation", [""], [42], ["x" * 101], ["r"] * 51):
        version = DefinitionVersion(
            definition=definition,
            number=9,
            detector="offer_declined",
            parameters={},
            excluded_reasons=bad,
        )
        with pytest.raises(ValidationError) as error:
            version.full_clean()
        assert "excluded_reasons" in error.value.message_dict, bad
