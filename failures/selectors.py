"""Reads shared by the admin, pages, API, tasks and exports; every one scoped to a user."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from failures.choices import VersionStatus
from failures.models import (
    DefinitionVersion,
    Failure,
    FailureDefinition,
    Membership,
    Organization,
)
from failures.roles import ROLE_PERMISSIONS

User = AbstractBaseUser | AnonymousUser


def membership_list(*, user: User) -> list[Membership]:
    """The user's memberships with their region and team limits loaded."""
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .prefetch_related("regions", "teams")
    )


def scope_queryset(
    queryset: QuerySet,
    *,
    user: User,
    organization: str = "organization",
    region: str | None = None,
    team: str | None = None,
    permission: str | None = None,
) -> QuerySet:
    """Limit any queryset to what the user may see: their organizations, regions and teams.

    `organization`, `region` and `team` are lookup paths from the queryset's model; pass
    `region`/`team` for models that belong to a job, so region-limited members are limited.
    With `permission` ("app.codename"), only organizations where the user's role grants it
    count: a recruiter at one tenant and an HRBP at another sees dashboards of the second only.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    memberships = getattr(user, "_failtrack_memberships", None)
    if memberships is None:
        memberships = membership_list(user=user)
        user._failtrack_memberships = memberships  # cached for this request's user object
    if not memberships:
        return queryset.none()
    allowed = Q(pk__in=[])
    for membership in memberships:
        if permission is not None and permission not in ROLE_PERMISSIONS.get(membership.role, ()):
            continue
        clause = Q(**{organization: membership.organization_id})
        region_ids = [r.pk for r in membership.regions.all()]
        team_ids = [t.pk for t in membership.teams.all()]
        if region and region_ids:
            clause &= Q(**{f"{region}__in": region_ids})
        if team and team_ids:
            clause &= Q(**{f"{team}__in": team_ids})
        allowed |= clause
    return queryset.filter(allowed)


def organization_list(*, user: User, permission: str | None = None) -> QuerySet[Organization]:
    """Organizations the user belongs to (where their role grants `permission`, if given)."""
    return scope_queryset(
        Organization.objects.all(), user=user, organization="pk", permission=permission
    )


def failure_list(*, user: User) -> QuerySet[Failure]:
    """Failures the user may see, with what lists and serializers show loaded."""
    queryset = Failure.objects.select_related(
        "organization",
        "definition",
        "definition_version",
        "application",
        "candidate",
        "job__team",
        "job__region",
    )
    return scope_queryset(
        queryset,
        user=user,
        region="job__region",
        team="job__team",
        permission="failures.view_failure",
    )


def definition_versions_in_force(
    *, at: datetime, organization_id: int | None = None
) -> list[DefinitionVersion]:
    """For each definition, the approved version in force at `at` (the latest effective)."""
    versions = (
        DefinitionVersion.objects.filter(status=VersionStatus.APPROVED, effective_from__lte=at)
        .select_related("definition")
        .order_by("definition_id", "-effective_from", "-number")
    )
    if organization_id is not None:
        versions = versions.filter(definition__organization_id=organization_id)
    in_force: dict[int, DefinitionVersion] = {}
    for version in versions:
        in_force.setdefault(version.definition_id, version)
    return list(in_force.values())


def definition_list(*, user: User) -> QuerySet[FailureDefinition]:
    """Definitions the user may see."""
    return scope_queryset(
        FailureDefinition.objects.select_related("organization"),
        user=user,
        permission="failures.view_failuredefinition",
    ).order_by("organization__name", "code")


def definition_catalogue(*, user: User, at: datetime) -> list[FailureDefinition]:
    """Definitions with `version_in_force` (or None) and `version_pending` attached."""
    definitions = list(definition_list(user=user))
    organization_ids = {d.organization_id for d in definitions}
    in_force = {
        version.definition_id: version
        for organization_id in organization_ids
        for version in definition_versions_in_force(at=at, organization_id=organization_id)
    }
    pending = {
        version.definition_id: version
        for version in DefinitionVersion.objects.filter(
            definition__in=definitions, status=VersionStatus.PROPOSED
        )
    }
    for definition in definitions:
        definition.version_in_force = in_force.get(definition.pk)
        definition.version_pending = pending.get(definition.pk)
    return definitions
