"""Governance services: drafts, proposals, board reviews, quorum, withdrawal and retirement."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from failures import governance
from failures.choices import ChangeRequestStatus, MembershipRole, VersionStatus
from failures.models import BoardMember, ChangeRequest, DefinitionVersion, Review, ReviewBoard
from tests.failures.governance_support import (
    OFFER,
    Board,
    board_build,
    definition_of,
    draft_offer,
    draft_sla,
    in_force,
    propose,
    version_of,
)

pytestmark = pytest.mark.django_db

APPROVE, REJECT = "approve", "reject"


@pytest.fixture
def board(org, make_member) -> Board:
    """org's board: quorum 2, a voting proposer and three more voting members."""
    return board_build(org, make_member, voters=3, quorum=2, non_voters=1)


@pytest.fixture
def other_board(other_org, make_member) -> Board:
    """other_org's own board, so its members are real board members elsewhere."""
    return board_build(other_org, make_member, voters=2, quorum=2)


def review(actor, change_request, decision=APPROVE, comment="Looks right to me."):
    return governance.change_request_review(
        actor=actor, change_request=change_request, decision=decision, comment=comment
    )


def refreshed(*objects):
    for obj in objects:
        obj.refresh_from_db()
    return objects


# --- Drafts ---------------------------------------------------------------------------------


def test_a_draft_is_numbered_after_the_last_version(org, board):
    # Given SCR-SLA-BREACH with its approved v1
    # When the proposer drafts twice
    v2 = draft_sla(board.proposer, org, max_days=10)
    v3 = draft_sla(board.proposer, org, max_days=12)

    # Then the drafts are v2 and v3, drafts, by the proposer, with their parameters
    assert (v2.number, v3.number) == (2, 3)
    assert v2.status == v3.status == VersionStatus.DRAFT
    assert v2.created_by == board.proposer
    assert v2.parameters["max_days"] == 10
    assert v2.effective_from is None and v2.approved_at is None
    # And v1 is untouched
    assert version_of(org, 1).status == VersionStatus.APPROVED


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"max_days": 7, "min_days": 1}, "min_days"),
        ({}, "max_days"),
        ({"max_days": "7"}, "max_days"),
        ({"max_days": 0}, "max_days"),
        ({"max_days": 366}, "max_days"),
        ({"max_days": True}, "max_days"),
        ({"max_days": 7.5}, "max_days"),
    ],
    ids=["unknown", "missing", "string", "zero", "366", "bool", "float"],
)
def test_bad_parameters_are_refused_naming_the_parameter(org, board, parameters, named):
    # When a draft is created with bad parameters
    with pytest.raises(ValidationError) as caught:
        governance.version_draft_create(
            actor=board.proposer,
            definition=definition_of(org),
            detector="stage_sla",
            parameters=parameters,
        )

    # Then the error is on `parameters` and names the parameter, and nothing is created
    errors = caught.value.message_dict
    assert named in " ".join(errors["parameters"])
    assert definition_of(org).versions.count() == 1


@pytest.mark.parametrize("max_days", [1, 365])
def test_parameter_bounds_are_inclusive(org, board, max_days):
    version = draft_sla(board.proposer, org, max_days=max_days)

    assert version.parameters["max_days"] == max_days


def test_an_unknown_detector_is_refused_naming_the_detector(org, board):
    with pytest.raises(ValidationError) as caught:
        governance.version_draft_create(
            actor=board.proposer,
            definition=definition_of(org),
            detector="gut_feeling",
            parameters={},
        )

    assert "detector" in caught.value.message_dict
    assert definition_of(org).versions.count() == 1


def test_a_draft_can_be_edited_while_it_is_a_draft(org, board):
    draft = draft_sla(board.proposer, org, max_days=10)

    governance.version_draft_update(
        actor=board.voters[0],
        version=draft,
        parameters={"max_days": 14},
        change_summary="Two weeks",
    )

    (draft,) = refreshed(draft)
    assert draft.parameters["max_days"] == 14
    assert draft.change_summary == "Two weeks"
    assert draft.status == VersionStatus.DRAFT


def test_a_draft_edit_with_bad_parameters_changes_nothing(org, board):
    draft = draft_sla(board.proposer, org, max_days=10)

    with pytest.raises(ValidationError) as caught:
        governance.version_draft_update(
            actor=board.proposer, version=draft, parameters={"max_days": 0}
        )

    assert "max_days" in " ".join(caught.value.message_dict["parameters"])
    (draft,) = refreshed(draft)
    assert draft.parameters["max_days"] == 10


@pytest.mark.parametrize("field", ["status", "number", "effective_from", "approved_at"])
def test_a_draft_edit_cannot_touch_lifecycle_fields(org, board, field):
    draft = draft_sla(board.proposer, org)
    value = {
        "status": VersionStatus.APPROVED,
        "number": 99,
        "effective_from": timezone.now(),
        "approved_at": timezone.now(),
    }[field]

    with pytest.raises(ValidationError) as caught:
        governance.version_draft_update(actor=board.proposer, version=draft, **{field: value})

    assert field in caught.value.message_dict
    (draft,) = refreshed(draft)
    assert (draft.status, draft.number, draft.approved_at) == (VersionStatus.DRAFT, 2, None)


def test_a_proposed_version_is_not_a_draft_any_more(org, board):
    draft = draft_sla(board.proposer, org, max_days=10)
    propose(board.proposer, draft)

    with pytest.raises(ValidationError) as caught:
        governance.version_draft_update(
            actor=board.proposer, version=draft, parameters={"max_days": 3}
        )

    assert "status" in caught.value.message_dict
    (draft,) = refreshed(draft)
    assert draft.parameters["max_days"] == 10
    assert draft.status == VersionStatus.PROPOSED


def test_an_approved_version_cannot_be_edited_as_a_draft(org, board):
    v1 = version_of(org, 1)

    with pytest.raises(ValidationError):
        governance.version_draft_update(
            actor=board.proposer, version=v1, parameters={"max_days": 3}
        )

    (v1,) = refreshed(v1)
    assert v1.parameters["max_days"] == 7


# --- Proposing ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_a_proposal_needs_a_reason(org, board, reason):
    draft = draft_sla(board.proposer, org)

    with pytest.raises(ValidationError) as caught:
        propose(board.proposer, draft, reason=reason)

    assert "reason" in caught.value.message_dict
    (draft,) = refreshed(draft)
    assert draft.status == VersionStatus.DRAFT
    assert not ChangeRequest.objects.exists()


def test_a_proposal_needs_an_aware_effective_date(org, board):
    draft = draft_sla(board.proposer, org)
    naive = timezone.now().replace(tzinfo=None) + timedelta(days=3)

    for effective_from in (naive, None):
        with pytest.raises(ValidationError) as caught:
            governance.version_propose(
                actor=board.proposer, version=draft, effective_from=effective_from, reason="Why"
            )
        assert "effective_from" in caught.value.message_dict

    (draft,) = refreshed(draft)
    assert draft.status == VersionStatus.DRAFT
    assert draft.effective_from is None
    assert not ChangeRequest.objects.exists()


def test_a_proposal_needs_a_review_board(org, make_member):
    # Given a board-role member in an organization without a review board
    member = make_member(MembershipRole.BOARD, org, username="lonely")
    draft = draft_sla(member, org)

    with pytest.raises(ValidationError) as caught:
        propose(member, draft)

    assert "board" in caught.value.message_dict
    (draft,) = refreshed(draft)
    assert draft.status == VersionStatus.DRAFT
    assert not ChangeRequest.objects.exists()


def test_a_proposal_needs_quorum_voters_besides_the_proposer(org, make_member):
    # Given quorum 2 and, besides the voting proposer, one voting and two non-voting members
    small = board_build(org, make_member, voters=1, quorum=2, non_voters=2)
    draft = draft_sla(small.proposer, org)

    # When the proposer proposes
    with pytest.raises(ValidationError) as caught:
        propose(small.proposer, draft)

    # Then it is refused: the proposer's own seat and non-voting seats do not count
    assert "board" in caught.value.message_dict
    (draft,) = refreshed(draft)
    assert draft.status == VersionStatus.DRAFT
    assert not ChangeRequest.objects.exists()

    # And once a second voting member sits on the board, the same proposal goes through
    extra = make_member(MembershipRole.BOARD, org, username="acme-late-voter")
    BoardMember.objects.create(board=small.board, user=extra, can_vote=True)
    assert propose(small.proposer, draft).status == ChangeRequestStatus.OPEN


def test_a_proposer_without_a_seat_needs_quorum_voters_only(org, make_member):
    # Given quorum 2, two voting members and a proposer who holds no seat
    seatless = board_build(org, make_member, voters=2, quorum=2, proposer_votes=False)
    draft = draft_sla(seatless.proposer, org)

    request = propose(seatless.proposer, draft)

    assert request.status == ChangeRequestStatus.OPEN


def test_proposing_opens_exactly_one_change_request(org, board):
    # Given a draft
    draft = draft_sla(board.proposer, org)
    effective = timezone.now() + timedelta(days=10)

    # When it is proposed
    request = propose(board.proposer, draft, effective_from=effective, reason="  Too slow.  ")

    # Then the version is proposed from that date, with one open request describing it
    (draft,) = refreshed(draft)
    assert draft.status == VersionStatus.PROPOSED
    assert draft.effective_from == effective
    assert draft.approved_at is None
    assert list(ChangeRequest.objects.all()) == [request]
    assert request.status == ChangeRequestStatus.OPEN
    assert request.organization == org
    assert request.version == draft
    assert request.proposed_by == board.proposer
    assert request.reason == "Too slow."
    assert request.decided_at is None

    # And proposing it again is refused, still with a single open request
    with pytest.raises(ValidationError):
        propose(board.voters[0], draft)
    assert ChangeRequest.objects.filter(version=draft).count() == 1


def test_an_approved_version_cannot_be_proposed(org, board):
    with pytest.raises(ValidationError) as caught:
        propose(board.proposer, version_of(org, 1))

    assert "status" in caught.value.message_dict
    assert not ChangeRequest.objects.exists()


# --- Reviewing and quorum ------------------------------------------------------------------


def test_one_approval_of_two_leaves_the_request_open(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    review(board.voters[0], request)

    request.refresh_from_db()
    version = request.version
    assert request.status == ChangeRequestStatus.OPEN
    assert request.decided_at is None
    assert version.status == VersionStatus.PROPOSED
    assert version.approved_at is None
    assert Review.objects.filter(change_request=request).count() == 1


def test_the_quorum_th_approval_approves_the_version(org, board):
    # Given a proposal effective in ten days
    effective = timezone.now() + timedelta(days=10)
    request = propose(board.proposer, draft_sla(board.proposer, org), effective_from=effective)
    before = timezone.now()

    # When two voting members approve
    review(board.voters[0], request)
    review(board.voters[1], request)

    # Then the request and the version are approved, from the proposed date
    request.refresh_from_db()
    version = request.version
    assert request.status == ChangeRequestStatus.APPROVED
    assert request.decided_at is not None and request.decided_at >= before
    assert version.status == VersionStatus.APPROVED
    assert version.approved_at is not None and version.approved_at >= before
    assert version.effective_from == effective
    assert version.effective_from >= version.approved_at


def test_an_approved_version_is_in_force_only_once_its_date_has_passed(org, board):
    # Given v2 approved, effective in ten days
    effective = timezone.now() + timedelta(days=10)
    request = propose(board.proposer, draft_sla(board.proposer, org), effective_from=effective)
    review(board.voters[0], request)
    review(board.voters[1], request)

    # Then until that date v1 stays in force, and from it v2 is
    assert in_force(org, timezone.now()) == 1
    assert in_force(org, effective - timedelta(seconds=1)) == 1
    assert in_force(org, effective) == 2
    assert in_force(org, effective + timedelta(days=100)) == 2
    # And the other definition is unaffected
    assert in_force(org, effective + timedelta(days=100), code=OFFER) == 1


def test_approval_never_backdates_a_version(org, board):
    # Given a proposal whose effective date is already a month in the past
    past = timezone.now() - timedelta(days=30)
    request = propose(board.proposer, draft_sla(board.proposer, org), effective_from=past)

    # When it is approved
    review(board.voters[0], request)
    review(board.voters[1], request)

    # Then it takes effect at the approval, not before
    version = DefinitionVersion.objects.get(pk=request.version_id)
    assert version.status == VersionStatus.APPROVED
    assert version.effective_from >= version.approved_at
    assert in_force(org, past + timedelta(days=1)) == 1
    assert in_force(org, version.approved_at) == 2


def test_a_voting_proposer_cannot_review_their_own_proposal(org, board):
    # Given a proposal by a member who holds a voting seat
    assert board.board.members.filter(user=board.proposer, can_vote=True).exists()
    request = propose(board.proposer, draft_sla(board.proposer, org))

    # When they try to approve it
    with pytest.raises(ValidationError) as caught:
        review(board.proposer, request)

    # Then it is refused and nothing is recorded
    assert "reviewer" in caught.value.message_dict
    assert not Review.objects.exists()
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN


def test_a_seatless_proposer_cannot_review_their_own_proposal(org, make_member):
    seatless = board_build(org, make_member, voters=2, quorum=1, proposer_votes=False)
    request = propose(seatless.proposer, draft_sla(seatless.proposer, org))

    with pytest.raises((ValidationError, PermissionDenied)):
        review(seatless.proposer, request)

    assert not Review.objects.exists()
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN


def test_a_non_voting_member_cannot_review(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    with pytest.raises(PermissionDenied):
        review(board.non_voters[0], request)

    assert not Review.objects.exists()


def test_a_board_role_member_without_a_seat_cannot_review(org, board, make_member):
    request = propose(board.proposer, draft_sla(board.proposer, org))
    unseated = make_member(MembershipRole.BOARD, org, username="acme-unseated")

    with pytest.raises(PermissionDenied):
        review(unseated, request)

    assert not Review.objects.exists()


def test_another_organizations_board_member_cannot_review(org, board, other_board):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    for outsider in (other_board.proposer, *other_board.voters):
        with pytest.raises(PermissionDenied):
            review(outsider, request)

    assert not Review.objects.exists()
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN


def test_an_inactive_voter_cannot_review(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))
    voter = board.voters[0]
    voter.is_active = False
    voter.save(update_fields=["is_active"])

    with pytest.raises(PermissionDenied):
        review(voter, request)

    assert not Review.objects.exists()


def test_a_member_reviews_only_once(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))
    review(board.voters[0], request, APPROVE)

    # Not twice the same way, and no change of mind either
    for decision in (APPROVE, REJECT):
        with pytest.raises(ValidationError) as caught:
            review(board.voters[0], request, decision)
        assert "reviewer" in caught.value.message_dict

    assert Review.objects.filter(change_request=request).count() == 1
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN


@pytest.mark.parametrize("comment", ["", "  \n\t"])
def test_a_review_needs_a_comment(org, board, comment):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    with pytest.raises(ValidationError) as caught:
        review(board.voters[0], request, APPROVE, comment=comment)

    assert "comment" in caught.value.message_dict
    assert not Review.objects.exists()


def test_a_review_needs_a_known_decision(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    with pytest.raises(ValidationError) as caught:
        review(board.voters[0], request, "abstain")

    assert "decision" in caught.value.message_dict
    assert not Review.objects.exists()


def test_a_decided_request_takes_no_more_reviews(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))
    review(board.voters[0], request)
    review(board.voters[1], request)

    with pytest.raises(ValidationError) as caught:
        review(board.voters[2], request, REJECT)

    assert "status" in caught.value.message_dict
    assert Review.objects.filter(change_request=request).count() == 2
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.APPROVED
    assert request.version.status == VersionStatus.APPROVED


# --- Rejection --------------------------------------------------------------------------------


def test_a_request_is_rejected_once_quorum_is_out_of_reach(org, board):
    # Given quorum 2 and three voters besides the proposer
    draft = draft_sla(board.proposer, org)
    request = propose(board.proposer, draft)

    # When one rejects, approval is still possible: the request stays open
    review(board.voters[0], request, REJECT, comment="Too lenient.")
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN

    # When a second rejects, at most one approval is left: the request is rejected
    review(board.voters[1], request, REJECT, comment="Agree, too lenient.")
    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.REJECTED
    assert request.decided_at is not None
    assert draft.status == VersionStatus.DRAFT
    assert draft.approved_at is None
    # And v1 stays in force, now and later
    assert in_force(org, timezone.now() + timedelta(days=365)) == 1


def test_a_single_rejection_decides_when_every_voter_is_needed(org, make_member):
    tight = board_build(org, make_member, voters=2, quorum=2)
    draft = draft_sla(tight.proposer, org)
    request = propose(tight.proposer, draft)

    review(tight.voters[0], request, REJECT, comment="No.")

    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.REJECTED
    assert draft.status == VersionStatus.DRAFT


def test_a_rejection_does_not_block_approval_while_quorum_is_reachable(org, board):
    request = propose(board.proposer, draft_sla(board.proposer, org))

    review(board.voters[0], request, APPROVE)
    review(board.voters[1], request, REJECT, comment="I disagree.")
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN

    review(board.voters[2], request, APPROVE)
    request.refresh_from_db()
    assert request.status == ChangeRequestStatus.APPROVED
    assert request.version.status == VersionStatus.APPROVED


def test_a_rejected_version_can_be_edited_and_proposed_again(org, board):
    # Given a rejected proposal
    draft = draft_sla(board.proposer, org, max_days=30)
    first = propose(board.proposer, draft)
    review(board.voters[0], first, REJECT, comment="Too lenient.")
    review(board.voters[1], first, REJECT, comment="Too lenient.")

    # When the draft is edited and proposed again
    governance.version_draft_update(actor=board.proposer, version=draft, parameters={"max_days": 9})
    second = propose(board.proposer, draft, reason="Tightened after review.")

    # Then a new request is open and the rejected one keeps its decision
    first.refresh_from_db()
    assert second.pk != first.pk
    assert first.status == ChangeRequestStatus.REJECTED
    assert second.status == ChangeRequestStatus.OPEN
    assert ChangeRequest.objects.filter(version=draft, status="open").get() == second
    # And earlier votes do not count on the new request: it goes through on fresh approvals
    review(board.voters[0], second)
    review(board.voters[1], second)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.APPROVED
    assert draft.parameters["max_days"] == 9


def test_inactive_voters_do_not_count_towards_a_proposals_quorum(org, board):
    """An inactive voter cannot review, so they must not count towards a reachable quorum.

    Otherwise the proposal is accepted with too few active voters and, after one rejection,
    waits forever for a vote that can never come.
    """
    # Given quorum 2 and three voters besides the proposer, two of whom have left
    for voter in board.voters[1:]:
        voter.is_active = False
        voter.save(update_fields=["is_active"])
    draft = draft_sla(board.proposer, org)

    # When the proposer proposes, only one active member could approve: it is refused
    with pytest.raises(ValidationError) as caught:
        propose(board.proposer, draft)

    assert "board" in caught.value.message_dict
    assert not ChangeRequest.objects.exists()


# --- Withdrawal -------------------------------------------------------------------------------


def test_the_proposer_withdraws_an_open_request(org, board):
    draft = draft_sla(board.proposer, org)
    request = propose(board.proposer, draft)
    review(board.voters[0], request)

    governance.change_request_withdraw(
        actor=board.proposer, change_request=request, reason="Needs more data."
    )

    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.WITHDRAWN
    assert request.decided_at is not None
    assert draft.status == VersionStatus.DRAFT
    # And a withdrawn request takes no more reviews
    with pytest.raises(ValidationError):
        review(board.voters[1], request)
    # And the draft can be proposed again
    assert propose(board.proposer, draft).status == ChangeRequestStatus.OPEN


def test_only_the_proposer_withdraws(org, board, other_board, superuser):
    draft = draft_sla(board.proposer, org)
    request = propose(board.proposer, draft)

    for someone_else in (board.voters[0], board.non_voters[0], other_board.proposer, superuser):
        with pytest.raises(PermissionDenied):
            governance.change_request_withdraw(
                actor=someone_else, change_request=request, reason="Not mine."
            )

    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.OPEN
    assert draft.status == VersionStatus.PROPOSED


def test_a_decided_request_cannot_be_withdrawn(org, board):
    draft = draft_sla(board.proposer, org)
    request = propose(board.proposer, draft)
    review(board.voters[0], request)
    review(board.voters[1], request)

    with pytest.raises(ValidationError):
        governance.change_request_withdraw(
            actor=board.proposer, change_request=request, reason="Changed my mind."
        )

    request.refresh_from_db()
    draft.refresh_from_db()
    assert request.status == ChangeRequestStatus.APPROVED
    assert draft.status == VersionStatus.APPROVED


# --- Retirement -------------------------------------------------------------------------------


def test_retiring_takes_an_approved_version_out_of_force_for_good(org, board):
    v1 = version_of(org, 1)
    assert in_force(org, timezone.now()) == 1

    governance.version_retire(actor=board.proposer, version=v1, reason="Replaced by policy X.")

    v1.refresh_from_db()
    assert v1.status == VersionStatus.RETIRED
    assert v1.retired_at is not None
    assert v1.parameters["max_days"] == 7
    for at in (v1.effective_from, timezone.now(), timezone.now() + timedelta(days=3650)):
        assert in_force(org, at) is None


def test_a_retired_newer_version_is_never_in_force(org, board):
    # Given v2 approved and in force from now
    request = propose(board.proposer, draft_sla(board.proposer, org), effective_from=timezone.now())
    review(board.voters[0], request)
    review(board.voters[1], request)
    assert in_force(org, timezone.now() + timedelta(days=1)) == 2

    # When v2 is retired
    governance.version_retire(actor=board.voters[2], version=request.version, reason="Too strict.")

    # Then it is not in force at any time
    v2 = version_of(org, 2)
    assert v2.status == VersionStatus.RETIRED
    for at in (v2.effective_from, timezone.now(), timezone.now() + timedelta(days=3650)):
        assert in_force(org, at) != 2


@pytest.mark.parametrize("stage", ["draft", "proposed", "retired"])
def test_only_approved_versions_can_be_retired(org, board, stage):
    if stage == "retired":
        version = version_of(org, 1)
        governance.version_retire(actor=board.proposer, version=version, reason="Old.")
    else:
        version = draft_sla(board.proposer, org)
        if stage == "proposed":
            propose(board.proposer, version)
    version.refresh_from_db()
    status_before = version.status

    with pytest.raises(ValidationError) as caught:
        governance.version_retire(actor=board.proposer, version=version, reason="Tidy up.")

    assert "status" in caught.value.message_dict
    version.refresh_from_db()
    assert version.status == status_before


@pytest.mark.parametrize("reason", ["", "   "])
def test_retiring_needs_a_reason(org, board, reason):
    v1 = version_of(org, 1)

    with pytest.raises(ValidationError) as caught:
        governance.version_retire(actor=board.proposer, version=v1, reason=reason)

    assert "reason" in caught.value.message_dict
    v1.refresh_from_db()
    assert v1.status == VersionStatus.APPROVED
    assert v1.retired_at is None


# --- History ----------------------------------------------------------------------------------


def _latest(obj):
    return obj.history.order_by("-history_date", "-history_id").first()


def test_every_step_of_an_approval_is_in_history_with_actor_and_reason(org, board):
    proposer, first, second = board.proposer, board.voters[0], board.voters[1]

    draft = draft_sla(proposer, org)
    created = _latest(draft)
    assert (created.history_user, created.history_change_reason) == (proposer, "Draft created")
    assert created.history_type == "+"

    governance.version_draft_update(actor=first, version=draft, change_summary="Reworded")
    edited = _latest(draft)
    assert (edited.history_user, edited.history_change_reason) == (first, "Draft edited")

    request = propose(proposer, draft, reason="Candidates wait too long.")
    proposed = _latest(draft)
    assert proposed.history_user == proposer
    assert proposed.history_change_reason == "Proposed: Candidates wait too long."
    assert proposed.status == VersionStatus.PROPOSED
    opened = _latest(request)
    assert (opened.history_user, opened.history_change_reason) == (proposer, "Proposed")

    review(first, request, comment="Fine by me.")
    review(second, request, comment="Good for candidates.")
    approved = _latest(draft)
    assert approved.history_user == second
    assert approved.history_change_reason == "Approved by the board: Good for candidates."
    assert approved.status == VersionStatus.APPROVED
    decided = _latest(request)
    assert decided.history_user == second
    assert decided.history_change_reason == "Approved: Good for candidates."

    governance.version_retire(actor=first, version=draft, reason="Superseded.")
    retired = _latest(draft)
    assert (retired.history_user, retired.history_change_reason) == (first, "Retired: Superseded.")

    # And no step of this version went unattributed
    rows = list(draft.history.all())
    assert len(rows) == 5
    assert all(row.history_user is not None and row.history_change_reason for row in rows)


def test_rejection_and_withdrawal_are_in_history_with_actor_and_reason(org, board):
    draft = draft_sla(board.proposer, org)
    rejected_request = propose(board.proposer, draft)
    review(board.voters[0], rejected_request, REJECT, comment="Too lenient.")
    review(board.voters[1], rejected_request, REJECT, comment="Not now.")

    rejected = _latest(draft)
    assert rejected.history_user == board.voters[1]
    assert rejected.history_change_reason == "Rejected by the board: Not now."
    rejected_request_row = _latest(rejected_request)
    assert rejected_request_row.history_user == board.voters[1]
    assert rejected_request_row.history_change_reason == "Rejected: Not now."

    withdrawn_request = propose(board.proposer, draft)
    governance.change_request_withdraw(
        actor=board.proposer, change_request=withdrawn_request, reason="Waiting for data."
    )
    withdrawn = _latest(draft)
    assert withdrawn.history_user == board.proposer
    assert withdrawn.history_change_reason == "Proposal withdrawn: Waiting for data."
    withdrawn_row = _latest(withdrawn_request)
    assert withdrawn_row.history_user == board.proposer
    assert withdrawn_row.history_change_reason == "Withdrawn: Waiting for data."


# --- Other organizations and roles ---------------------------------------------------------------


def test_another_organizations_board_cannot_draft_propose_or_retire_here(org, board, other_board):
    outsider = other_board.proposer
    draft = draft_sla(board.proposer, org)
    v1 = version_of(org, 1)

    with pytest.raises(PermissionDenied):
        draft_sla(outsider, org)
    with pytest.raises(PermissionDenied):
        governance.version_draft_update(actor=outsider, version=draft, parameters={"max_days": 1})
    with pytest.raises(PermissionDenied):
        propose(outsider, draft)
    with pytest.raises(PermissionDenied):
        governance.version_retire(actor=outsider, version=v1, reason="Hostile takeover.")

    draft.refresh_from_db()
    v1.refresh_from_db()
    assert definition_of(org).versions.count() == 2
    assert (draft.status, draft.parameters["max_days"]) == (VersionStatus.DRAFT, 10)
    assert v1.status == VersionStatus.APPROVED
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize(
    "role",
    [
        MembershipRole.TA_OPS,
        MembershipRole.HRBP,
        MembershipRole.RECRUITER,
        MembershipRole.IT_OPS,
        MembershipRole.ANALYST,
    ],
)
def test_roles_other_than_board_cannot_draft_propose_or_retire(org, board, make_member, role):
    member = make_member(role, org, username=f"acme-{role}")
    draft = draft_sla(board.proposer, org)

    with pytest.raises(PermissionDenied):
        draft_sla(member, org)
    with pytest.raises(PermissionDenied):
        propose(member, draft)
    with pytest.raises(PermissionDenied):
        governance.version_retire(actor=member, version=version_of(org, 1), reason="Mine now.")

    assert definition_of(org).versions.count() == 2
    assert not ChangeRequest.objects.exists()


# --- Pending reviews --------------------------------------------------------------------------


def test_pending_reviews_lists_exactly_what_waits_for_the_user(org, other_org, board, other_board):
    # Given two open requests in org (by the proposer, and by voter 0) and one in other_org
    proposer, a, b, c = board.proposer, *board.voters
    by_proposer = propose(proposer, draft_sla(proposer, org))
    by_a = propose(a, draft_offer(a, org))
    elsewhere = propose(other_board.proposer, draft_sla(other_board.proposer, other_org))

    # Then each voter sees the open requests of their board they neither made nor reviewed
    assert governance.pending_reviews(user=proposer) == [by_a]
    assert governance.pending_reviews(user=a) == [by_proposer]
    assert governance.pending_reviews(user=b) == [by_proposer, by_a]  # oldest first
    assert governance.pending_reviews(user=board.non_voters[0]) == []
    assert governance.pending_reviews(user=other_board.voters[0]) == [elsewhere]
    assert governance.pending_reviews(user=other_board.proposer) == []
    assert governance.pending_reviews(user=AnonymousUser()) == []

    # When b reviews one, it no longer waits for b
    review(b, by_a, REJECT, comment="Not convinced.")
    assert governance.pending_reviews(user=b) == [by_proposer]
    assert governance.pending_reviews(user=c) == [by_proposer, by_a]

    # When a request is decided, it waits for nobody
    review(b, by_proposer)
    review(c, by_proposer)
    assert governance.pending_reviews(user=a) == []
    assert governance.pending_reviews(user=c) == [by_a]


def test_pending_reviews_ignores_a_board_without_the_user(org, make_member):
    # A board-role member of org without a seat has nothing to review
    small = board_build(org, make_member, voters=2, quorum=1)
    propose(small.proposer, draft_sla(small.proposer, org))
    unseated = make_member(MembershipRole.BOARD, org, username="acme-unseated")

    assert governance.pending_reviews(user=unseated) == []
    assert ReviewBoard.objects.count() == 1
