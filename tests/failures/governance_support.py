"""Builders shared by the governance tests: review boards, drafts and proposals.

Plain functions rather than fixtures, so each test module states the board it works with
in its own small fixtures.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from failures import governance
from failures.choices import MembershipRole
from failures.models import (
    BoardMember,
    ChangeRequest,
    DefinitionVersion,
    FailureDefinition,
    Organization,
    ReviewBoard,
)

SLA = "SCR-SLA-BREACH"
OFFER = "OFR-DECLINED"


@dataclass
class Board:
    """A review board with a proposer (who holds a voting seat) and voting members."""

    board: ReviewBoard
    proposer: Any
    voters: list[Any]  # voting members besides the proposer
    non_voters: list[Any] = field(default_factory=list)

    @property
    def organization(self) -> Organization:
        return self.board.organization


def board_build(
    organization: Organization,
    make_member: Callable[..., Any],
    *,
    voters: int = 3,
    quorum: int = 2,
    non_voters: int = 0,
    proposer_votes: bool = True,
) -> Board:
    """A board of `organization`: a board-role proposer plus `voters` voting members."""
    prefix = organization.slug

    def member(name: str) -> Any:
        return make_member(MembershipRole.BOARD, organization, username=f"{prefix}-{name}")

    board = ReviewBoard.objects.create(organization=organization, quorum=quorum)
    proposer = member("proposer")
    if proposer_votes:
        BoardMember.objects.create(board=board, user=proposer, can_vote=True)
    seated = [member(f"voter{i}") for i in range(1, voters + 1)]
    for user in seated:
        BoardMember.objects.create(board=board, user=user, can_vote=True)
    observers = [member(f"observer{i}") for i in range(1, non_voters + 1)]
    for user in observers:
        BoardMember.objects.create(board=board, user=user, can_vote=False)
    return Board(board=board, proposer=proposer, voters=seated, non_voters=observers)


def definition_of(organization: Organization, code: str = SLA) -> FailureDefinition:
    return organization.definitions.get(code=code)


def version_of(organization: Organization, number: int, code: str = SLA) -> DefinitionVersion:
    return DefinitionVersion.objects.get(
        definition__organization=organization, definition__code=code, number=number
    )


def draft_sla(actor: Any, organization: Organization, max_days: int = 10) -> DefinitionVersion:
    """A new draft of the organization's SCR-SLA-BREACH definition."""
    return governance.version_draft_create(
        actor=actor,
        definition=definition_of(organization, SLA),
        detector="stage_sla",
        parameters={"max_days": max_days},
        change_summary=f"Screening may take {max_days} days.",
    )


def draft_offer(actor: Any, organization: Organization) -> DefinitionVersion:
    """A new draft of the organization's OFR-DECLINED definition."""
    return governance.version_draft_create(
        actor=actor,
        definition=definition_of(organization, OFFER),
        detector="offer_declined",
        parameters={},
        change_summary="Same rule, reworded.",
    )


def propose(
    actor: Any,
    version: DefinitionVersion,
    effective_from: datetime | None = None,
    reason: str = "Candidates wait too long.",
) -> ChangeRequest:
    """Propose a draft, by default to take effect in 30 days."""
    return governance.version_propose(
        actor=actor,
        version=version,
        effective_from=effective_from or timezone.now() + timedelta(days=30),
        reason=reason,
    )


def in_force(organization: Organization, at: datetime, code: str = SLA) -> int | None:
    """Number of the version of `code` in force at `at`, or None."""
    from failures.selectors import definition_versions_in_force

    for version in definition_versions_in_force(at=at, organization_id=organization.pk):
        if version.definition.code == code:
            return version.number
    return None
