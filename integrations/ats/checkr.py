"""Checkr (background checks): account webhooks about candidates and reports.

Checkr POSTs `{"id", "object": "event", "type", "created_at", "webhook_url",
"data": {"object": {...}}}`; with *include_object* on, `data.object` is the whole candidate
or report. The event `id` is the dedupe key; `created_at` is when it happened.

- Signature: `X-Checkr-Signature`, the hex HMAC-SHA256 of the raw body keyed with the
  account's secret API key (a partner application's OAuth client secret for partner
  webhooks). The optional Basic Auth credentials in the webhook URL arrive as an
  `Authorization` header, which is never stored.
- Answer: 2xx (we answer 200). Checkr documents no test or ping delivery.
- Checkr knows candidates, not applications. The link is the Checkr candidate's
  `custom_id`, which the ordering integration sets to the ATS application id: a
  `candidate.created` event carrying it is linked to the application another connection of
  the same organization (the ATS) recorded, and its event keeps the Checkr candidate id in
  `details.checkr_candidate_id`; later report events name only the Checkr candidate
  (`candidate_id`) and find the application through that detail. Canonical events carry
  the ATS's application, candidate and job ids (derived from the mirror, and marked so).
  An event that cannot be linked fails naming the field, and is replayed once the link or
  the ATS's application exists.

Mapping (every event carries `details.system = "checkr"`):

| Checkr event | canonical events |
|---|---|
| candidate.created (with custom_id) | background_check.started (the check was ordered) |
| report.created | background_check.started |
| report.completed | background_check.completed (+ integration.recovered after an error) |
| report.suspended | background_check.suspended + integration.error |
| report.disputed | background_check.disputed + integration.error |
| report.canceled | background_check.failed + integration.error |
| report.resumed | integration.recovered (after an error) |
| anything else | stored and ignored |
"""

from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Inbound,
    Routed,
    SigningKey,
    StoredDelivery,
    Verification,
    ats_id,
    body_hmac_hex,
    require,
)
from integrations.ats.candidate_events import event_id_prefix, timestamp

SIGNATURE_HEADER = "X-Checkr-Signature"
SYSTEM = "checkr"
# The details key that records which Checkr candidate an application's events concern.
LINK_DETAIL = "checkr_candidate_id"

# Report events: the background-check kind they are, and whether the check is stuck.
REPORT_EVENTS: dict[str, tuple[str | None, bool]] = {
    "report.created": (EventKind.BACKGROUND_CHECK_STARTED, False),
    "report.completed": (EventKind.BACKGROUND_CHECK_COMPLETED, False),
    "report.suspended": (EventKind.BACKGROUND_CHECK_SUSPENDED, True),
    "report.disputed": (EventKind.BACKGROUND_CHECK_DISPUTED, True),
    "report.canceled": (EventKind.BACKGROUND_CHECK_FAILED, True),
    "report.resumed": (None, False),
}
# Events after which an error recorded earlier counts as recovered.
RECOVERING = frozenset({"report.completed", "report.resumed"})


class CheckrAdapter(AtsAdapter):
    """Checkr candidate and report events, signed with the account's API key."""

    vendor = AtsVendor.CHECKR
    success_status = 200
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        event_type = require(payload, "type")
        if not isinstance(event_type, str):
            raise DeliveryInvalid("type", "Must be a string.")
        event_id = ats_id(require(payload, "id"), "id")
        return Envelope(event_type=event_type[:120], dedupe_key=event_id)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        return body_hmac_hex(
            keys, "hex HMAC-SHA256 of body", inbound.headers.get(SIGNATURE_HEADER), inbound.body
        )

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        event_type = delivery.event_type
        if event_type != "candidate.created" and event_type not in REPORT_EVENTS:
            return None
        payload = delivery.payload
        obj = require(payload, "data.object")
        if not isinstance(obj, dict):
            raise DeliveryInvalid("data.object", "Must be a JSON object.")
        occurred_at = timestamp(require(payload, "created_at"), "created_at")
        prefix = event_id_prefix(self.vendor, delivery.dedupe_key)

        if event_type == "candidate.created":
            candidate_id = ats_id(require(payload, "data.object.id"), "data.object.id")
            base = _linked_by_custom_id(obj, candidate_id, mirror)
            return [
                _event(
                    base,
                    f"{prefix}:started",
                    EventKind.BACKGROUND_CHECK_STARTED,
                    occurred_at,
                    {"step": "ordered"},
                )
            ]

        report_id = ats_id(require(payload, "data.object.id"), "data.object.id")
        candidate_id = ats_id(
            require(payload, "data.object.candidate_id"), "data.object.candidate_id"
        )
        base = _linked_by_candidate(candidate_id, mirror)
        report = {"report_id": report_id, "status": _text(obj.get("status"))}
        kind, stuck = REPORT_EVENTS[event_type]
        events = []
        if kind is not None:
            facts = {**report}
            if event_type == "report.completed":
                facts.update(
                    result=_text(obj.get("result")), adjudication=_text(obj.get("adjudication"))
                )
            events.append(_event(base, f"{prefix}:check", kind, occurred_at, facts))
        if stuck:
            events.append(
                _event(base, f"{prefix}:error", EventKind.INTEGRATION_ERROR, occurred_at, report)
            )
        elif event_type in RECOVERING and mirror.integration_error_open(
            base["application"]["id"], SYSTEM
        ):
            events.append(
                _event(
                    base,
                    f"{prefix}:recovered",
                    EventKind.INTEGRATION_RECOVERED,
                    occurred_at,
                    report,
                )
            )
        return events


def _linked_by_custom_id(candidate: dict, checkr_candidate: str, mirror: Any) -> dict:
    """The application (and its job) a Checkr candidate's custom_id names."""
    custom_id = candidate.get("custom_id")
    if custom_id in (None, ""):
        raise DeliveryInvalid(
            "data.object.custom_id",
            "The Checkr candidate carries no custom_id: the ordering integration must set it "
            "to the ATS application id, or this candidate cannot be linked to an application.",
        )
    application_id = ats_id(custom_id, "data.object.custom_id")
    known = mirror.application(application_id) or mirror.organization_application(application_id)
    if known is None:
        raise DeliveryInvalid(
            "data.object.custom_id",
            f"No application {application_id!r} in this organization's mirror yet; replay "
            "this delivery once the ATS has sent it.",
        )
    return _base(known, checkr_candidate, derived=["application.candidate_id", "job.id"])


def _linked_by_candidate(checkr_candidate: str, mirror: Any) -> dict:
    """The application a Checkr candidate was linked to by its candidate.created event."""
    known = mirror.application_by_event_detail(LINK_DETAIL, checkr_candidate)
    if known is None:
        raise DeliveryInvalid(
            "data.object.candidate_id",
            f"Checkr candidate {checkr_candidate!r} is not linked to an application: its "
            "candidate.created event (custom_id = the ATS application id) has not been "
            "processed; replay this delivery after it.",
        )
    return _base(known, checkr_candidate, derived=["application.id", "job.id"])


def _base(known: Any, checkr_candidate: str, *, derived: list[str]) -> dict:
    # The ATS's own candidate id, so both connections name the same person the same way;
    # the events are recorded on the ATS connection that owns the application.
    return {
        "application": {"id": known.ats_id, "candidate_id": known.candidate_ats_id},
        "job": {"id": known.job_ats_id},
        "link": {LINK_DETAIL: checkr_candidate},
        "derived": derived,
        "owner": str(known.connection_id) if known.connection_id else None,
    }


def _event(base: dict, event_id: str, kind: str, occurred_at: str, facts: dict) -> Any:
    payload = _payload(base, event_id, kind, occurred_at, facts)
    return Routed(base["owner"], payload) if base["owner"] else payload


def _payload(base: dict, event_id: str, kind: str, occurred_at: str, facts: dict) -> dict:
    details = {
        "system": SYSTEM,
        **base["link"],
        **{k: v for k, v in facts.items() if v},
        "derived": base["derived"],
    }
    return {
        "id": event_id,
        "kind": kind,
        "occurred_at": occurred_at,
        "application": base["application"],
        "job": base["job"],
        "actor": {"role": "system"},
        "details": details,
    }


def _text(value: Any) -> str:
    return value.strip()[:100] if isinstance(value, str) else ""
