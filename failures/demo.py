"""The demo organization: simulated history, one login per role, printed instructions."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from failures.choices import DetectorKind, MembershipRole
from failures.governance import version_draft_create, version_propose
from failures.models import (
    AtsConnection,
    BoardMember,
    ChangeRequest,
    Organization,
    ReviewBoard,
)
from failures.services import detection_scan, membership_grant
from failures.simulation import simulate

DEMO_PASSWORD = "demo"
DEMO_ORGANIZATION = "acme"
# (username, role, what they do) — the role None is the superuser.
DEMO_USERS = [
    ("admin", None, "superuser: everything, every organization"),
    ("board", MembershipRole.BOARD, "governance board: reviews a proposal waiting in the admin"),
    ("hrbp", MembershipRole.HRBP, "HR business partner: the dashboards"),
    ("recruiter", MembershipRole.RECRUITER, "recruiter: the failures API"),
    ("ops", MembershipRole.TA_OPS, "TA operations: works failures in the admin"),
]


@dataclass
class DemoState:
    """What the demo loader did."""

    simulated: bool
    applications: int
    events: int


def demo_load(
    *, applications: int, seed: int = 2026, on_application: Callable[[], None] | None = None
) -> DemoState:
    """Load the demo once: simulated ATS history for two organizations, users for each role."""
    if not settings.DEBUG:
        raise RuntimeError("The demo (with its well-known passwords) only loads with DEBUG on.")
    simulated = not Organization.objects.filter(slug=DEMO_ORGANIZATION).exists()
    state = DemoState(simulated=simulated, applications=0, events=0)
    if simulated:
        now = timezone.now()
        result = simulate(
            seed=seed,
            applications=applications,
            organizations=2,
            until=now,
            on_application=on_application,
        )
        detection_scan(now=now)
        state.applications, state.events = result.applications, result.events
    organization = Organization.objects.get(slug=DEMO_ORGANIZATION)
    user_model = get_user_model()
    for username, role, _ in DEMO_USERS:
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_superuser = user.is_staff = role is None
            user.save()
        if role is not None:
            membership_grant(actor=None, user=user, organization=organization, role=role)
    _demo_governance(organization)
    return state


def _demo_governance(organization: Organization) -> None:
    """A review board (board, ops and admin vote; quorum 2) and one proposal waiting for it."""
    users = {
        u.username: u
        for u in get_user_model().objects.filter(username__in=["admin", "board", "ops"])
    }
    board, _ = ReviewBoard.objects.get_or_create(organization=organization, defaults={"quorum": 2})
    for username in ("admin", "board", "ops"):
        BoardMember.objects.get_or_create(board=board, user=users[username])
    if ChangeRequest.objects.filter(organization=organization).exists():
        return
    definition = organization.definitions.get(code="SCR-SLA-BREACH")
    draft = version_draft_create(
        actor=users["admin"],
        definition=definition,
        detector=DetectorKind.STAGE_SLA,
        parameters={"max_days": 5},
        change_summary="Tighten the screening SLA from 7 to 5 days.",
    )
    version_propose(
        actor=users["admin"],
        version=draft,
        effective_from=timezone.now() + timedelta(days=7),
        reason="Candidates drop out when screening takes longer than a working week.",
    )


def demo_banner(*, base_url: str) -> str:
    """The text `make run` prints: where to go, who to log in as, how to send an event."""
    organization = Organization.objects.get(slug=DEMO_ORGANIZATION)
    connection: AtsConnection = organization.connections.order_by("created_at").first()
    hook = base_url.rstrip("/") + reverse(
        "integrations:ats-hook",
        kwargs={"vendor": connection.vendor, "connection_id": connection.pk},
    )
    width = max(len(u) for u, _, _ in DEMO_USERS)
    logins = "\n".join(
        f"    {username:<{width}}  /  {DEMO_PASSWORD}   {what}" for username, _, what in DEMO_USERS
    )
    return f"""
  failtrack is running:  {base_url}
    dashboard  {base_url}/dashboards/
    admin      {base_url}/admin/
    API        {base_url}/api/v1/failures/   (docs: {base_url}/api/docs/)
    deliveries {base_url}/admin/integrations/inbounddelivery/

  Demo logins ({organization.name}), password "{DEMO_PASSWORD}":
{logins}

  Generic ATS connection of {organization.name}:
    webhook URL  {hook}
    secret       {connection.secret}
  Send a first signed event with the curl in README.md ("Send a first event").

  Stop with Ctrl-C.
"""
