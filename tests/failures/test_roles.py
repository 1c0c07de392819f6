"""Roles as code: permission groups equal roles.py, and memberships drive groups and staff."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError

from failures.choices import MembershipRole
from failures.models import Membership
from failures.roles import ROLE_PERMISSIONS, STAFF_ROLES, group_name, roles_bootstrap
from failures.services import membership_grant
from tests.conftest import ALL_ROLES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _group_permissions(group: Group) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def _role_groups(user) -> set[str]:
    return set(user.groups.filter(name__startswith="failtrack: ").values_list("name", flat=True))


# --- roles_bootstrap ---------------------------------------------------------------------------


def test_every_role_has_a_permission_set():
    assert set(ROLE_PERMISSIONS) == set(MembershipRole.values)
    assert set(ROLE_PERMISSIONS) >= STAFF_ROLES


def test_groups_after_migrate_equal_role_permissions():
    # The post_migrate receiver ran when the test database was built: no explicit call here.
    for role, wanted in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=group_name(role))
        assert _group_permissions(group) == wanted, role


def test_roles_bootstrap_returns_one_group_per_role_with_exactly_its_permissions():
    groups = roles_bootstrap()

    assert set(groups) == set(ROLE_PERMISSIONS)
    for role, group in groups.items():
        assert group.name == group_name(role)
        assert _group_permissions(group) == ROLE_PERMISSIONS[role], role


def test_roles_bootstrap_corrects_drift_in_the_database():
    # Given someone removed a permission from TA ops and gave recruiters an extra one
    ta_ops = Group.objects.get(name=group_name(MembershipRole.TA_OPS))
    recruiter = Group.objects.get(name=group_name(MembershipRole.RECRUITER))
    ta_ops.permissions.remove(
        Permission.objects.get(content_type__app_label="failures", codename="change_failure_status")
    )
    recruiter.permissions.add(
        Permission.objects.get(content_type__app_label="failures", codename="view_dashboard")
    )
    assert "failures.change_failure_status" not in _group_permissions(ta_ops)

    # When the groups are bootstrapped again (as after every migrate)
    roles_bootstrap()

    # Then the database equals roles.py again
    assert _group_permissions(ta_ops) == ROLE_PERMISSIONS[MembershipRole.TA_OPS]
    assert _group_permissions(recruiter) == ROLE_PERMISSIONS[MembershipRole.RECRUITER]
    assert Group.objects.filter(name__startswith="failtrack: ").count() == len(ROLE_PERMISSIONS)


def test_roles_bootstrap_is_idempotent():
    roles_bootstrap()
    before = {g.name: _group_permissions(g) for g in Group.objects.all()}

    roles_bootstrap()

    assert {g.name: _group_permissions(g) for g in Group.objects.all()} == before


def test_dashboard_and_status_change_permissions_go_to_the_intended_roles():
    # The dashboard and status-change rules the rest of the suite relies on
    dashboard = {r for r, p in ROLE_PERMISSIONS.items() if "failures.view_dashboard" in p}
    status = {r for r, p in ROLE_PERMISSIONS.items() if "failures.change_failure_status" in p}

    assert dashboard == {
        MembershipRole.BOARD,
        MembershipRole.HRBP,
        MembershipRole.TA_OPS,
        MembershipRole.ANALYST,
    }
    assert status == {MembershipRole.TA_OPS}


# --- membership_grant --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_membership_grant_puts_the_user_in_the_role_group(org, role):
    user = UserFactory()

    membership = membership_grant(actor=None, user=user, organization=org, role=role)

    user.refresh_from_db()
    assert membership.role == role
    assert membership.organization == org
    assert _role_groups(user) == {group_name(role)}
    assert user.is_staff is (role in STAFF_ROLES)
    # and the user now holds exactly the role's permissions
    user = type(user).objects.get(pk=user.pk)  # fresh permission cache
    assert user.get_all_permissions() == ROLE_PERMISSIONS[role]


def test_changing_the_role_moves_the_group_and_drops_staff(org):
    # Given a board member (staff)
    user = UserFactory()
    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.BOARD)
    user.refresh_from_db()
    assert user.is_staff

    # When their role in the same organization becomes HRBP
    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.HRBP)

    # Then they hold one membership, only the HRBP group, and are no longer staff
    user.refresh_from_db()
    assert Membership.objects.filter(user=user).count() == 1
    assert Membership.objects.get(user=user).role == MembershipRole.HRBP
    assert _role_groups(user) == {group_name(MembershipRole.HRBP)}
    assert user.is_staff is False


def test_changing_to_a_staff_role_makes_staff(org):
    user = UserFactory()
    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.RECRUITER)
    user.refresh_from_db()
    assert not user.is_staff

    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.IT_OPS)

    user.refresh_from_db()
    assert _role_groups(user) == {group_name(MembershipRole.IT_OPS)}
    assert user.is_staff is True


def test_non_role_groups_are_left_alone(org):
    user = UserFactory()
    other = Group.objects.create(name="Newsletter")
    user.groups.add(other)

    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.HRBP)
    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.ANALYST)

    assert set(user.groups.values_list("name", flat=True)) == {
        "Newsletter",
        group_name(MembershipRole.ANALYST),
    }


def test_superuser_stays_staff_with_a_non_staff_role(org, superuser):
    membership_grant(actor=None, user=superuser, organization=org, role=MembershipRole.ANALYST)

    superuser.refresh_from_db()
    assert superuser.is_staff is True


def test_roles_in_two_organizations_give_both_groups(org, other_org):
    user = UserFactory()

    membership_grant(actor=None, user=user, organization=org, role=MembershipRole.HRBP)
    membership_grant(actor=None, user=user, organization=other_org, role=MembershipRole.TA_OPS)

    user.refresh_from_db()
    assert _role_groups(user) == {
        group_name(MembershipRole.HRBP),
        group_name(MembershipRole.TA_OPS),
    }
    assert user.is_staff is True


def test_region_limits_are_stored(org):
    user = UserFactory()
    emea = org.regions.get(code="EMEA")

    membership = membership_grant(
        actor=None, user=user, organization=org, role=MembershipRole.HRBP, regions=[emea]
    )

    assert list(membership.regions.all()) == [emea]


def test_membership_grant_refuses_a_region_of_another_organization(org, other_org):
    # Given a user and a region that belongs to other_org
    user = UserFactory()
    foreign_region = other_org.regions.get(code="EMEA")

    # When they are granted a role in org limited to that region
    with pytest.raises(ValidationError) as excinfo:
        membership_grant(
            actor=None,
            user=user,
            organization=org,
            role=MembershipRole.HRBP,
            regions=[foreign_region],
        )

    # Then nothing is granted
    assert "regions" in excinfo.value.message_dict
    assert not Membership.objects.filter(user=user).exists()
    assert _role_groups(user) == set()


def test_membership_grant_refuses_a_foreign_region_without_touching_the_existing_role(
    org, other_org
):
    user = UserFactory()
    membership_grant(
        actor=None,
        user=user,
        organization=org,
        role=MembershipRole.HRBP,
        regions=[org.regions.get(code="EMEA")],
    )

    with pytest.raises(ValidationError):
        membership_grant(
            actor=None,
            user=user,
            organization=org,
            role=MembershipRole.BOARD,
            regions=[other_org.regions.get(code="AMER")],
        )

    membership = Membership.objects.get(user=user)
    assert membership.role == MembershipRole.HRBP
    assert [r.code for r in membership.regions.all()] == ["EMEA"]
    user.refresh_from_db()
    assert not user.is_staff


def test_membership_grant_refuses_a_team_of_another_organization(org, other_org):
    user = UserFactory()

    with pytest.raises(ValidationError):
        membership_grant(
            actor=None,
            user=user,
            organization=org,
            role=MembershipRole.RECRUITER,
            teams=[other_org.teams.get(name="Platform")],
        )

    assert not Membership.objects.filter(user=user).exists()


def test_membership_grant_refuses_an_unknown_role(org):
    user = UserFactory()

    with pytest.raises(ValidationError) as excinfo:
        membership_grant(actor=None, user=user, organization=org, role="overlord")

    assert "role" in excinfo.value.message_dict
    assert not Membership.objects.filter(user=user).exists()
