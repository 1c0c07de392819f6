"""Recruitee: company webhooks (Settings > Apps and plugins > Webhooks).

Recruitee POSTs `{"id", "attempt_count", "created_at", "event_type", "event_subtype",
"payload": {"candidate", "offer", "details", ...}}`; `id` stays the same across retries
(`attempt_count` grows), so it is the dedupe key.

- Signature: `X-Recruitee-Signature`, the hex (base16) HMAC-SHA256 of the raw body keyed
  with the webhook's secret, shown in the webhook's configuration dialog.
- Answer: 200, exactly; any other status is a failed delivery that Recruitee retries with
  growing delays.
- Test: the dialog's *Test* button posts `{"test": true}`, and the *Test payload* buttons an
  example event with `"test": true`; a webhook is only created once the test is answered
  200. A test is never an event: it is stored as ignored when signed, and answered 200
  without storing anything when it comes unsigned (before the secret was entered here).
- Events: `candidate_created` and `candidate_assigned` (an application to a job),
  `candidate_moved` with subtype `stage_changed`, `disqualified` or `requalified`. Other
  event types are stored and ignored.
- A Recruitee application is a candidate's placement on a job (an *offer*): its id here is
  `<candidate id>:<offer id>`. Talent pools (offers of kind `talent_pool`) are not jobs.
- Stages map by their id, then their name, then Recruitee's own stage category (so one
  mapping of e.g. `hire` covers every job's hire stage); the stage left comes with the move.
- Derived: a disqualification reason the connection does not map counts as a company
  rejection (`reason.outcome`); a move without `from_stage` takes the stage left from the
  mirror (`stage.previous`).
"""

from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Handshake,
    Inbound,
    SigningKey,
    StoredDelivery,
    Verification,
    ats_id,
    body_hmac_hex,
    dig,
    require,
)
from integrations.ats.candidate_events import (
    disqualification_events,
    event_id_prefix,
    stage_move_event,
    timestamp,
)
from integrations.ats.mirror import StageName

SIGNATURE_HEADER = "X-Recruitee-Signature"
APPLICATION_EVENTS = frozenset({"candidate_created", "candidate_assigned"})
MOVE_SUBTYPES = frozenset({"stage_changed", "disqualified", "requalified"})
TEST_EVENT_TYPE = "test"


class RecruiteeAdapter(AtsAdapter):
    """Recruitee candidate webhooks, signed with the webhook's secret."""

    vendor = AtsVendor.RECRUITEE
    success_status = 200
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def handshake(self, inbound: Inbound) -> Handshake | None:
        # Recruitee tests a webhook before it can be saved, possibly before its secret was
        # entered here: an unsigned test is answered and nothing is stored.
        if _is_test(inbound.payload) and not inbound.headers.get(SIGNATURE_HEADER):
            return Handshake(status=200, body={"status": "test"})
        return None

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        if _is_test(payload):
            # A signed test delivery: kept (the operator sees the webhook works), no event.
            return Envelope(
                event_type=TEST_EVENT_TYPE,
                dedupe_key=f"test:{inbound.received_at.isoformat()}",
                is_ping=True,
            )
        event_type = require(payload, "event_type")
        if not isinstance(event_type, str):
            raise DeliveryInvalid("event_type", "Must be a string.")
        event_id = ats_id(require(payload, "id"), "id")
        subtype = payload.get("event_subtype")
        full_type = (
            f"{event_type}.{subtype}" if isinstance(subtype, str) and subtype else event_type
        )
        return Envelope(event_type=full_type[:120], dedupe_key=event_id)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        return body_hmac_hex(
            keys, "hex HMAC-SHA256 of body", inbound.headers.get(SIGNATURE_HEADER), inbound.body
        )

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        payload = delivery.payload
        if _is_test(payload):
            return None
        event_type, _, subtype = delivery.event_type.partition(".")
        if event_type not in APPLICATION_EVENTS and not (
            event_type == "candidate_moved" and subtype in MOVE_SUBTYPES
        ):
            return None
        if dig(payload, "payload.offer.kind") == "talent_pool":
            return []  # a talent pool is not a job: nothing to track
        candidate_id = ats_id(require(payload, "payload.candidate.id"), "payload.candidate.id")
        offer_id = ats_id(require(payload, "payload.offer.id"), "payload.offer.id")
        job: dict[str, Any] = {"id": offer_id}
        if isinstance(dig(payload, "payload.offer.title"), str):
            job["title"] = payload["payload"]["offer"]["title"][:300]
        application: dict[str, Any] = {"id": f"{candidate_id}:{offer_id}"}
        application["candidate_id"] = candidate_id
        source = dig(payload, "payload.candidate.source")
        if isinstance(source, str) and source.strip():
            application["source"] = source.strip()[:200]
        occurred_at = timestamp(require(payload, "created_at"), "created_at")
        base = {"application": application, "job": job}
        prefix = event_id_prefix(self.vendor, delivery.dedupe_key)
        details = dig(payload, "payload.details") or {}
        if not isinstance(details, dict):
            raise DeliveryInvalid("payload.details", "Must be a JSON object.")

        if subtype == "disqualified":
            reason = details.get("disqualify_reason") or details.get("reason")
            reason_id = reason.get("id") if isinstance(reason, dict) else None
            reason_name = reason.get("name") if isinstance(reason, dict) else reason
            return disqualification_events(
                prefix,
                base,
                reason=reason_name,
                reason_id=reason_id,
                occurred_at=occurred_at,
                mirror=mirror,
            )

        to_stage = details.get("to_stage")
        if event_type in APPLICATION_EVENTS:
            event: dict[str, Any] = {
                **base,
                "id": f"{prefix}:created",
                "kind": EventKind.APPLICATION_CREATED,
                "occurred_at": occurred_at,
                "details": {"how": subtype} if subtype else {},
            }
            if to_stage:
                stage = _stage(to_stage, "payload.details.to_stage", mirror)
                event["stage"] = {"name": stage.name, "category": stage.category}
            return [event]

        if not to_stage:
            raise DeliveryInvalid("payload.details.to_stage", "This field is required.")
        stage = _stage(to_stage, "payload.details.to_stage", mirror)
        from_stage = details.get("from_stage")
        previous = from_stage.get("name") if isinstance(from_stage, dict) else None
        return [
            stage_move_event(
                prefix,
                base,
                stage,
                occurred_at=occurred_at,
                mirror=mirror,
                previous_stage=previous if isinstance(previous, str) else None,
            )
        ]


def _stage(value: Any, field: str, mirror: Any) -> StageName:
    """The name Recruitee gives a stage and the category its id, name or kind maps to."""
    if not isinstance(value, dict):
        raise DeliveryInvalid(field, "Must be a JSON object.")
    name = value.get("name")
    keys = [value.get("id"), name, value.get("category")]
    resolved = mirror.stage_mapped(
        *[str(key) for key in keys if key not in (None, "")], field=field
    )
    shown = name.strip()[:200] if isinstance(name, str) and name.strip() else resolved.name
    return StageName(name=shown, category=resolved.category)


def _is_test(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("test") is True
