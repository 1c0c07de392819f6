"""A board member finds a proposal waiting in the admin, reads it and approves it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from failures.choices import ChangeRequestStatus, MembershipRole, VersionStatus
from failures.governance import version_draft_create, version_propose
from failures.models import BoardMember, ChangeRequest, ReviewBoard
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_board_member_approves_a_proposal_in_the_admin(
    live_server, page, screenshot, org, make_member
):
    # Given a board of three voting members with quorum 2, and a proposal by one of them
    proposer = make_member(MembershipRole.BOARD, org, username="proposer")
    first = make_member(MembershipRole.BOARD, org, username="first-reviewer")
    second = make_member(MembershipRole.BOARD, org, username="second-reviewer")
    board = ReviewBoard.objects.create(organization=org, quorum=2)
    for user in (proposer, first, second):
        BoardMember.objects.create(board=board, user=user)
    draft = version_draft_create(
        actor=proposer,
        definition=org.definitions.get(code="SCR-SLA-BREACH"),
        detector="stage_sla",
        parameters={"max_days": 5},
        change_summary="Five days are enough to screen.",
    )
    request = version_propose(
        actor=proposer,
        version=draft,
        effective_from=timezone.now() + timedelta(days=1),
        reason="Candidates drop out after a working week.",
    )
    request.reviews.create(reviewer=first, decision="approve", comment="Agreed.")

    # When the second member logs in to the admin
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", second.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")

    # Then the proposal waits for them at the top of the admin
    panel = page.locator("#pending-reviews")
    assert "SCR-SLA-BREACH v2" in panel.inner_text()
    screenshot(page, "admin-pending-reviews")
    panel.locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert "Five days are enough to screen." in page.inner_text("#content")

    # When they approve with a comment
    page.check("input[name=decision][value=approve]")
    page.fill("textarea[name=comment]", "Approved: matches our candidate-experience goal.")
    screenshot(page, "admin-review-form")
    page.click("input[name=review]")
    page.wait_for_load_state("networkidle")

    # Then quorum is reached: the request and the version are approved, with the reviews kept
    assert "approved" in page.inner_text(".messagelist")
    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.APPROVED
    assert draft.status == VersionStatus.APPROVED
    assert list(request.reviews.values_list("reviewer__username", flat=True)) == [
        "first-reviewer",
        "second-reviewer",
    ]
    assert ChangeRequest.objects.filter(status=ChangeRequestStatus.OPEN).count() == 0
    screenshot(page, "admin-review-approved")
