"""The generic adapter: deliveries already in failtrack's canonical event format.

Signed with `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`; the format is
documented in docs/webhooks.md. The event's own `id` is the dedupe key.
"""

from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind
from failures.events import EventInvalid, event_parse
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
        # The canonical format is ours: validate all of it now, so a bad field is a 400
        # naming it. What needs our data (an unmapped stage, a conflicting candidate) can
        # only be judged when processing; such a delivery is kept as failed and replayable.
        try:
            event = event_parse(inbound.payload)
        except EventInvalid as exc:
            raise DeliveryInvalid(exc.field, exc.message) from exc
        return Envelope(
            event_type=event.kind,
            dedupe_key=event.id,
            is_ping=event.kind == EventKind.INTEGRATION_PING,
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
