"""The failure dashboard and its CSV export: who may look, what they see, how weeks count."""

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from failures.choices import MembershipRole
from failures.models import Application, StageTransition
from failures.roles import ROLE_PERMISSIONS
from failures.services import membership_grant
from tests.conftest import ALL_ROLES
from tests.factories import ApplicationFactory, FailureFactory, JobFactory, UserFactory

URL = "/dashboards/"
CSV_URL = "/dashboards/failures.csv"

pytestmark = pytest.mark.django_db

DASHBOARD_ROLES = sorted(r for r, p in ROLE_PERMISSIONS.items() if "failures.view_dashboard" in p)


# --- Reading the page ---------------------------------------------------------------------------


def _figure(response) -> dict | None:
    """The chart's JSON as embedded by json_script, or None when there is no chart."""
    match = re.search(
        r'<script id="failures-figure" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    return json.loads(match.group(1)) if match else None


def _figure_failures(response) -> dict[str, int]:
    """Failures per trace (stage label) summed over all weeks, from the embedded JSON."""
    figure = _figure(response)
    if figure is None:
        return {}
    return {trace["name"]: sum(trace["y"]) for trace in figure["data"]}


def _totals(response) -> dict[str, tuple[int, int]]:
    """The totals table: stage label -> (failures, applications that entered the stage)."""
    table = re.search(
        r'<table class="numbers" id="failures-totals">(.*?)</table>',
        response.content.decode(),
        re.S,
    )
    assert table, "totals table missing"
    rows = re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td></tr>", table.group(1))
    return {label: (int(failures), int(entered)) for label, failures, entered in rows}


def _csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _csv_failures(response) -> int:
    return sum(int(row["failures"]) for row in _csv_rows(response))


# --- Data ---------------------------------------------------------------------------------------


def _failure(organization, region: str, code: str = "OFR-DECLINED", **kwargs):
    job = JobFactory(organization=organization, region=organization.regions.get(code=region))
    return FailureFactory(application=ApplicationFactory(job=job), code=code, **kwargs)


def _entered(application: Application, category: str, days_ago: int = 3) -> None:
    StageTransition.objects.create(
        application=application,
        from_stage="Onsite",
        from_category="interviewing",
        to_stage=category.title(),
        to_category=category,
        occurred_at=timezone.now() - timedelta(days=days_ago),
    )


@dataclass
class Scene:
    """Failures this period: org EMEA 3 offer + 1 screening, org AMER 2 offer,
    other_org 5 offer (+ 4 screening). Applications entering offer: org EMEA 1, AMER 1,
    other_org 3."""

    org_emea_offer: int = 3
    org_emea_screening: int = 1
    org_amer_offer: int = 2


@pytest.fixture
def scene(org, other_org) -> Scene:
    for days in (1, 9, 16):
        _failure(org, "EMEA", occurred_at=timezone.now() - timedelta(days=days))
    _failure(org, "EMEA", code="SCR-SLA-BREACH")
    amer = [_failure(org, "AMER") for _ in range(2)]
    emea_app = ApplicationFactory(
        job=JobFactory(organization=org, region=org.regions.get(code="EMEA"))
    )
    _entered(emea_app, "offer")
    _entered(amer[0].application, "offer")
    other = [_failure(other_org, "EMEA") for _ in range(5)]
    for _ in range(4):
        _failure(other_org, "AMER", code="SCR-SLA-BREACH")
    for failure in other[:3]:
        _entered(failure.application, "offer")
    # and a failure too old for the default 12-week window
    _failure(org, "EMEA", occurred_at=timezone.now() - timedelta(weeks=20))
    return Scene()


@pytest.fixture
def login(client, make_member):
    def _login(role: str, organization, regions: tuple[str, ...] = ()):
        user = make_member(role, organization, regions=regions)
        client.force_login(user)
        return user

    return _login


# --- Access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_anonymous_is_sent_to_login(client, scene, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert f"next={url}" in response["Location"]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_dashboard_access_follows_roles(client, login, org, scene, role):
    # Given a whole-organization member in this role
    login(role, org)

    # When they open the dashboard
    response = client.get(URL)

    # Then board, HRBP, TA ops and analysts see it; recruiters and IT operations do not
    expected = 200 if role in DASHBOARD_ROLES else 403
    assert response.status_code == expected
    if expected == 403:
        assert _figure(response) is None


def test_dashboard_roles_are_the_documented_ones():
    assert MembershipRole.RECRUITER not in DASHBOARD_ROLES
    assert MembershipRole.IT_OPS not in DASHBOARD_ROLES
    assert set(DASHBOARD_ROLES) == {
        MembershipRole.HRBP,
        MembershipRole.BOARD,
        MembershipRole.TA_OPS,
        MembershipRole.ANALYST,
    }


@pytest.mark.parametrize("role", [MembershipRole.RECRUITER, MembershipRole.IT_OPS])
def test_csv_is_refused_without_dashboard_permission(client, login, org, scene, role):
    login(role, org)

    response = client.get(CSV_URL)

    assert response.status_code == 403
    assert not response["Content-Type"].startswith("text/csv")


def test_user_without_membership_gets_no_dashboard(client, scene):
    client.force_login(UserFactory())

    assert client.get(URL).status_code == 403
    assert client.get(CSV_URL).status_code == 403


# --- Scope --------------------------------------------------------------------------------------


def test_board_sees_whole_organization_and_nothing_of_others(client, login, org, scene):
    # Given a board member of org (every region)
    login(MembershipRole.BOARD, org)

    # When they open the dashboard
    response = client.get(URL)

    # Then the table and the chart count org's failures in both regions, not other_org's
    assert response.status_code == 200
    offer = scene.org_emea_offer + scene.org_amer_offer
    totals = _totals(response)
    assert totals["Offer"] == (offer, 2)
    assert totals["Screening"] == (scene.org_emea_screening, 0)
    assert totals["Interviewing"] == (0, 0)
    assert _figure_failures(response) == {
        "Sourcing": 0,
        "Screening": scene.org_emea_screening,
        "Interviewing": 0,
        "Offer": offer,
        "Onboarding": 0,
    }
    assert response.context["counts"].total_failures == offer + scene.org_emea_screening


def test_region_limited_hrbp_sees_only_their_region(client, login, org, scene):
    # Given an HRBP of org limited to EMEA
    login(MembershipRole.HRBP, org, regions=("EMEA",))

    # When they open the dashboard
    response = client.get(URL)

    # Then only EMEA counts
    totals = _totals(response)
    assert totals["Offer"] == (scene.org_emea_offer, 1)
    assert totals["Screening"] == (scene.org_emea_screening, 0)
    figure = _figure_failures(response)
    assert figure["Offer"] == scene.org_emea_offer
    assert figure["Screening"] == scene.org_emea_screening
    # and the entered-stage numbers in the hover data are EMEA-only as well
    customdata = {t["name"]: sum(t["customdata"]) for t in _figure(response)["data"]}
    assert customdata["Offer"] == 1


def test_region_limited_hrbp_cannot_widen_scope_by_asking_for_another_region(
    client, login, org, scene
):
    login(MembershipRole.HRBP, org, regions=("EMEA",))

    response = client.get(URL, {"region": "AMER"})

    assert response.status_code == 200
    assert _totals(response)["Offer"][0] == scene.org_emea_offer
    assert _figure_failures(response)["Offer"] == scene.org_emea_offer


def test_board_may_narrow_to_a_region(client, login, org, scene):
    login(MembershipRole.BOARD, org)

    response = client.get(URL, {"region": "AMER"})

    assert _totals(response)["Offer"] == (scene.org_amer_offer, 1)
    assert _totals(response)["Screening"] == (0, 0)


def test_weeks_filter_widens_the_window(client, login, org, scene):
    login(MembershipRole.BOARD, org)

    twelve = client.get(URL)
    twenty_six = client.get(URL, {"weeks": 26})

    assert len(_figure(twelve)["data"][0]["x"]) == 12
    assert len(_figure(twenty_six)["data"][0]["x"]) == 26
    offer = scene.org_emea_offer + scene.org_amer_offer
    assert _totals(twelve)["Offer"][0] == offer
    assert _totals(twenty_six)["Offer"][0] == offer + 1  # the 20-week-old failure


def test_another_organization_slug_answers_404_and_leaks_nothing(
    client, login, org, other_org, scene
):
    login(MembershipRole.BOARD, org)

    for url in (URL, CSV_URL):
        response = client.get(url, {"organization": other_org.slug})

        assert response.status_code == 404
        html = response.content.decode()
        assert other_org.name not in html
        assert _figure(response) is None


def test_unknown_organization_slug_answers_404(client, login, org, scene):
    login(MembershipRole.BOARD, org)

    assert client.get(URL, {"organization": "no-such-org"}).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"weeks": "7"},
        {"weeks": "many"},
        {"weeks": "-1"},
        {"region": "XXX"},
        {"region": ""},
        {"organization": ""},
        {"weeks": "52", "region": "XXX"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_bogus_filters_do_not_break_the_page(client, login, org, scene, params):
    # Given a board member
    login(MembershipRole.BOARD, org)

    # When the query string carries values the form does not offer
    page = client.get(URL, params)
    export = client.get(CSV_URL, params)

    # Then both answer with the default scope (whole organization, 12 weeks), never a 500
    assert page.status_code == 200
    assert export.status_code == 200
    offer = scene.org_emea_offer + scene.org_amer_offer
    assert _totals(page)["Offer"][0] == offer
    assert len(_figure(page)["data"][0]["x"]) == 12
    assert _csv_failures(export) == offer + scene.org_emea_screening


def test_invalid_filter_is_reported_on_the_page(client, login, org, scene):
    login(MembershipRole.BOARD, org)

    response = client.get(URL, {"weeks": "7"})

    assert "Some filters were not valid" in response.content.decode()


def test_member_of_two_organizations_chooses_one(client, org, other_org, make_member, scene):
    # Given an analyst of both organizations
    user = make_member(MembershipRole.ANALYST, org)
    membership_grant(actor=None, user=user, organization=other_org, role=MembershipRole.ANALYST)
    client.force_login(user)

    # When they pick other_org
    response = client.get(URL, {"organization": other_org.slug})

    # Then they see other_org's numbers only
    assert response.status_code == 200
    assert _totals(response)["Offer"] == (5, 3)
    assert _totals(response)["Screening"] == (4, 0)


def test_dashboard_role_in_one_organization_does_not_open_another(
    client, org, other_org, make_member, scene
):
    # Given an HRBP of org who is only a recruiter at other_org (recruiters have no dashboard)
    user = make_member(MembershipRole.HRBP, org)
    membership_grant(actor=None, user=user, organization=other_org, role=MembershipRole.RECRUITER)
    client.force_login(user)

    # When they ask for other_org's dashboard and export
    page = client.get(URL, {"organization": other_org.slug})
    export = client.get(CSV_URL, {"organization": other_org.slug})

    # Then they are refused: at other_org they are a recruiter
    assert page.status_code in (403, 404), "a recruiter role opened another org's dashboard"
    assert export.status_code in (403, 404)


# --- plotly.js comes from our own static files --------------------------------------------------


def test_page_uses_our_own_plotly_js(client, login, org, scene):
    login(MembershipRole.HRBP, org)

    response = client.get(URL)

    html = response.content.decode()
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert "/static/vendor/plotly/plotly.min.js" in scripts
    assert all(not src.startswith(("http:", "https:", "//")) for src in scripts), scripts
    assert "cdn.plot.ly" not in html
    assert "cdn.jsdelivr" not in html


def test_plotly_js_is_served_from_static_files(client):
    response = client.get("/static/vendor/plotly/plotly.min.js")

    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) > 1_000_000
    assert b"plotly" in body[:2000].lower()


def test_empty_period_shows_no_chart_but_a_note(client, login, org):
    login(MembershipRole.ANALYST, org)

    response = client.get(URL)

    assert response.status_code == 200
    assert _figure(response) is None
    assert 'id="failures-chart-empty"' in response.content.decode()
    assert all(failures == 0 for failures, _ in _totals(response).values())


# --- CSV export -----------------------------------------------------------------------------------


def test_csv_has_the_dashboards_scope(client, login, org, scene):
    # Given a board member of org
    login(MembershipRole.BOARD, org)

    # When they download the CSV
    response = client.get(CSV_URL)

    # Then it is an attachment whose failures add up to what the board member may see
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="failures-acme-')
    rows = _csv_rows(response)
    assert set(rows[0]) == {"week_start", "stage_category", "failures", "applications_entered"}
    assert len(rows) == 12 * 5  # 12 weeks x 5 pipeline categories
    expected = scene.org_emea_offer + scene.org_amer_offer + scene.org_emea_screening
    assert _csv_failures(response) == expected
    offer = [r for r in rows if r["stage_category"] == "offer"]
    assert sum(int(r["applications_entered"]) for r in offer) == 2


def test_csv_of_region_limited_hrbp(client, login, org, scene):
    login(MembershipRole.HRBP, org, regions=("EMEA",))

    response = client.get(CSV_URL)

    assert _csv_failures(response) == scene.org_emea_offer + scene.org_emea_screening


def test_csv_equals_the_page(client, login, org, scene):
    login(MembershipRole.TA_OPS, org)

    page = client.get(URL)
    export = client.get(CSV_URL)

    per_category: dict[str, int] = {}
    for row in _csv_rows(export):
        per_category[row["stage_category"]] = per_category.get(row["stage_category"], 0) + int(
            row["failures"]
        )
    figure = _figure_failures(page)
    assert per_category == {
        "sourcing": figure["Sourcing"],
        "screening": figure["Screening"],
        "interviewing": figure["Interviewing"],
        "offer": figure["Offer"],
        "onboarding": figure["Onboarding"],
    }


# --- Weeks ------------------------------------------------------------------------------------


def test_sunday_and_the_following_monday_land_in_different_weeks(client, login, org):
    # Given a failure on a Sunday and one on the Monday after it (noon UTC, within the window)
    today = timezone.localdate()
    this_monday = today - timedelta(days=today.weekday())
    monday = this_monday - timedelta(weeks=2)
    sunday = monday - timedelta(days=1)
    assert sunday.isoweekday() == 7 and monday.isoweekday() == 1
    for day in (sunday, monday):
        _failure(org, "EMEA", occurred_at=timezone.make_aware(datetime.combine(day, time(12, 0))))
    login(MembershipRole.BOARD, org)

    # When the CSV and the chart count them per week
    rows = _csv_rows(client.get(CSV_URL))
    figure = _figure(client.get(URL))

    # Then the Sunday counts in the week starting the Monday before, the Monday in its own
    offer = {r["week_start"]: int(r["failures"]) for r in rows if r["stage_category"] == "offer"}
    week_of_sunday = (sunday - timedelta(days=6)).isoformat()
    assert offer[week_of_sunday] == 1
    assert offer[monday.isoformat()] == 1
    assert sum(offer.values()) == 2
    trace = next(t for t in figure["data"] if t["name"] == "Offer")
    by_week = dict(zip(trace["x"], trace["y"], strict=True))
    assert by_week[week_of_sunday] == 1
    assert by_week[monday.isoformat()] == 1


def test_weeks_start_on_monday(client, login, org, scene):
    login(MembershipRole.BOARD, org)

    rows = _csv_rows(client.get(CSV_URL))

    weeks = sorted({r["week_start"] for r in rows})
    assert len(weeks) == 12
    assert all(datetime.fromisoformat(w).isoweekday() == 1 for w in weeks)
    assert datetime.fromisoformat(weeks[-1]).date() <= timezone.localdate()


def test_dashboard_role_in_one_organization_does_not_open_anothers(
    client, org, other_org, make_member
):
    # Given an HRBP of org who is only a recruiter at other_org
    person = make_member(MembershipRole.HRBP, org, username="hrbp-here-recruiter-there")
    membership_grant(actor=None, user=person, organization=other_org, role=MembershipRole.RECRUITER)
    client.force_login(person)

    # Then org's dashboard opens, other_org's does not, and the CSV follows the same rule
    assert client.get("/dashboards/", {"organization": org.slug}).status_code == 200
    assert client.get("/dashboards/", {"organization": other_org.slug}).status_code == 404
    assert (
        client.get("/dashboards/failures.csv", {"organization": other_org.slug}).status_code == 404
    )


def test_a_missing_static_file_is_not_found_not_an_error(rf):
    """The development server (`make run`) looks files up through every finder."""
    from django.contrib.staticfiles import finders
    from django.contrib.staticfiles.views import serve
    from django.http import Http404

    from reports.staticfiles import PLOTLY_STATIC_PATH

    assert finders.find("no/such/file.js") is None
    assert finders.find("no/such/file.js", find_all=True) == []
    assert finders.find(PLOTLY_STATIC_PATH).endswith("plotly.min.js")
    with pytest.raises(Http404):
        serve(rf.get("/static/no/such/file.js"), "no/such/file.js", insecure=True)
