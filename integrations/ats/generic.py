"""The generic adapter: deliveries already in failtrack's canonical event format.

Signed with `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`; the format is
documented in docs/webhooks.md. The event's own `id` is the dedupe key.
"""

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
    body_hmac_hex,
    refused,
)

SIGNATURE_HEADER = "X-Failtrack-Signature"


class GenericAdapter(AtsAdapter):
    """Canonical events, signed with the connection's secret."""

    vendor = AtsVendor.GENERIC
    success_status = 202
    duplicate_status = 200
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        for key in ("id", "kind"):
            value = payload.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DeliveryInvalid(key, "This field is required.")
        return Envelope(
            event_type=payload["kind"][:120],
            dedupe_key=payload["id"][:300],
            is_ping=payload["kind"] == EventKind.INTEGRATION_PING,
        )

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        given = inbound.headers.get(SIGNATURE_HEADER) or ""
        if not given.strip().startswith("sha256="):
            return refused()
        return body_hmac_hex(keys, "sha256 HMAC of body", given.strip()[7:], inbound.body)

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        if delivery.event_type == EventKind.INTEGRATION_PING:
            return None
        return [delivery.payload]
