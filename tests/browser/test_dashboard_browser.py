"""An HRBP logs in and sees the failure chart rendered by our own plotly.js."""

from datetime import timedelta

import pytest
from django.utils import timezone

from failures.choices import MembershipRole
from tests.factories import PASSWORD, ApplicationFactory, FailureFactory, JobFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_hrbp_sees_the_weekly_failure_chart(
    live_server, page, screenshot, org, other_org, make_member
):
    # Given failures in the HRBP's organization (two stages) and in another organization
    hrbp = make_member(MembershipRole.HRBP, org, username="hrbp")
    now = timezone.now()
    job = JobFactory(organization=org, region=org.regions.get(code="EMEA"))
    for days in (3, 10, 17):
        FailureFactory(
            application=ApplicationFactory(job=job), occurred_at=now - timedelta(days=days)
        )
    FailureFactory(
        application=ApplicationFactory(job=job),
        code="SCR-SLA-BREACH",
        occurred_at=now - timedelta(days=4),
    )
    other_job = JobFactory(organization=other_org)
    for _ in range(5):
        FailureFactory(application=ApplicationFactory(job=other_job))
    plotly_requests = []
    page.on(
        "request",
        lambda request: plotly_requests.append(request.url) if "plotly" in request.url else None,
    )

    # When the HRBP logs in and opens the dashboard
    _login(page, live_server, hrbp.username)
    page.goto(f"{live_server.url}/dashboards/")
    page.wait_for_selector("#failures-chart[data-rendered=true]", timeout=15000)

    # Then the chart is drawn by plotly.js from our own static files, with bars for both stages
    assert plotly_requests and all(url.startswith(live_server.url) for url in plotly_requests)
    assert page.locator("#failures-chart .main-svg").count() >= 1
    legend = page.locator("#failures-chart .legendtext").all_text_contents()
    assert "Screening" in legend and "Offer" in legend
    assert page.locator("#failures-chart .bars .point path").count() >= 1
    # and the totals count only the HRBP's organization
    totals = dict(
        zip(
            page.locator("#failures-totals tbody td:nth-child(1)").all_inner_texts(),
            page.locator("#failures-totals tbody td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert totals["Offer"] == "3"
    assert totals["Screening"] == "1"
    assert "Acme" in page.inner_text("h1")
    screenshot(page, "dashboard-hrbp")


def test_recruiter_is_refused_the_dashboard(live_server, page, org, make_member):
    recruiter = make_member(MembershipRole.RECRUITER, org, username="rec")
    _login(page, live_server, recruiter.username)

    response = page.goto(f"{live_server.url}/dashboards/")

    assert response.status == 403
    assert page.locator("#failures-chart").count() == 0


def test_login_with_a_wrong_password_says_so(live_server, page, org, make_member, screenshot):
    make_member(MembershipRole.HRBP, org, username="hrbp2")
    page.goto(f"{live_server.url}/dashboards/")
    assert "/accounts/login/" in page.url

    page.fill("#id_username", "hrbp2")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")

    assert "didn't match" in page.inner_text("main")
    screenshot(page, "login-error")
