"""The governance admin: every page answers, tenants stay apart, roles decide, actions audit."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from failures import governance, services
from failures.choices import FailureStatus, MembershipRole
from failures.models import (
    Application,
    BoardMember,
    ChangeRequest,
    ComplianceExclusion,
    DefinitionException,
    Failure,
    FailureDefinition,
    Job,
    Membership,
    Organization,
    RecruitingEvent,
    Region,
    ReviewBoard,
    SimulationTruth,
    StageMapping,
    StageTransition,
)
from failures.roles import ROLE_PERMISSIONS, STAFF_ROLES
from integrations.models import ConnectionReason, ConnectionStage
from integrations.services import tracking_key_create
from tests.factories import (
    ApplicationFactory,
    AtsConnectionFactory,
    CandidateFactory,
    FailureFactory,
    JobFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
FAILURES_MODELS = [model for model, _ in REGISTERED if model._meta.app_label == "failures"]


def _label(model) -> str:
    return model._meta.label_lower


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _is_tracked(model) -> bool:
    """Whether django-simple-history keeps row copies of the model."""
    return hasattr(model._meta, "simple_history_manager_attribute")


def _superuser_may_add(model_admin) -> bool:
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_active=True)
    return model_admin.has_add_permission(request)


def _pages():
    for model, model_admin in REGISTERED:
        pages = ["changelist", "search", "change", "history"]
        if _is_tracked(model):
            pages.append("history_version")
        if _superuser_may_add(model_admin):
            pages.append("add")
        for page in pages:
            yield pytest.param(model, page, id=f"{_label(model)}-{page}")


# --- Smoke: every registered model, every page --------------------------------------------------


@pytest.fixture
def admin_world(org, connection, post_event, make_event, make_member, superuser):
    """At least one object of every model registered in the admin, made the way production
    makes them: events through the webhook, memberships and status changes through services."""

    def at(days_ago: int) -> str:
        return (timezone.now() - timedelta(days=days_ago)).isoformat()

    application = {"applied_at": at(10)}
    created = post_event(
        make_event(
            "application.created",
            occurred_at=at(10),
            application=application,
            stage={"name": "Application Review"},
        )
    )
    moved = post_event(make_event(occurred_at=at(8), application=application))
    offer = post_event(
        make_event(
            "offer.declined",
            occurred_at=at(2),
            application=application,
            stage={"name": "Offer", "category": "offer"},
        )
    )
    assert {created.status_code, moved.status_code, offer.status_code} == {202}
    make_member(MembershipRole.TA_OPS, org, username="ops")
    Token.objects.create(user=superuser)
    SimulationTruth.objects.create(
        organization=org,
        seed=7,
        definition_code="OFR-DECLINED",
        application_ats_id="app-9",
        dedupe_key="sim:1",
        occurred_at=timezone.now() - timedelta(days=1),
    )
    failure = Failure.objects.get(definition__code="OFR-DECLINED")
    services.failure_acknowledge(actor=superuser, failure=failure, reason="Smoke test")
    _governance_world(org, superuser, make_member, failure)
    _ingestion_world(connection)
    for model, _ in REGISTERED:
        assert model._default_manager.exists(), f"no {_label(model)} to open in the admin"


def _ingestion_world(connection) -> None:
    """A connection's own stage and reason vocabulary, a tracking key (deliveries exist)."""
    ConnectionStage.objects.create(
        connection=connection, ats_stage="4711", stage_name="Phone Screen", category="screening"
    )
    ConnectionReason.objects.create(
        connection=connection,
        ats_reason="r-9",
        reason_name="Took another offer",
        outcome="withdrawn",
    )
    tracking_key_create(
        actor=None, connection=connection, allowed_origins=["https://ats.example.com"]
    )


def _governance_world(org, superuser, make_member, failure) -> None:
    """A board, a reviewed proposal, a documented exception and a compliance count."""
    voters = [make_member(MembershipRole.BOARD, org, username=f"voter{n}") for n in (1, 2)]
    board = ReviewBoard.objects.create(organization=org, quorum=2)
    for user in (superuser, *voters):
        BoardMember.objects.create(board=board, user=user)
    draft = governance.version_draft_create(
        actor=superuser,
        definition=failure.definition,
        detector="offer_declined",
        parameters={},
        excluded_reasons=["Accommodation"],
    )
    request = governance.version_propose(
        actor=superuser,
        version=draft,
        effective_from=timezone.now() + timedelta(days=1),
        reason="Smoke test",
    )
    governance.change_request_review(
        actor=voters[0], change_request=request, decision="approve", comment="Looks right"
    )
    DefinitionException.objects.create(
        definition=failure.definition,
        job=failure.job,
        reason="Hiring freeze",
        starts_at=timezone.now() - timedelta(days=30),
    )
    ComplianceExclusion.objects.create(
        version=draft, day=timezone.now().date(), reason="accommodation", count=1
    )


@pytest.mark.parametrize(("model", "page"), list(_pages()))
def test_every_admin_page_answers_for_superuser(client, superuser, admin_world, model, page):
    # Given a superuser and one object of each model
    client.force_login(superuser)
    obj = model._default_manager.order_by("pk").first()

    # When they open the page
    if page == "changelist":
        response = client.get(_url(model, "changelist"))
    elif page == "search":
        response = client.get(_url(model, "changelist"), {"q": "app-9"})
    elif page == "change":
        response = client.get(_url(model, "change", quote(obj.pk)))
    elif page == "history":
        response = client.get(_url(model, "history", quote(obj.pk)))
    elif page == "history_version":
        version = obj.history.order_by("history_id").first()
        response = client.get(_url(model, "simple_history", quote(obj.pk), version.history_id))
    else:
        response = client.get(_url(model, "add"))

    # Then it renders
    assert response.status_code == 200, f"{page} of {_label(model)}: {response.status_code}"
    if page in ("change", "history"):
        assert response.context["object" if page == "history" else "original"] is not None


def test_changelist_search_finds_and_excludes(client, superuser, admin_world):
    client.force_login(superuser)

    hit = client.get(_url(Failure, "changelist"), {"q": "app-9"})
    miss = client.get(_url(Failure, "changelist"), {"q": "no-such-application"})

    assert hit.context["cl"].result_count == Failure.objects.count() >= 1
    assert "app-9" in hit.content.decode()
    assert miss.context["cl"].result_count == 0


def test_application_history_shows_transitions_and_events(client, superuser, admin_world):
    client.force_login(superuser)
    application = Application.objects.get(ats_id="app-9")

    response = client.get(_url(Application, "history", application.pk))

    assert response.status_code == 200
    assert len(response.context["transitions"]) == 3
    assert len(response.context["events"]) == 3
    assert "Phone Screen" in response.content.decode()


def test_failure_history_page_shows_the_reason(client, superuser, admin_world):
    client.force_login(superuser)
    failure = Failure.objects.get(definition__code="OFR-DECLINED")

    response = client.get(_url(Failure, "history", failure.pk))

    assert response.status_code == 200
    assert "Smoke test" in response.content.decode()


# --- Tenancy ------------------------------------------------------------------------------------


@dataclass
class Tenant:
    organization: Organization
    failure: Failure
    definition: FailureDefinition
    event: RecruitingEvent
    transition: StageTransition
    mapping: StageMapping
    region: Region
    truth: SimulationTruth
    change_request: ChangeRequest
    exception: DefinitionException
    exclusion: ComplianceExclusion

    def objects(self) -> dict:
        """One object of each failures model that belongs to this tenant."""
        failure = self.failure
        return {
            "failures.organization": self.organization,
            "failures.region": self.region,
            "failures.team": failure.job.team,
            "failures.membership": self.organization.memberships.first(),
            "failures.atsconnection": failure.job.connection,
            "failures.stagemapping": self.mapping,
            "failures.job": failure.job,
            "failures.candidate": failure.candidate,
            "failures.application": failure.application,
            "failures.stagetransition": self.transition,
            "failures.recruitingevent": self.event,
            "failures.failuredefinition": self.definition,
            "failures.definitionversion": self.definition.versions.first(),
            "failures.failure": failure,
            "failures.simulationtruth": self.truth,
            "failures.reviewboard": self.organization.review_board,
            "failures.changerequest": self.change_request,
            "failures.definitionexception": self.exception,
            "failures.complianceexclusion": self.exclusion,
        }


def _tenant(organization: Organization, prefix: str, name: str) -> Tenant:
    """A tenant whose rows carry recognisable, unique markers starting with `prefix`."""
    connection = AtsConnectionFactory(organization=organization, name=f"{name} ATS")
    region = Region.objects.create(organization=organization, code=f"{prefix.upper()}APAC")
    job = JobFactory(
        organization=organization,
        connection=connection,
        ats_id=f"{prefix}job-1",
        title=f"{name} Engineer",
        region=region,
    )
    candidate = CandidateFactory(
        organization=organization, connection=connection, ats_id=f"{prefix}cand-1"
    )
    application = ApplicationFactory(job=job, candidate=candidate, ats_id=f"{prefix}app-1")
    failure = FailureFactory(application=application)
    definition = failure.definition
    definition.name = f"{name} offers declined"
    definition.save()
    # A definition of the tenant's own making, whose code no other tenant has
    FailureDefinition.objects.create(
        organization=organization,
        code=f"{prefix.upper()}SECRET",
        name=f"{name} private rule",
        stage_category="screening",
        kind="process",
    )
    event = RecruitingEvent.objects.create(
        organization=organization,
        connection=connection,
        event_id=f"{prefix}evt-1",
        kind="application.stage_changed",
        occurred_at=timezone.now() - timedelta(days=3),
        application=application,
        payload={},
    )
    transition = StageTransition.objects.create(
        application=application,
        to_stage=f"{name} Secret Stage",
        to_category="screening",
        occurred_at=timezone.now() - timedelta(days=3),
        event=event,
    )
    mapping = StageMapping.objects.create(
        organization=organization, stage_name=f"{name} Secret Stage", category="screening"
    )
    truth = SimulationTruth.objects.create(
        organization=organization,
        seed=1,
        definition_code="OFR-DECLINED",
        application_ats_id=f"{prefix}app-1",
        dedupe_key=f"{prefix}sim",
        occurred_at=timezone.now() - timedelta(days=2),
    )
    UserFactory(username=f"{prefix}member")
    services.membership_grant(
        actor=None,
        user=get_user_model().objects.get(username=f"{prefix}member"),
        organization=organization,
        role=MembershipRole.RECRUITER,
    )
    proposer = UserFactory(username=f"{prefix}proposer")
    services.membership_grant(
        actor=None, user=proposer, organization=organization, role=MembershipRole.BOARD
    )
    board = ReviewBoard.objects.create(organization=organization, name=f"{name} board", quorum=1)
    BoardMember.objects.create(board=board, user=proposer)
    BoardMember.objects.create(
        board=board, user=get_user_model().objects.get(username=f"{prefix}member")
    )
    draft = governance.version_draft_create(
        actor=proposer, definition=definition, detector="offer_declined", parameters={}
    )
    change_request = governance.version_propose(
        actor=proposer,
        version=draft,
        effective_from=timezone.now() + timedelta(days=1),
        reason=f"{name} wants a change",
    )
    exception = DefinitionException.objects.create(
        definition=definition, job=job, reason=f"{name} exception", starts_at=timezone.now()
    )
    exclusion = ComplianceExclusion.objects.create(
        version=draft, day=timezone.now().date(), reason=f"{prefix}reason", count=1
    )
    return Tenant(
        organization,
        failure,
        definition,
        event,
        transition,
        mapping,
        region,
        truth,
        change_request,
        exception,
        exclusion,
    )


# Strings that only the other tenant's *rows* contain (ATS ids, names, usernames).
OTHER_ROW_MARKERS = [
    "globex-job-1",
    "globex-cand-1",
    "globex-app-1",
    "globex-evt-1",
    "Globex offers declined",
    "Globex Secret Stage",
    "globex-member",
    "Globex Engineer",
]
# Names of the other tenant and its configuration (organization, region, connection, code).
OTHER_TENANT_NAMES = ["Globex", "GLOBEX-APAC", "Globex ATS", "GLOBEX-SECRET"]


@pytest.fixture
def tenants(org, other_org) -> tuple[Tenant, Tenant]:
    return _tenant(org, "acme-", "Acme"), _tenant(other_org, "globex-", "Globex")


@pytest.fixture
def board(org, make_member):
    return make_member(MembershipRole.BOARD, org, username="board-member")


def _may_view(role: str, model) -> bool:
    opts = model._meta
    perms = ROLE_PERMISSIONS[role]
    return any(f"{opts.app_label}.{verb}_{opts.model_name}" in perms for verb in ("view", "change"))


@pytest.mark.parametrize(
    ("model", "own_marker"),
    [
        (Failure, "acme-app-1"),
        (FailureDefinition, "Acme offers declined"),
        (Job, "acme-job-1"),
        (Application, "acme-app-1"),
    ],
    ids=["failure", "failuredefinition", "job", "application"],
)
def test_board_sees_own_organization_rows(client, board, tenants, model, own_marker):
    # Given a board member of org, and rows in both tenants
    own, _ = tenants
    client.force_login(board)

    # When they open the changelist
    response = client.get(_url(model, "changelist"))

    # Then their own organization's rows are there, and only those
    assert response.status_code == 200
    assert own_marker in response.content.decode()
    shown = response.context["cl"].queryset
    assert shown.exists()
    assert set(shown.values_list("organization", flat=True)) == {own.organization.pk}


@pytest.mark.parametrize(
    "model", [m for m in FAILURES_MODELS if _may_view(MembershipRole.BOARD, m)], ids=_label
)
def test_other_organization_rows_never_appear_in_a_changelist(client, board, tenants, model):
    client.force_login(board)

    response = client.get(_url(model, "changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    leaked = [marker for marker in OTHER_ROW_MARKERS if marker in html]
    assert leaked == [], f"{_label(model)} changelist shows another tenant's rows: {leaked}"


@pytest.mark.parametrize(
    "model", [m for m in FAILURES_MODELS if _may_view(MembershipRole.BOARD, m)], ids=_label
)
def test_changelist_filters_do_not_name_other_tenants(client, board, tenants, model):
    # The filter sidebar is part of the changelist: it must not list other tenants either.
    client.force_login(board)

    response = client.get(_url(model, "changelist"))

    html = response.content.decode()
    leaked = [name for name in OTHER_TENANT_NAMES if name in html]
    assert leaked == [], f"{_label(model)} changelist names another tenant: {leaked}"


@pytest.mark.parametrize("model", FAILURES_MODELS, ids=_label)
def test_change_page_of_another_organizations_object_is_not_shown(client, board, tenants, model):
    # Given a board member of org and an object of other_org
    _, other = tenants
    obj = other.objects()[_label(model)]
    client.force_login(board)

    # When they open its change page by id
    response = client.get(_url(model, "change", quote(obj.pk)))

    # Then they are turned away (redirect with "does not exist", 404, or 403 without access)
    assert response.status_code in (302, 403, 404)
    html = response.content.decode()
    assert not [marker for marker in OTHER_ROW_MARKERS if marker in html]


@pytest.mark.parametrize(
    "model",
    [m for m in FAILURES_MODELS if _is_tracked(m) and _may_view(MembershipRole.BOARD, m)]
    + [Application],
    ids=_label,
)
def test_history_page_of_another_organizations_object_is_not_shown(client, board, tenants, model):
    _, other = tenants
    obj = other.objects()[_label(model)]
    client.force_login(board)

    response = client.get(_url(model, "history", quote(obj.pk)))

    assert response.status_code in (302, 403, 404), (
        f"{_label(model)} history of another tenant's object answered {response.status_code}"
    )
    assert not [m for m in OTHER_ROW_MARKERS if m in response.content.decode()]


@pytest.mark.parametrize(
    "model",
    [m for m in FAILURES_MODELS if _is_tracked(m) and _may_view(MembershipRole.BOARD, m)],
    ids=_label,
)
def test_historical_version_of_another_organizations_object_is_not_shown(
    client, board, tenants, model
):
    _, other = tenants
    obj = other.objects()[_label(model)]
    version = obj.history.order_by("history_id").first()
    client.force_login(board)

    response = client.get(_url(model, "simple_history", quote(obj.pk), version.history_id))

    assert response.status_code in (302, 403, 404), (
        f"{_label(model)} historical version of another tenant's object answered "
        f"{response.status_code}"
    )
    assert not [m for m in OTHER_ROW_MARKERS if m in response.content.decode()]


def test_board_cannot_rewrite_another_organizations_definition_through_history(
    client, board, tenants
):
    # Given a board member of org (who may change org's definitions) and other_org's definition
    own, other = tenants
    definition = other.definition
    version = definition.history.order_by("history_id").first()
    client.force_login(board)

    # When they post the "revert to this version" form of the other tenant's definition
    response = client.post(
        _url(FailureDefinition, "simple_history", definition.pk, version.history_id),
        {
            "organization": own.organization.pk,
            "code": "HIJACKED",
            "name": "Hijacked",
            "description": "",
            "stage_category": "offer",
            "kind": "outcome",
            "severity": "low",
            "owner_role": "board",
        },
    )

    # Then the other tenant's definition is untouched
    definition.refresh_from_db()
    assert (definition.organization_id, definition.code, definition.name) == (
        other.organization.pk,
        "OFR-DECLINED",
        "Globex offers declined",
    ), f"cross-tenant write succeeded (answered {response.status_code})"


def test_dropdowns_of_the_definition_form_offer_only_own_organizations(client, board, tenants):
    own, _ = tenants
    client.force_login(board)

    response = client.get(_url(FailureDefinition, "change", own.definition.pk))

    assert response.status_code == 200
    choices = response.context["adminform"].form.fields["organization"].queryset
    assert list(choices) == [own.organization]


# --- Roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(set(ROLE_PERMISSIONS) - STAFF_ROLES))
def test_non_staff_roles_are_sent_to_the_admin_login(client, org, make_member, tenants, role):
    member = make_member(role, org)
    client.force_login(member)

    index = client.get("/admin/")
    failures = client.get(_url(Failure, "changelist"))

    for response in (index, failures):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert "acme-app-1" not in failures.content.decode()


@pytest.mark.parametrize(
    ("role", "model"),
    [
        pytest.param(role, model, id=f"{role}-{_label(model)}")
        for role in sorted(STAFF_ROLES)
        for model, _ in REGISTERED
    ],
)
def test_staff_roles_open_exactly_the_changelists_roles_py_gives_them(
    client, org, make_member, tenants, role, model
):
    member = make_member(role, org)
    client.force_login(member)

    response = client.get(_url(model, "changelist"))

    expected = 200 if _may_view(role, model) else 403
    assert response.status_code == expected


def test_it_ops_sees_definitions_read_only(client, org, make_member, tenants):
    # roles.py gives IT operations view_failuredefinition, but no change permission
    assert "failures.view_failuredefinition" in ROLE_PERMISSIONS[MembershipRole.IT_OPS]
    assert "failures.change_failuredefinition" not in ROLE_PERMISSIONS[MembershipRole.IT_OPS]
    own, _ = tenants
    it_ops = make_member(MembershipRole.IT_OPS, org)
    client.force_login(it_ops)
    url = _url(FailureDefinition, "change", own.definition.pk)

    listing = client.get(_url(FailureDefinition, "changelist"))
    page = client.get(url)
    post = client.post(url, {"code": "CHANGED", "name": "Changed"})

    assert listing.status_code == 200
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    own.definition.refresh_from_db()
    assert own.definition.code == "OFR-DECLINED"


def test_it_ops_cannot_open_memberships_or_jobs(client, org, make_member, tenants):
    it_ops = make_member(MembershipRole.IT_OPS, org)
    client.force_login(it_ops)

    assert client.get(_url(Membership, "changelist")).status_code == 403
    assert client.get(_url(Job, "changelist")).status_code == 403


# --- The "change status" action -----------------------------------------------------------------


def _action_post(failures: list[Failure], **extra) -> dict:
    """The changelist's action form, or (with apply=...) the action's own confirmation form."""
    data = {"action": "change_status", ACTION_CHECKBOX_NAME: [f.pk for f in failures], **extra}
    if "apply" not in extra:
        data["index"] = "0"  # posted from the changelist's action bar
    return data


@pytest.fixture
def ta_ops(org, make_member):
    return make_member(MembershipRole.TA_OPS, org, username="ta-ops")


def test_ta_ops_is_offered_the_change_status_action(client, ta_ops, tenants):
    client.force_login(ta_ops)

    response = client.get(_url(Failure, "changelist"))

    assert 'value="change_status"' in response.content.decode()


def test_change_status_action_asks_for_status_and_reason_first(client, ta_ops, tenants):
    own, _ = tenants
    client.force_login(ta_ops)

    response = client.post(_url(Failure, "changelist"), _action_post([own.failure]))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="reason"' in html and 'name="status"' in html
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.OPEN


def test_change_status_action_changes_status_through_the_service(client, ta_ops, tenants):
    # Given TA ops of org and an open failure of org
    own, _ = tenants
    client.force_login(ta_ops)

    # When they apply the action with a status and a reason
    response = client.post(
        _url(Failure, "changelist"),
        _action_post(
            [own.failure], status="acknowledged", reason="Chasing the recruiter", apply="1"
        ),
        follow=True,
    )

    # Then the failure is acknowledged, with actor and reason in its history
    assert response.status_code == 200
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.ACKNOWLEDGED
    assert own.failure.status_changed_by == ta_ops
    assert own.failure.status_reason == "Chasing the recruiter"
    record = own.failure.history.latest("history_date")
    assert record.history_change_reason == "Chasing the recruiter"
    assert record.history_user == ta_ops
    assert "Changed the status of 1 failure(s)." in response.content.decode()


def test_change_status_action_reports_refused_transitions(client, ta_ops, org, tenants):
    own, _ = tenants
    resolved = FailureFactory(
        application=ApplicationFactory(job=own.failure.job), status=FailureStatus.RESOLVED
    )
    client.force_login(ta_ops)

    response = client.post(
        _url(Failure, "changelist"),
        _action_post([own.failure, resolved], status="acknowledged", reason="Mine", apply="1"),
        follow=True,
    )

    own.failure.refresh_from_db()
    resolved.refresh_from_db()
    assert own.failure.status == FailureStatus.ACKNOWLEDGED
    assert resolved.status == FailureStatus.RESOLVED
    html = response.content.decode()
    assert f"#{resolved.pk}:" in html


def test_change_status_action_without_reason_changes_nothing(client, ta_ops, tenants):
    own, _ = tenants
    client.force_login(ta_ops)

    response = client.post(
        _url(Failure, "changelist"),
        _action_post([own.failure], status="resolved", reason="", apply="1"),
    )

    assert response.status_code == 200  # the form again, with its error
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.OPEN


def test_change_status_action_ignores_another_organizations_failure(client, ta_ops, tenants):
    # Given TA ops of org who slips other_org's failure id into the action
    _, other = tenants
    client.force_login(ta_ops)

    client.post(
        _url(Failure, "changelist"),
        _action_post([other.failure], status="dismissed", reason="Not ours", apply="1"),
    )

    other.failure.refresh_from_db()
    assert other.failure.status == FailureStatus.OPEN
    assert other.failure.status_reason == ""


def test_board_is_not_offered_the_action_and_cannot_post_it(client, board, tenants):
    # Given a board member (no change_failure_status)
    own, _ = tenants
    client.force_login(board)

    # When they look at failures, and post the action anyway
    listing = client.get(_url(Failure, "changelist"))
    posted = client.post(
        _url(Failure, "changelist"),
        _action_post([own.failure], status="dismissed", reason="Board says no", apply="1"),
    )

    # Then the action is not offered and the post changes nothing
    assert listing.status_code == 200
    assert 'value="change_status"' not in listing.content.decode()
    assert posted.status_code in (200, 302, 403)
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.OPEN
    assert not own.failure.history.filter(history_change_reason="Board says no").exists()


def test_action_post_without_csrf_token_is_refused(ta_ops, tenants):
    # Given a browser-like client that enforces CSRF, logged in as TA ops
    own, _ = tenants
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ta_ops)
    data = _action_post([own.failure], status="dismissed", reason="Forged", apply="1")

    # When a form is posted without the CSRF token
    forged = browser.post(_url(Failure, "changelist"), data)

    # Then it is refused and nothing changed
    assert forged.status_code == 403
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.OPEN

    # while the same post with the page's token goes through (the check is not just broken)
    browser.get(_url(Failure, "changelist"))
    token = browser.cookies["csrftoken"].value
    genuine = browser.post(_url(Failure, "changelist"), {**data, "csrfmiddlewaretoken": token})
    assert genuine.status_code == 302
    own.failure.refresh_from_db()
    assert own.failure.status == FailureStatus.DISMISSED


# Failures are left out on purpose: a recruiter may see its organization's failures.
@pytest.mark.parametrize("model", [Job, Application, RecruitingEvent], ids=_label)
def test_a_role_in_one_organization_does_not_open_another_organizations_rows(
    client, org, other_org, make_member, tenants, model
):
    # Given a person who is on the board at org but only a recruiter at other_org
    person = make_member(MembershipRole.BOARD, org, username="board-here-recruiter-there")
    services.membership_grant(
        actor=None, user=person, organization=other_org, role=MembershipRole.RECRUITER
    )
    client.force_login(person)

    # When they open a changelist the board role gives them
    response = client.get(_url(model, "changelist"))

    # Then only org's rows are there: the recruiter role at other_org grants no admin rows
    assert response.status_code == 200
    shown = response.context["cl"].queryset
    assert set(shown.values_list("organization", flat=True)) == {org.pk}
    body = response.content.decode()
    assert not [marker for marker in OTHER_ROW_MARKERS if marker in body]
