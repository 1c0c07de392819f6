"""Roles as code: the permission groups every deployment gets, and who is staff.

Groups are created (and corrected) after every migration, so the permission set in the
database always equals this file. A user's groups follow their memberships.
"""

from typing import Any

from django.contrib.auth.models import Group, Permission

from failures.choices import MembershipRole

_MIRROR = ["job", "candidate", "application", "stagetransition", "recruitingevent"]
_TENANCY = ["organization", "region", "team", "membership"]
_GOVERNANCE = ["reviewboard", "boardmember", "changerequest", "review"]


def _view(*models: str) -> set[str]:
    return {f"failures.view_{model}" for model in models}


def _change(*models: str) -> set[str]:
    return {f"failures.{verb}_{model}" for model in models for verb in ("add", "change")}


# Ingestion, owned by the integrations app (named here as permission strings only).
_DELIVERIES_VIEW = {"integrations.view_inbounddelivery"}
_DELIVERIES_REPLAY = {"integrations.change_inbounddelivery"}
_CONNECTION_VOCABULARY = {
    f"integrations.{verb}_{model}"
    for model in ("connectionstage", "connectionreason")
    for verb in ("view", "add", "change", "delete")
}
_TRACKING_KEYS = {f"integrations.{verb}_trackingkey" for verb in ("view", "add", "change")}


# What each role may do. Scope (which organization, region, team) is applied on top of
# these permissions by the selectors; a permission never widens scope.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    MembershipRole.BOARD: _view(
        *_TENANCY,
        *_MIRROR,
        *_GOVERNANCE,
        "stagemapping",
        "failuredefinition",
        "definitionversion",
        "failure",
    )
    | _view("definitionexception", "complianceexclusion")
    | _change("failuredefinition", "definitionversion", "definitionexception")
    | {"failures.delete_definitionversion"}
    | {"failures.view_dashboard"},
    MembershipRole.HRBP: _view("failure", "failuredefinition") | {"failures.view_dashboard"},
    MembershipRole.RECRUITER: _view("failure", "failuredefinition"),
    MembershipRole.TA_OPS: _view(
        *_TENANCY,
        *_MIRROR,
        "stagemapping",
        "atsconnection",
        "failuredefinition",
        "definitionversion",
        "failure",
        "changerequest",
        "review",
        "definitionexception",
        "complianceexclusion",
    )
    | _change("stagemapping", "job")
    | {"failures.change_failure_status", "failures.view_dashboard"}
    | _DELIVERIES_VIEW
    | _DELIVERIES_REPLAY
    | _CONNECTION_VOCABULARY,
    MembershipRole.IT_OPS: _view(
        "organization", "atsconnection", "recruitingevent", "failure", "failuredefinition"
    )
    | _change("atsconnection")
    | {"failures.view_connectionsecret", "failures.change_connectionsecret"}
    | _DELIVERIES_VIEW
    | _DELIVERIES_REPLAY
    | _CONNECTION_VOCABULARY
    | _TRACKING_KEYS,
    MembershipRole.ANALYST: _view("failure", "failuredefinition") | {"failures.view_dashboard"},
}

# Roles that work in the Django admin.
STAFF_ROLES = frozenset({MembershipRole.BOARD, MembershipRole.TA_OPS, MembershipRole.IT_OPS})


def group_name(role: str) -> str:
    """The name of the permission group of a role."""
    return f"failtrack: {MembershipRole(role).label}"


def roles_bootstrap() -> dict[str, Group]:
    """Create or correct one group per role with exactly the permissions listed above."""
    groups = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name(role))
        wanted = []
        for perm in sorted(perms):
            app_label, codename = perm.split(".", 1)
            # Another app's permissions exist once its own migrations ran: this runs after
            # every app's migrations, and the last run sees them all.
            wanted.extend(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)
        groups[role] = group
    return groups


def roles_bootstrap_after_migrate(**kwargs: Any) -> None:
    """post_migrate receiver: keep the role groups in step with the code."""
    roles_bootstrap()
