"""Workable: the candidate events of SPI v3 webhook subscriptions.

Workable POSTs `{"id", "event_type", "fired_at", "resource_type", "data": <candidate>}`,
where `data` is the candidate as the candidate-details endpoint shows it *when the request
is sent* (not when the event fired). A Workable candidate belongs to exactly one job, so
its id is both our application id and our candidate id.

- Signature: `X-Workable-Signature`, HMAC-SHA256 of the raw body keyed with the account
  token or the OAuth application's secret (whichever created the subscription). Workable's
  page does not say how the digest is encoded; it is sent as hex, and we also accept the
  base64 of the same digest (the same secret, the same strength).
- Answer: 200. Anything else is an error to Workable, which replays the request.
- Events: `candidate_created` and `candidate_moved` (the only candidate events Workable
  documents). A disqualification has no event of its own: it is the candidate's
  `disqualified` flag, with `disqualification_reason` and `disqualified_at`. Employee and
  time-off events are stored and ignored. Workable sends no ping or test delivery.
- Derived from our mirror: the stage a moved candidate left (`stage.previous`) and, for an
  unmapped disqualification reason, that it was a company rejection (`reason.outcome`).
"""

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Inbound,
    SigningKey,
    StoredDelivery,
    Verification,
    ats_id,
    body_hmac_hex,
    body_sha256,
    dig,
    first_matching_key,
    refused,
    require,
)
from integrations.ats.candidate_events import (
    disqualification_events,
    event_id_prefix,
    stage_move_event,
    timestamp,
)

SIGNATURE_HEADER = "X-Workable-Signature"
CANDIDATE_EVENTS = frozenset({"candidate_created", "candidate_moved"})
_HEX_DIGEST_LENGTH = 64


class WorkableAdapter(AtsAdapter):
    """Workable candidate events, signed with the account token or the app secret."""

    vendor = AtsVendor.WORKABLE
    success_status = 200
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        event_type = require(payload, "event_type")
        if not isinstance(event_type, str):
            raise DeliveryInvalid("event_type", "Must be a string.")
        if event_type in CANDIDATE_EVENTS:
            # Retries of one firing carry the same candidate and `fired_at`; the top-level
            # `id` is not documented as an event id, so it is not trusted alone.
            candidate = require(payload, "data.id")
            fired_at = require(payload, "fired_at")
            dedupe_key = f"{event_type}:{candidate}:{fired_at}"
        else:
            dedupe_key = f"{event_type}:{payload.get('id') or body_sha256(inbound.body)}"
        return Envelope(event_type=event_type[:120], dedupe_key=dedupe_key)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        given = (inbound.headers.get(SIGNATURE_HEADER) or "").strip()
        if len(given) == _HEX_DIGEST_LENGTH:
            return body_hmac_hex(keys, "hex HMAC-SHA256 of body", given, inbound.body)
        return base64_hmac(keys, given, inbound.body)

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        if delivery.event_type not in CANDIDATE_EVENTS:
            return None
        payload = delivery.payload
        data = require(payload, "data")
        if not isinstance(data, dict):
            raise DeliveryInvalid("data", "Must be a JSON object.")
        application_id = ats_id(require(payload, "data.id"), "data.id")
        application: dict[str, Any] = {"id": application_id, "candidate_id": application_id}
        if isinstance(data.get("domain"), str) and data["domain"].strip():
            application["source"] = data["domain"].strip()[:200]
        if data.get("created_at"):
            application["applied_at"] = timestamp(data["created_at"], "data.created_at")
        job = {"id": ats_id(require(payload, "data.job.shortcode"), "data.job.shortcode")}
        if isinstance(dig(payload, "data.job.title"), str):
            job["title"] = payload["data"]["job"]["title"][:300]
        fired_at = timestamp(require(payload, "fired_at"), "fired_at")
        base = {"application": application, "job": job}
        prefix = event_id_prefix(self.vendor, delivery.dedupe_key)

        if data.get("disqualified") is True:
            occurred_at = (
                timestamp(data["disqualified_at"], "data.disqualified_at")
                if data.get("disqualified_at")
                else fired_at
            )
            return disqualification_events(
                prefix,
                base,
                reason=data.get("disqualification_reason"),
                occurred_at=occurred_at,
                mirror=mirror,
            )

        stage = mirror.stage_mapped(_stage_name(data.get("stage")), field="data.stage")
        if delivery.event_type == "candidate_created":
            occurred_at = application.get("applied_at") or fired_at
            return [
                {
                    **base,
                    "id": f"{prefix}:created",
                    "kind": EventKind.APPLICATION_CREATED,
                    "occurred_at": occurred_at,
                    "stage": {"name": stage.name, "category": stage.category},
                }
            ]
        return [stage_move_event(prefix, base, stage, occurred_at=fired_at, mirror=mirror)]


def base64_hmac(keys: list[SigningKey], given: str, body: bytes) -> Verification:
    """Verify a header carrying the base64 HMAC-SHA256 of the body (compared as bytes)."""
    try:
        digest = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return refused()
    if len(digest) != hashlib.sha256().digest_size:
        return refused()
    return first_matching_key(
        keys,
        "base64 HMAC-SHA256 of body",
        digest.hex(),
        lambda secret: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    )


def _stage_name(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("name") or value.get("slug")
    if not isinstance(value, str) or not value.strip():
        raise DeliveryInvalid("data.stage", "This field is required.")
    return value.strip()[:200]
