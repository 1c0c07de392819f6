"""The read API at /api/v1/failures/: who may read, what they see, filters, pages, writes."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from failures.choices import FailureStatus, MembershipRole
from failures.models import Failure, Organization
from failures.roles import ROLE_PERMISSIONS
from failures.services import membership_grant
from tests.conftest import ALL_ROLES
from tests.factories import PASSWORD, ApplicationFactory, FailureFactory, JobFactory, UserFactory

URL = "/api/v1/failures/"

pytestmark = pytest.mark.django_db


def _job(organization: Organization, region: str | None = "EMEA", **kwargs):
    region_obj = organization.regions.get(code=region) if region else None
    return JobFactory(organization=organization, region=region_obj, **kwargs)


def _failure(organization: Organization, region: str | None = "EMEA", job=None, **kwargs):
    job = job or _job(organization, region)
    return FailureFactory(application=ApplicationFactory(job=job), **kwargs)


def _ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


@dataclass
class Tenants:
    emea: Failure  # org, EMEA job
    amer: Failure  # org, AMER job
    other: list[Failure]  # other_org

    @property
    def own_ids(self) -> set[int]:
        return {self.emea.pk, self.amer.pk}


@pytest.fixture
def tenants(org, other_org) -> Tenants:
    """Failures of `org` in EMEA and AMER, and two failures of `other_org`."""
    return Tenants(
        emea=_failure(org, "EMEA"),
        amer=_failure(org, "AMER", code="SCR-SLA-BREACH"),
        other=[_failure(other_org, "EMEA"), _failure(other_org, "AMER")],
    )


# --- Authentication -------------------------------------------------------------------------


def test_anonymous_request_is_refused_and_leaks_nothing(api_client, tenants):
    response = api_client.get(URL)

    assert response.status_code in (401, 403)
    body = response.json()
    assert "results" not in body
    assert "error" in body
    for failure in [tenants.emea, tenants.amer, *tenants.other]:
        assert failure.application.ats_id not in response.content.decode()


def test_anonymous_detail_is_refused(api_client, tenants):
    response = api_client.get(f"{URL}{tenants.emea.pk}/")

    assert response.status_code in (401, 403)
    assert tenants.emea.application.ats_id not in response.content.decode()


def test_token_authentication_works(api_client, org, make_member, tenants):
    # Given an analyst of org with an API token
    analyst = make_member(MembershipRole.ANALYST, org)
    token = Token.objects.create(user=analyst)

    # When the client sends the token
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api_client.get(URL)

    # Then the analyst's organization's failures come back
    assert response.status_code == 200, response.content
    assert _ids(response) == tenants.own_ids


def test_a_wrong_token_is_refused(api_client, org, make_member, tenants):
    analyst = make_member(MembershipRole.ANALYST, org)
    Token.objects.create(user=analyst)

    api_client.credentials(HTTP_AUTHORIZATION="Token not-the-right-key")
    response = api_client.get(URL)

    assert response.status_code == 401
    assert "results" not in response.json()


def test_session_authentication_works(client, org, make_member, tenants):
    # Given a TA ops member logged in through the normal session login
    member = make_member(MembershipRole.TA_OPS, org)
    assert client.login(username=member.username, password=PASSWORD)

    # When the browser session calls the API
    response = client.get(URL)

    # Then it is authenticated by the session cookie
    assert response.status_code == 200, response.content
    assert _ids(response) == tenants.own_ids


# --- Roles and tenancy -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_each_role_reads_only_its_own_organization(api_client, org, make_member, tenants, role):
    # Given a whole-organization member of org in this role
    member = make_member(role, org)
    api_client.force_login(member)

    # When they list failures
    response = api_client.get(URL)

    # Then roles with view_failure see exactly org's failures; others are refused
    if "failures.view_failure" in ROLE_PERMISSIONS[role]:
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["count"] == 2
        assert _ids(response) == tenants.own_ids
        assert {row["organization"] for row in body["results"]} == {org.slug}
    else:
        assert response.status_code == 403
        assert "results" not in response.json()


def test_it_ops_reads_failures_as_roles_py_allows(api_client, org, make_member, tenants):
    # roles.py gives IT operations failures.view_failure (they triage connection problems)
    assert "failures.view_failure" in ROLE_PERMISSIONS[MembershipRole.IT_OPS]
    it_ops = make_member(MembershipRole.IT_OPS, org)
    api_client.force_login(it_ops)

    response = api_client.get(URL)

    assert response.status_code == 200
    assert _ids(response) == tenants.own_ids


def test_user_without_membership_sees_nothing(api_client, tenants):
    # Given an authenticated user who belongs to no organization
    stranger = UserFactory()
    api_client.force_login(stranger)

    # When they call the list and a detail
    listing = api_client.get(URL)
    detail = api_client.get(f"{URL}{tenants.emea.pk}/")

    # Then they are refused (no role, so no view permission) and nothing leaks
    assert listing.status_code == 403
    assert "results" not in listing.json()
    assert detail.status_code in (403, 404)
    for failure in [tenants.emea, tenants.amer, *tenants.other]:
        assert failure.application.ats_id not in listing.content.decode()
        assert failure.application.ats_id not in detail.content.decode()


def test_other_organization_rows_never_appear(api_client, org, other_org, make_member, tenants):
    # Given a board member of org
    board = make_member(MembershipRole.BOARD, org)
    api_client.force_login(board)
    other = tenants.other[0]

    # When they ask for the other organization by slug, application or job id
    by_slug = api_client.get(URL, {"organization": other_org.slug})
    by_application = api_client.get(URL, {"application": other.application.ats_id})
    by_job = api_client.get(URL, {"job": other.job.ats_id})
    detail = api_client.get(f"{URL}{other.pk}/")

    # Then nothing of the other organization comes back
    for response in (by_slug, by_application, by_job):
        assert response.status_code == 200
        assert response.json()["count"] == 0
        assert response.json()["results"] == []
    assert detail.status_code == 404
    assert other.application.ats_id not in detail.content.decode()
    # while their own organization's slug and detail work (the filters are not just broken)
    own = api_client.get(URL, {"organization": org.slug})
    assert _ids(own) == tenants.own_ids
    assert api_client.get(f"{URL}{tenants.emea.pk}/").status_code == 200


def test_detail_shows_the_identifiers_a_client_needs(api_client, org, make_member, tenants):
    board = make_member(MembershipRole.BOARD, org)
    api_client.force_login(board)

    response = api_client.get(f"{URL}{tenants.emea.pk}/")

    assert response.status_code == 200
    row = response.json()
    assert row["organization"] == org.slug
    assert row["code"] == "OFR-DECLINED"
    assert row["stage_category"] == "offer"
    assert row["application"] == tenants.emea.application.ats_id
    assert row["job"] == tenants.emea.job.ats_id
    assert row["region"] == "EMEA"
    assert row["definition_version"] == 1


def test_region_limited_hrbp_sees_only_emea_failures(api_client, org, make_member, tenants):
    # Given an HRBP of org limited to EMEA
    hrbp = make_member(MembershipRole.HRBP, org, regions=("EMEA",))
    api_client.force_login(hrbp)

    # When they list failures and open the AMER one directly
    response = api_client.get(URL)
    amer_detail = api_client.get(f"{URL}{tenants.amer.pk}/")

    # Then only the EMEA-job failure is visible
    assert response.status_code == 200
    assert _ids(response) == {tenants.emea.pk}
    assert {row["region"] for row in response.json()["results"]} == {"EMEA"}
    assert amer_detail.status_code == 404


def test_region_limited_member_does_not_see_jobs_without_region(api_client, org, make_member):
    hrbp = make_member(MembershipRole.HRBP, org, regions=("EMEA",))
    emea = _failure(org, "EMEA")
    _failure(org, region=None)
    api_client.force_login(hrbp)

    response = api_client.get(URL)

    assert _ids(response) == {emea.pk}


def test_member_of_two_organizations_sees_both(api_client, org, other_org, make_member, tenants):
    # Given an analyst of org who is also an analyst of other_org
    analyst = make_member(MembershipRole.ANALYST, org)
    membership_grant(actor=None, user=analyst, organization=other_org, role=MembershipRole.ANALYST)
    api_client.force_login(analyst)

    # When they list, and narrow to one organization
    both = api_client.get(URL)
    only_other = api_client.get(URL, {"organization": other_org.slug})

    # Then both tenants are listed, and the organization filter narrows
    assert _ids(both) == tenants.own_ids | {f.pk for f in tenants.other}
    assert _ids(only_other) == {f.pk for f in tenants.other}


# --- Filters -----------------------------------------------------------------------------------


@pytest.fixture
def board_client(api_client, org, make_member):
    api_client.force_login(make_member(MembershipRole.BOARD, org))
    return api_client


def test_filter_by_code_is_case_insensitive(board_client, org, other_org):
    offer = _failure(org, code="OFR-DECLINED")
    sla = _failure(org, code="SCR-SLA-BREACH")
    _failure(other_org, code="SCR-SLA-BREACH")

    assert _ids(board_client.get(URL, {"code": "SCR-SLA-BREACH"})) == {sla.pk}
    assert _ids(board_client.get(URL, {"code": "ofr-declined"})) == {offer.pk}
    assert _ids(board_client.get(URL, {"code": "NO-SUCH-CODE"})) == set()


def test_filter_by_stage_category(board_client, org):
    offer = _failure(org, code="OFR-DECLINED")
    sla = _failure(org, code="SCR-SLA-BREACH")

    assert _ids(board_client.get(URL, {"stage_category": "offer"})) == {offer.pk}
    assert _ids(board_client.get(URL, {"stage_category": "screening"})) == {sla.pk}
    assert _ids(board_client.get(URL, {"stage_category": "interviewing"})) == set()


def test_filter_by_several_statuses(board_client, org):
    open_ = _failure(org, status=FailureStatus.OPEN)
    acknowledged = _failure(org, status=FailureStatus.ACKNOWLEDGED)
    resolved = _failure(org, status=FailureStatus.RESOLVED)

    one = board_client.get(URL, {"status": "acknowledged"})
    two = board_client.get(URL, {"status": ["open", "resolved"]})

    assert _ids(one) == {acknowledged.pk}
    assert _ids(two) == {open_.pk, resolved.pk}


def test_filter_by_job_and_application_ats_ids(board_client, org):
    job = _job(org)
    first = _failure(org, job=job)
    second = _failure(org, job=job)
    elsewhere = _failure(org)

    by_job = board_client.get(URL, {"job": job.ats_id})
    by_application = board_client.get(URL, {"application": elsewhere.application.ats_id})

    assert _ids(by_job) == {first.pk, second.pk}
    assert _ids(by_application) == {elsewhere.pk}


def test_filter_by_occurrence_window(board_client, org):
    now = timezone.now()
    old = _failure(org, occurred_at=now - timedelta(days=30))
    recent = _failure(org, occurred_at=now - timedelta(days=1))
    cut = (now - timedelta(days=7)).isoformat()

    after = board_client.get(URL, {"occurred_after": cut})
    before = board_client.get(URL, {"occurred_before": cut})

    assert _ids(after) == {recent.pk}
    assert _ids(before) == {old.pk}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage_category", "bogus"),
        ("stage_category", "closed"),  # a category, but not one failures are attached to
        ("status", "bogus"),
        ("occurred_after", "notadate"),
        ("occurred_before", "2026-13-45T99:00:00Z"),
    ],
)
def test_invalid_filter_value_answers_400_naming_the_field(board_client, org, field, value):
    _failure(org)

    response = board_client.get(URL, {field: value})

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "Invalid input."
    assert field in body["fields"]
    assert "results" not in body


# --- Pagination --------------------------------------------------------------------------------


def test_pagination_with_page_size(board_client, org):
    # Given five failures
    created = {_failure(org).pk for _ in range(5)}

    # When the client pages through two at a time, following `next`
    first = board_client.get(URL, {"page_size": 2})
    body = first.json()

    # Then count is the total, each page has at most two rows, and `next` runs out
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert body["next"] is not None and "page=2" in body["next"]
    seen = _ids(first)
    url = body["next"]
    pages = 1
    while url:
        page = board_client.get(url).json()
        assert len(page["results"]) <= 2
        seen |= {row["id"] for row in page["results"]}
        url = page["next"]
        pages += 1
    assert pages == 3
    assert seen == created


def test_default_page_holds_everything_when_small(board_client, org):
    for _ in range(3):
        _failure(org)

    body = board_client.get(URL).json()

    assert body["count"] == 3
    assert len(body["results"]) == 3
    assert body["next"] is None


def test_page_past_the_end_is_404_not_500(board_client, org):
    _failure(org)

    response = board_client.get(URL, {"page": 99})

    assert response.status_code == 404


def test_list_is_newest_first(board_client, org):
    now = timezone.now()
    older = _failure(org, occurred_at=now - timedelta(days=5))
    newer = _failure(org, occurred_at=now - timedelta(days=1))

    rows = board_client.get(URL).json()["results"]

    assert [row["id"] for row in rows] == [newer.pk, older.pk]


# --- Writes are impossible ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ta_ops", "superuser"])
@pytest.mark.parametrize(
    ("method", "detail"),
    [("post", False), ("put", True), ("patch", True), ("delete", True), ("post", True)],
)
def test_writes_are_refused(api_client, org, make_member, superuser, who, method, detail):
    # Given a failure and a user allowed the most (TA ops changes statuses; root is root)
    failure = _failure(org)
    user = superuser if who == "superuser" else make_member(MembershipRole.TA_OPS, org)
    api_client.force_login(user)
    url = f"{URL}{failure.pk}/" if detail else URL
    payload = {"status": "resolved", "status_reason": "via API", "code": "X"}

    # When they try to write through the API
    response = getattr(api_client, method)(url, payload, format="json")

    # Then the API refuses and nothing changed
    assert response.status_code in (403, 405), response.content
    if who == "superuser":
        assert response.status_code == 405
    assert Failure.objects.count() == 1
    failure.refresh_from_db()
    assert failure.status == FailureStatus.OPEN
    assert failure.status_reason == ""


# --- Query count -------------------------------------------------------------------------------


def _varied_failures(organization: Organization, n: int) -> None:
    """Failures on different jobs, some without region or team, of both codes."""
    for i in range(n):
        job = _job(organization, region=None if i % 3 == 0 else ("EMEA", "AMER")[i % 2])
        if i % 4 == 0:
            job.team = None
            job.save()
        _failure(organization, job=job, code=("OFR-DECLINED", "SCR-SLA-BREACH")[i % 2])


@pytest.mark.parametrize("role", [MembershipRole.BOARD, MembershipRole.HRBP])
def test_list_query_count_does_not_grow_with_failures(
    api_client, org, make_member, django_assert_max_num_queries, role
):
    # Given a member (the HRBP limited to regions, so scoping has work to do)
    regions = ("EMEA", "AMER") if role == MembershipRole.HRBP else ()
    member = make_member(role, org, regions=regions)
    api_client.force_login(member)
    _varied_failures(org, 2)
    with CaptureQueriesContext(db_connection) as few:
        baseline = api_client.get(URL)
    assert baseline.status_code == 200
    assert baseline.json()["count"] >= 1

    # When there are many more failures
    _varied_failures(org, 25)

    # Then listing them takes no more queries than listing two
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api_client.get(URL)
    assert response.json()["count"] > baseline.json()["count"]
    assert len(few.captured_queries) <= 12
