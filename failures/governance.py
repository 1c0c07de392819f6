"""Governance use-cases: versions of definitions, and the review board that approves them.

A version is drafted, proposed (which opens a change request), reviewed by the voting
members of the organization's board, and approved once approvals reach the quorum — or
rejected once they no longer can. Nobody reviews their own proposal. Every step is in
history with its actor and reason.
"""

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from failures.choices import ChangeRequestStatus, ReviewDecision, VersionStatus
from failures.detectors import detector_for
from failures.models import (
    BoardMember,
    ChangeRequest,
    DefinitionVersion,
    FailureDefinition,
    Review,
    ReviewBoard,
)
from failures.selectors import scope_queryset

logger = logging.getLogger(__name__)

# Version fields that say how exemptions and compliance exclusions apply.
POLICY_FIELDS = frozenset(
    {"strategic_policy", "strategic_multiplier", "excluded_reasons", "on_reopen"}
)


def _require(actor: AbstractBaseUser, permission: str, organization_id: int) -> None:
    """PermissionDenied unless the actor's role in that organization grants `permission`."""
    from failures.models import Organization

    allowed = scope_queryset(
        Organization.objects.filter(pk=organization_id),
        user=actor,
        organization="pk",
        permission=permission,
    ).exists()
    if not (actor.is_active and allowed):
        raise PermissionDenied("Your role in this organization does not allow this.")


def _history(obj: Any, actor: AbstractBaseUser | None, reason: str) -> None:
    obj._history_user = actor
    obj._change_reason = reason[:100]


@transaction.atomic
def version_draft_create(
    *,
    actor: AbstractBaseUser,
    definition: FailureDefinition,
    detector: str,
    parameters: dict[str, Any],
    change_summary: str = "",
    compliance_note: str = "",
    **policy: Any,
) -> DefinitionVersion:
    """Start a new draft version of a definition (numbered after the last one).

    `policy` may set strategic_policy, strategic_multiplier and excluded_reasons.
    """
    _require(actor, "failures.add_definitionversion", definition.organization_id)
    clean_parameters = detector_for(detector).validate_parameters(parameters)
    FailureDefinition.objects.select_for_update().filter(pk=definition.pk).first()
    last = definition.versions.aggregate(last=Max("number"))["last"] or 0
    version = DefinitionVersion(
        definition=definition,
        number=last + 1,
        detector=detector,
        parameters=clean_parameters,
        change_summary=change_summary,
        compliance_note=compliance_note,
        created_by=actor,
    )
    unknown = set(policy) - POLICY_FIELDS
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Unknown field."})
    for name, value in policy.items():
        setattr(version, name, value)
    version.full_clean()
    _history(version, actor, "Draft created")
    version.save()
    return version


@transaction.atomic
def version_draft_update(
    *, actor: AbstractBaseUser, version: DefinitionVersion, **changes: Any
) -> DefinitionVersion:
    """Edit a draft; proposed and approved versions are not drafts any more."""
    _require(actor, "failures.change_definitionversion", version.definition.organization_id)
    version = DefinitionVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.DRAFT:
        raise ValidationError(
            {"status": f"Only drafts can be edited; this version is {version.status}."}
        )
    editable = {"detector", "parameters", "change_summary", "compliance_note", *POLICY_FIELDS}
    unknown = set(changes) - editable
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "This field cannot be edited."})
    for name, value in changes.items():
        setattr(version, name, value)
    version.parameters = detector_for(version.detector).validate_parameters(version.parameters)
    version.full_clean()
    _history(version, actor, "Draft edited")
    version.save()
    return version


def board_voters(board: ReviewBoard) -> list[int]:
    """User ids of the board's voting members who can still vote (active accounts)."""
    return list(
        board.members.filter(can_vote=True, user__is_active=True).values_list("user_id", flat=True)
    )


@transaction.atomic
def version_propose(
    *,
    actor: AbstractBaseUser,
    version: DefinitionVersion,
    effective_from: datetime,
    reason: str,
) -> ChangeRequest:
    """Propose a draft for approval from a date: opens a change request for the board."""
    organization_id = version.definition.organization_id
    _require(actor, "failures.add_definitionversion", organization_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why this change is needed."})
    if effective_from is None or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": "Give an effective date with a time zone."})
    version = DefinitionVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.DRAFT:
        raise ValidationError(
            {"status": f"Only drafts can be proposed; this one is {version.status}."}
        )
    board = ReviewBoard.objects.filter(organization_id=organization_id).first()
    if board is None:
        raise ValidationError({"board": "This organization has no review board yet."})
    eligible = [uid for uid in board_voters(board) if uid != actor.pk]
    if len(eligible) < board.quorum:
        raise ValidationError(
            {
                "board": f"The board needs {board.quorum} voting members besides the proposer; "
                f"it has {len(eligible)}."
            }
        )
    now = timezone.now()
    version.status = VersionStatus.PROPOSED
    version.effective_from = effective_from
    _history(version, actor, f"Proposed: {reason}")
    version.save(update_fields=["status", "effective_from"])
    request = ChangeRequest(
        organization_id=organization_id,
        version=version,
        proposed_by=actor,
        proposed_at=now,
        reason=reason,
    )
    _history(request, actor, "Proposed")
    request.save()
    logger.info("change request opened id=%s version=%s", request.pk, version.pk)
    return request


@transaction.atomic
def change_request_review(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    decision: str,
    comment: str,
) -> Review:
    """A voting board member approves or rejects; the request is decided at quorum."""
    request = (
        ChangeRequest.objects.select_for_update()
        .select_related("version__definition")
        .get(pk=change_request.pk)
    )
    if decision not in ReviewDecision.values:
        raise ValidationError({"decision": "Approve or reject."})
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "A review needs a comment."})
    board = ReviewBoard.objects.filter(organization_id=request.organization_id).first()
    seat = (
        BoardMember.objects.filter(board=board, user=actor, can_vote=True).first()
        if board is not None
        else None
    )
    if seat is None or not actor.is_active:
        raise PermissionDenied("Only voting members of this organization's board review.")
    if request.status != ChangeRequestStatus.OPEN:
        raise ValidationError({"status": f"This change request is already {request.status}."})
    if request.proposed_by_id == actor.pk:
        raise ValidationError({"reviewer": "Nobody reviews their own proposal."})
    if request.reviews.filter(reviewer=actor).exists():
        raise ValidationError({"reviewer": "You have already reviewed this change request."})
    review = Review.objects.create(
        change_request=request, reviewer=actor, decision=decision, comment=comment
    )
    _decide_if_possible(request, board, actor, comment)
    logger.info("change request reviewed id=%s decision=%s", request.pk, decision)
    return review


def _decide_if_possible(
    request: ChangeRequest, board: ReviewBoard, actor: AbstractBaseUser, comment: str
) -> None:
    approvals = request.reviews.filter(decision=ReviewDecision.APPROVE).count()
    reviewed = set(request.reviews.values_list("reviewer_id", flat=True))
    still_to_vote = [
        uid for uid in board_voters(board) if uid != request.proposed_by_id and uid not in reviewed
    ]
    now = timezone.now()
    version = request.version
    if approvals >= board.quorum:
        request.status = ChangeRequestStatus.APPROVED
        version.status = VersionStatus.APPROVED
        version.approved_at = now
        # Approval never back-dates a rule: a past effective date means "from now".
        version.effective_from = max(version.effective_from, now)
        _history(version, actor, f"Approved by the board: {comment}")
        version.save(update_fields=["status", "approved_at", "effective_from"])
    elif approvals + len(still_to_vote) < board.quorum:
        request.status = ChangeRequestStatus.REJECTED
        version.status = VersionStatus.DRAFT
        _history(version, actor, f"Rejected by the board: {comment}")
        version.save(update_fields=["status"])
    else:
        return
    request.decided_at = now
    _history(request, actor, f"{request.get_status_display()}: {comment}")
    request.save(update_fields=["status", "decided_at"])


@transaction.atomic
def change_request_withdraw(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, reason: str
) -> ChangeRequest:
    """The proposer takes an open request back; the version returns to draft."""
    request = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if request.proposed_by_id != actor.pk:
        raise PermissionDenied("Only the proposer can withdraw a change request.")
    if request.status != ChangeRequestStatus.OPEN:
        raise ValidationError({"status": f"This change request is already {request.status}."})
    request.status = ChangeRequestStatus.WITHDRAWN
    request.decided_at = timezone.now()
    _history(request, actor, f"Withdrawn: {reason}")
    request.save(update_fields=["status", "decided_at"])
    version = request.version
    version.status = VersionStatus.DRAFT
    _history(version, actor, f"Proposal withdrawn: {reason}")
    version.save(update_fields=["status"])
    return request


@transaction.atomic
def version_retire(
    *, actor: AbstractBaseUser, version: DefinitionVersion, reason: str
) -> DefinitionVersion:
    """Take an approved version out of force for good."""
    _require(actor, "failures.change_definitionversion", version.definition.organization_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the version is retired."})
    version = DefinitionVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.APPROVED:
        raise ValidationError({"status": "Only approved versions can be retired."})
    version.status = VersionStatus.RETIRED
    version.retired_at = timezone.now()
    _history(version, actor, f"Retired: {reason}")
    version.save(update_fields=["status", "retired_at"])
    return version


def pending_reviews(*, user: AbstractBaseUser) -> list[ChangeRequest]:
    """Open change requests that wait for this user's vote."""
    if not user.is_authenticated:
        return []
    boards = BoardMember.objects.filter(user=user, can_vote=True).values_list(
        "board__organization_id", flat=True
    )
    return list(
        ChangeRequest.objects.filter(
            status=ChangeRequestStatus.OPEN, organization_id__in=list(boards)
        )
        .exclude(proposed_by=user)
        .exclude(reviews__reviewer=user)
        .select_related("version__definition", "proposed_by")
        .order_by("proposed_at")
    )
