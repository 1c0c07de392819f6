"""The governance workflow through the admin, as real users: propose, review, withdraw."""

from datetime import UTC, datetime

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from failures import governance
from failures.choices import ChangeRequestStatus, VersionStatus
from failures.models import ChangeRequest, DefinitionVersion, Review
from tests.failures.governance_support import (
    Board,
    board_build,
    draft_offer,
    draft_sla,
    propose,
    version_of,
)

pytestmark = pytest.mark.django_db

VERSIONS_URL = reverse("admin:failures_definitionversion_changelist")
REQUESTS_URL = reverse("admin:failures_changerequest_changelist")
INDEX_URL = reverse("admin:index")


def change_url(request: ChangeRequest) -> str:
    return reverse("admin:failures_changerequest_change", args=[request.pk])


def review_url(request: ChangeRequest) -> str:
    return reverse("admin:failures_changerequest_review", args=[request.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def board(org, make_member) -> Board:
    """org's board: quorum 2, a voting proposer, three more voters and one non-voter."""
    return board_build(org, make_member, voters=3, quorum=2, non_voters=1)


@pytest.fixture
def other_board(other_org, make_member) -> Board:
    return board_build(other_org, make_member, voters=2, quorum=2)


@pytest.fixture
def request_open(org, board) -> ChangeRequest:
    """An open proposal of SCR-SLA-BREACH v2 {max_days: 10} by the board's proposer."""
    return propose(board.proposer, draft_sla(board.proposer, org, max_days=10))


# --- Proposing --------------------------------------------------------------------------------


def test_a_board_member_proposes_a_draft_with_the_propose_action(org, board):
    # Given a draft by the proposer
    draft = draft_sla(board.proposer, org, max_days=10)
    client = as_user(board.proposer)

    # When they pick "propose" for it in the versions list
    form_page = client.post(VERSIONS_URL, {"action": "propose", ACTION_CHECKBOX_NAME: [draft.pk]})

    # Then they are asked when and why, and nothing is proposed yet
    assert form_page.status_code == 200
    content = form_page.content.decode()
    assert 'name="effective_from"' in content
    assert 'name="reason"' in content
    assert str(draft) in content
    assert not ChangeRequest.objects.exists()

    # When they fill the form in and apply
    response = client.post(
        VERSIONS_URL,
        {
            "action": "propose",
            ACTION_CHECKBOX_NAME: [draft.pk],
            "apply": "1",
            "effective_from": "2030-01-07 09:00",
            "reason": "Candidates drop out after a week.",
        },
        follow=True,
    )

    # Then one change request is open for the draft, by them, and they are told its number
    change_request = ChangeRequest.objects.get()
    assert change_request.version_id == draft.pk
    assert change_request.status == ChangeRequestStatus.OPEN
    assert change_request.proposed_by == board.proposer
    assert change_request.reason == "Candidates drop out after a week."
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PROPOSED
    assert draft.effective_from == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    assert f"change request #{change_request.pk}" in " ".join(messages_of(response))


def test_the_propose_action_without_a_reason_proposes_nothing(org, board):
    draft = draft_sla(board.proposer, org)
    client = as_user(board.proposer)

    response = client.post(
        VERSIONS_URL,
        {
            "action": "propose",
            ACTION_CHECKBOX_NAME: [draft.pk],
            "apply": "1",
            "effective_from": "2030-01-07 09:00",
            "reason": "",
        },
    )

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not ChangeRequest.objects.exists()
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_the_propose_action_on_an_approved_version_reports_an_error(org, board):
    v1 = version_of(org, 1)
    client = as_user(board.proposer)

    response = client.post(
        VERSIONS_URL,
        {
            "action": "propose",
            ACTION_CHECKBOX_NAME: [v1.pk],
            "apply": "1",
            "effective_from": "2030-01-07 09:00",
            "reason": "Again",
        },
        follow=True,
    )

    assert any(str(v1) in m and "draft" in m.lower() for m in messages_of(response))
    assert not ChangeRequest.objects.exists()
    v1.refresh_from_db()
    assert v1.status == VersionStatus.APPROVED


# --- What waits for whom ----------------------------------------------------------------------


def test_the_admin_index_shows_a_voter_what_waits_for_their_review(board, request_open):
    response = as_user(board.voters[0]).get(INDEX_URL)

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="pending-reviews"' in content
    assert change_url(request_open) in content
    assert "SCR-SLA-BREACH v2" in content


@pytest.mark.parametrize("who", ["proposer", "non-voter", "other organization"])
def test_the_admin_index_shows_no_pending_reviews_to_others(board, other_board, request_open, who):
    user = {
        "proposer": board.proposer,
        "non-voter": board.non_voters[0],
        "other organization": other_board.voters[0],
    }[who]

    response = as_user(user).get(INDEX_URL)

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="pending-reviews"' not in content
    assert change_url(request_open) not in content


def test_the_panel_disappears_once_the_voter_has_reviewed(board, request_open):
    governance.change_request_review(
        actor=board.voters[0], change_request=request_open, decision="approve", comment="Yes."
    )

    response = as_user(board.voters[0]).get(INDEX_URL)

    assert 'id="pending-reviews"' not in response.content.decode()


def test_the_change_request_list_puts_what_awaits_the_viewer_first(org, board):
    # Given, oldest first: a request the viewer already reviewed, one awaiting them,
    # and the newest, which the viewer proposed themselves
    viewer = board.voters[0]
    reviewed = propose(board.proposer, draft_offer(board.proposer, org))
    governance.change_request_review(
        actor=viewer, change_request=reviewed, decision="reject", comment="No."
    )
    awaiting = propose(board.voters[1], draft_sla(board.voters[1], org))
    own = propose(viewer, draft_sla(viewer, org, max_days=12))

    # When the viewer opens the change requests
    response = as_user(viewer).get(REQUESTS_URL)

    # Then the one awaiting them comes first, then the rest, newest first
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [awaiting.pk, own.pk, reviewed.pk]


# --- Reviewing --------------------------------------------------------------------------------


def test_two_members_approve_through_the_review_endpoint(board, request_open):
    first, second = board.voters[0], board.voters[1]
    version = request_open.version

    # When the first voter opens the request, they get the review form
    page = as_user(first).get(change_url(request_open))
    assert page.status_code == 200
    assert 'id="review-form"' in page.content.decode()

    # When they approve, the request is still open
    response = as_user(first).post(
        review_url(request_open),
        {"decision": "approve", "comment": "Fair for candidates."},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == change_url(request_open)
    assert "Review recorded. The change request is open." in messages_of(response)
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.OPEN

    # And the voter who reviewed no longer gets the form
    assert 'id="review-form"' not in as_user(first).get(change_url(request_open)).content.decode()

    # When the second approves, quorum is reached: the request and the version are approved
    response = as_user(second).post(
        review_url(request_open),
        {"decision": "approve", "comment": "Agreed."},
        follow=True,
    )
    assert "Review recorded. The change request is approved." in messages_of(response)
    request_open.refresh_from_db()
    version.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.APPROVED
    assert version.status == VersionStatus.APPROVED
    assert version.approved_at is not None
    assert list(Review.objects.values_list("reviewer", "decision")) == [
        (first.pk, "approve"),
        (second.pk, "approve"),
    ]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"decision": "approve", "comment": ""}, "comment"),
        ({"decision": "approve"}, "comment"),
        ({"decision": "abstain", "comment": "Meh."}, "decision"),
        ({"comment": "No decision."}, "decision"),
    ],
    ids=["empty-comment", "no-comment", "bogus-decision", "no-decision"],
)
def test_an_invalid_review_records_nothing_and_says_why(board, request_open, data, named):
    response = as_user(board.voters[0]).post(review_url(request_open), data, follow=True)

    assert response.status_code == 200
    errors = [m for m in messages_of(response) if m.startswith("Review not recorded")]
    assert errors and named in errors[0]
    assert not Review.objects.exists()
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.OPEN


def test_the_proposer_cannot_review_through_the_endpoint(board, request_open):
    client = as_user(board.proposer)
    page = client.get(change_url(request_open))
    assert 'id="review-form"' not in page.content.decode()

    response = client.post(
        review_url(request_open), {"decision": "approve", "comment": "Mine."}, follow=True
    )

    assert any(m.startswith("Review not recorded") for m in messages_of(response))
    assert not Review.objects.exists()


def test_a_non_voting_member_cannot_review_through_the_endpoint(board, request_open):
    response = as_user(board.non_voters[0]).post(
        review_url(request_open), {"decision": "approve", "comment": "Sneaky."}, follow=True
    )

    assert any(m.startswith("Review not recorded") for m in messages_of(response))
    assert not Review.objects.exists()


def test_another_organizations_member_gets_404_for_the_request(board, other_board, request_open):
    client = as_user(other_board.voters[0])

    page = client.get(change_url(request_open))
    reviewed = client.post(review_url(request_open), {"decision": "approve", "comment": "Hi."})
    withdrawn = client.post(review_url(request_open), {"withdraw": "1", "comment": "Bye."})
    listing = client.get(REQUESTS_URL)

    assert page.status_code == 404
    assert reviewed.status_code == 404
    assert withdrawn.status_code == 404
    assert listing.status_code == 200
    assert request_open.pk not in [r.pk for r in listing.context["cl"].result_list]
    assert not Review.objects.exists()
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.OPEN


# --- Withdrawing ------------------------------------------------------------------------------


def test_the_proposer_withdraws_through_the_endpoint(board, request_open):
    client = as_user(board.proposer)
    page = client.get(change_url(request_open))
    assert 'id="withdraw-form"' in page.content.decode()

    response = client.post(
        review_url(request_open), {"withdraw": "1", "comment": "Needs more data."}, follow=True
    )

    assert "Change request withdrawn; the version is a draft again." in messages_of(response)
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.WITHDRAWN
    assert DefinitionVersion.objects.get(pk=request_open.version_id).status == VersionStatus.DRAFT
    record = request_open.history.order_by("-history_id").first()
    assert record.history_user == board.proposer
    assert record.history_change_reason == "Withdrawn: Needs more data."


def test_only_the_proposer_withdraws_through_the_endpoint(board, request_open):
    response = as_user(board.voters[0]).post(
        review_url(request_open), {"withdraw": "1", "comment": "Not mine."}, follow=True
    )

    assert any("proposer" in m for m in messages_of(response))
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.OPEN
    assert request_open.version.status == VersionStatus.PROPOSED


# --- CSRF -------------------------------------------------------------------------------------


def test_the_review_endpoint_enforces_csrf(board, request_open):
    client = Client(enforce_csrf_checks=True)
    client.force_login(board.voters[0])

    # Without a token the review is refused
    refused = client.post(review_url(request_open), {"decision": "approve", "comment": "Yes."})
    assert refused.status_code == 403
    assert not Review.objects.exists()

    # With the token of the page, the same review goes through
    client.get(change_url(request_open))
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        review_url(request_open),
        {"decision": "approve", "comment": "Yes.", "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302
    assert Review.objects.filter(reviewer=board.voters[0]).count() == 1


def test_the_withdraw_endpoint_enforces_csrf(board, request_open):
    client = Client(enforce_csrf_checks=True)
    client.force_login(board.proposer)

    response = client.post(review_url(request_open), {"withdraw": "1", "comment": "Bye."})

    assert response.status_code == 403
    request_open.refresh_from_db()
    assert request_open.status == ChangeRequestStatus.OPEN
