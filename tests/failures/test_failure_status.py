"""Failure status changes: allowed transitions, actor and reason in history, who may act."""

import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from failures import services
from failures.choices import FAILURE_STATUS_TRANSITIONS, FailureStatus, MembershipRole
from failures.models import Failure
from failures.services import membership_grant
from tests.factories import ApplicationFactory, FailureFactory, JobFactory

pytestmark = pytest.mark.django_db

S = FailureStatus


def _failure(organization, status: str = S.OPEN, region: str = "EMEA") -> Failure:
    job = JobFactory(organization=organization, region=organization.regions.get(code=region))
    return FailureFactory(application=ApplicationFactory(job=job), status=status)


def _history_count(failure: Failure) -> int:
    return failure.history.count()


@pytest.fixture
def ta_ops(org, make_member):
    return make_member(MembershipRole.TA_OPS, org)


# --- Happy paths -------------------------------------------------------------------------------

WRAPPERS = [
    (services.failure_acknowledge, S.OPEN, S.ACKNOWLEDGED),
    (services.failure_resolve, S.OPEN, S.RESOLVED),
    (services.failure_resolve, S.ACKNOWLEDGED, S.RESOLVED),
    (services.failure_dismiss, S.OPEN, S.DISMISSED),
    (services.failure_dismiss, S.ACKNOWLEDGED, S.DISMISSED),
    (services.failure_exempt, S.OPEN, S.EXEMPTED),
    (services.failure_exempt, S.ACKNOWLEDGED, S.EXEMPTED),
    (services.failure_reopen, S.RESOLVED, S.OPEN),
    (services.failure_reopen, S.EXEMPTED, S.OPEN),
    (services.failure_reopen, S.DISMISSED, S.OPEN),
]


@pytest.mark.parametrize(
    ("service", "from_status", "to_status"),
    WRAPPERS,
    ids=[f"{s.__name__}:{a}->{b}" for s, a, b in WRAPPERS],
)
def test_status_change_records_actor_and_reason(org, ta_ops, service, from_status, to_status):
    # Given a failure in `from_status`
    failure = _failure(org, status=from_status)
    history_before = _history_count(failure)

    # When TA ops changes it with a reason
    result = service(actor=ta_ops, failure=failure, reason="  Talked to the hiring manager  ")

    # Then the status, who and why are stored (reason trimmed)
    failure.refresh_from_db()
    assert result.status == to_status
    assert failure.status == to_status
    assert failure.status_changed_by == ta_ops
    assert failure.status_changed_at is not None
    assert failure.status_reason == "Talked to the hiring manager"
    # and a history row carries the actor and the reason
    assert _history_count(failure) == history_before + 1
    record = failure.history.latest("history_date")
    assert record.status == to_status
    assert record.history_user == ta_ops
    assert record.history_change_reason == "Talked to the hiring manager"
    assert record.history_type == "~"


def test_a_full_lifecycle_leaves_one_history_row_per_change(org, ta_ops):
    failure = _failure(org)

    services.failure_acknowledge(actor=ta_ops, failure=failure, reason="Mine")
    services.failure_resolve(actor=ta_ops, failure=failure, reason="Fixed the SLA")
    services.failure_reopen(actor=ta_ops, failure=failure, reason="Happened again")

    changes = list(
        failure.history.order_by("history_date").values_list(
            "status", "history_change_reason", "history_user"
        )
    )
    assert changes[-3:] == [
        (S.ACKNOWLEDGED, "Mine", ta_ops.pk),
        (S.RESOLVED, "Fixed the SLA", ta_ops.pk),
        (S.OPEN, "Happened again", ta_ops.pk),
    ]


def test_a_stale_object_is_checked_against_the_database(org, ta_ops):
    # Given two copies of the same failure, and one of them is resolved
    failure = _failure(org)
    stale = Failure.objects.get(pk=failure.pk)
    services.failure_resolve(actor=ta_ops, failure=failure, reason="Done")

    # When someone acknowledges through the stale copy (which still says "open")
    with pytest.raises(ValidationError):
        services.failure_acknowledge(actor=ta_ops, failure=stale, reason="Mine")

    # Then the real status decided: resolved cannot become acknowledged
    failure.refresh_from_db()
    assert failure.status == S.RESOLVED


def test_superuser_may_change_status_without_membership(org, superuser):
    failure = _failure(org)

    services.failure_acknowledge(actor=superuser, failure=failure, reason="Root looked")

    failure.refresh_from_db()
    assert failure.status == S.ACKNOWLEDGED
    assert failure.history.latest("history_date").history_user == superuser


# --- Disallowed transitions --------------------------------------------------------------------

DISALLOWED = [
    (a, b)
    for a, b in itertools.product(S.values, S.values)
    if b not in FAILURE_STATUS_TRANSITIONS[a]
]


def test_the_transition_table_has_the_documented_shape():
    assert S.ACKNOWLEDGED not in FAILURE_STATUS_TRANSITIONS[S.RESOLVED]
    assert S.OPEN not in FAILURE_STATUS_TRANSITIONS[S.OPEN]
    for closed in (S.RESOLVED, S.EXEMPTED, S.DISMISSED):
        assert FAILURE_STATUS_TRANSITIONS[closed] == {S.OPEN}
    assert ("resolved", "acknowledged") in DISALLOWED


@pytest.mark.parametrize(("from_status", "to_status"), DISALLOWED)
def test_disallowed_transition_is_refused(org, ta_ops, from_status, to_status):
    # Given a failure in `from_status`
    failure = _failure(org, status=from_status)
    history_before = _history_count(failure)

    # When TA ops asks for a transition the table does not allow
    with pytest.raises(ValidationError) as excinfo:
        services.failure_transition(
            actor=ta_ops, failure=failure, to_status=to_status, reason="Because"
        )

    # Then it is refused, naming the status, and nothing changed
    assert "status" in excinfo.value.message_dict
    failure.refresh_from_db()
    assert failure.status == from_status
    assert failure.status_changed_by is None
    assert _history_count(failure) == history_before


def test_resolved_cannot_be_acknowledged_through_the_wrapper(org, ta_ops):
    failure = _failure(org, status=S.RESOLVED)

    with pytest.raises(ValidationError):
        services.failure_acknowledge(actor=ta_ops, failure=failure, reason="Mine")

    failure.refresh_from_db()
    assert failure.status == S.RESOLVED


def test_unknown_status_is_refused(org, ta_ops):
    failure = _failure(org)

    with pytest.raises(ValidationError) as excinfo:
        services.failure_transition(
            actor=ta_ops, failure=failure, to_status="closed", reason="Because"
        )

    assert "status" in excinfo.value.message_dict
    failure.refresh_from_db()
    assert failure.status == S.OPEN


@pytest.mark.parametrize("reason", ["", "   \n\t", None])
def test_empty_reason_is_refused(org, ta_ops, reason):
    failure = _failure(org)
    history_before = _history_count(failure)

    with pytest.raises(ValidationError) as excinfo:
        services.failure_acknowledge(actor=ta_ops, failure=failure, reason=reason)

    assert "reason" in excinfo.value.message_dict
    failure.refresh_from_db()
    assert failure.status == S.OPEN
    assert _history_count(failure) == history_before


# --- Who may change a status -------------------------------------------------------------------


@pytest.mark.parametrize(
    "role",
    [
        MembershipRole.HRBP,
        MembershipRole.BOARD,
        MembershipRole.RECRUITER,
        MembershipRole.ANALYST,
        MembershipRole.IT_OPS,
    ],
)
def test_roles_without_change_failure_status_are_refused(org, make_member, role):
    # Given a member of the failure's own organization whose role lacks the permission
    member = make_member(role, org)
    failure = _failure(org)
    history_before = _history_count(failure)

    # When they try to acknowledge it
    with pytest.raises(PermissionDenied):
        services.failure_acknowledge(actor=member, failure=failure, reason="Mine")

    # Then the status is unchanged and no history was written
    failure.refresh_from_db()
    assert failure.status == S.OPEN
    assert _history_count(failure) == history_before


def test_ta_ops_of_another_organization_is_refused(org, other_org, make_member):
    # Given TA ops of other_org, and a failure of org
    outsider = make_member(MembershipRole.TA_OPS, other_org)
    failure = _failure(org)

    # When they try to resolve it
    with pytest.raises(PermissionDenied):
        services.failure_resolve(actor=outsider, failure=failure, reason="Not mine")

    # Then nothing changed
    failure.refresh_from_db()
    assert failure.status == S.OPEN
    assert failure.status_reason == ""


def test_inactive_ta_ops_is_refused(org, make_member):
    member = make_member(MembershipRole.TA_OPS, org)
    member.is_active = False
    member.save()
    failure = _failure(org)

    with pytest.raises(PermissionDenied):
        services.failure_acknowledge(actor=member, failure=failure, reason="Mine")

    failure.refresh_from_db()
    assert failure.status == S.OPEN


def test_permission_is_checked_before_the_reason(org, make_member):
    # An unauthorised caller learns nothing about the failure, not even which input is wrong
    hrbp = make_member(MembershipRole.HRBP, org)
    failure = _failure(org)

    with pytest.raises(PermissionDenied):
        services.failure_acknowledge(actor=hrbp, failure=failure, reason="")


def test_role_in_another_organization_does_not_carry_over(org, other_org, make_member):
    # Given someone who is TA ops at other_org but only HRBP at org
    user = make_member(MembershipRole.TA_OPS, other_org)
    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.HRBP)
    user = type(user).objects.get(pk=user.pk)
    failure = _failure(org)

    # When they try to dismiss org's failure
    with pytest.raises(PermissionDenied):
        services.failure_dismiss(actor=user, failure=failure, reason="Not a failure")

    # Then org's failure is untouched: at org they are an HRBP, who may not change statuses
    failure.refresh_from_db()
    assert failure.status == S.OPEN


def test_region_limited_ta_ops_cannot_change_a_failure_outside_the_region(org, make_member):
    # Given TA ops of org limited to EMEA, and a failure on an AMER job
    member = make_member(MembershipRole.TA_OPS, org, regions=("EMEA",))
    amer = _failure(org, region="AMER")
    emea = _failure(org, region="EMEA")

    # When they change both
    services.failure_acknowledge(actor=member, failure=emea, reason="Mine")
    with pytest.raises(PermissionDenied):
        services.failure_acknowledge(actor=member, failure=amer, reason="Mine")

    # Then only the one inside their scope changed
    amer.refresh_from_db()
    assert amer.status == S.OPEN
