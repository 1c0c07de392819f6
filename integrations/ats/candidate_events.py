"""Canonical events shared by the adapters of ATSs that send a candidate's state, not a diff.

Workable and Recruitee say where a candidate is now (and whether it was disqualified, and
why); these helpers turn that into canonical payloads the same way for both: the stage
through the connection's mapping, the left stage derived from the mirror, a
disqualification reason through the connection's reasons (default: rejected by the
company), and deterministic event ids so that processing a delivery twice records nothing
twice.
"""

import hashlib
from typing import Any

from django.utils.dateparse import parse_datetime

from failures.choices import EventKind, StageCategory
from integrations.ats.base import DeliveryInvalid

# What a disqualification means when its reason is not mapped on the connection.
DEFAULT_OUTCOME = "rejected"


def timestamp(value: Any, field: str) -> str:
    """An ISO 8601 timestamp with a time zone, as sent; DeliveryInvalid naming the field."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise DeliveryInvalid(field, "Must be an ISO 8601 timestamp with a time zone.")
    return value


def event_id_prefix(vendor: str, dedupe_key: str) -> str:
    """Canonical event ids are `<vendor>:<dedupe key>:<what>`; long keys are hashed."""
    if len(dedupe_key) > 120:
        dedupe_key = hashlib.sha256(dedupe_key.encode()).hexdigest()
    return f"{vendor}:{dedupe_key}"


def disqualification_events(
    prefix: str,
    base: dict,
    *,
    reason: Any,
    occurred_at: str,
    mirror: Any,
    reason_id: Any = None,
) -> list[dict]:
    """Rejected, withdrawn or declined, as the connection maps the reason (id, then text).

    An unmapped or missing reason counts as a rejection by the company, marked derived.
    """
    reason_text = reason.strip()[:200] if isinstance(reason, str) else ""
    keys = [reason_text]
    if reason_id not in (None, ""):
        keys.insert(0, str(reason_id).strip())
    outcome = next((found for found in map(mirror.reason_outcome, keys) if found), None)
    details: dict[str, Any] = {"reason": reason_text} if reason_text else {}
    if reason_id not in (None, ""):
        details["reason_id"] = str(reason_id)[:200]
    if outcome is None:
        outcome = DEFAULT_OUTCOME
        details["derived"] = ["reason.outcome"]
    kinds = {
        "rejected": [EventKind.APPLICATION_REJECTED],
        "withdrawn": [EventKind.APPLICATION_WITHDRAWN],
        "declined": [EventKind.OFFER_DECLINED, EventKind.APPLICATION_WITHDRAWN],
        "hired": [EventKind.APPLICATION_HIRED],
    }[outcome]
    return [
        {
            **base,
            "id": f"{prefix}:{kind.split('.')[-1]}",
            "kind": kind,
            "occurred_at": occurred_at,
            "details": {**details, "outcome": outcome},
        }
        for kind in kinds
    ]


def stage_move_event(
    prefix: str,
    base: dict,
    stage: Any,
    *,
    occurred_at: str,
    mirror: Any,
    previous_stage: str | None = None,
) -> dict:
    """A stage change; a stage of the hired category closes the application as hired.

    When the vendor does not say which stage was left, the mirror's current stage is it
    (marked derived); an application the mirror never saw has no previous stage.
    """
    details: dict[str, Any] = {}
    if previous_stage:
        details = {"previous_stage": previous_stage}
    else:
        known = mirror.application(base["application"]["id"])
        if known is not None and known.current_stage:
            details = {"previous_stage": known.current_stage, "derived": ["stage.previous"]}
    if stage.category == StageCategory.HIRED:
        return {
            **base,
            "id": f"{prefix}:hired",
            "kind": EventKind.APPLICATION_HIRED,
            "occurred_at": occurred_at,
            "details": {**details, "stage": stage.name},
        }
    return {
        **base,
        "id": f"{prefix}:moved",
        "kind": EventKind.APPLICATION_STAGE_CHANGED,
        "occurred_at": occurred_at,
        "stage": {"name": stage.name, "category": stage.category},
        "details": details,
    }
