"""The generic adapter: deliveries already in failtrack's canonical event format.

Signed with `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`; the format is
documented in docs/webhooks.md.
"""

from typing import Any

from failures.choices import AtsVendor
from failures.models import AtsConnection
from integrations.ats.base import AtsAdapter
from integrations.signatures import prefixed_hex_matches

SIGNATURE_HEADER = "X-Failtrack-Signature"


class GenericAdapter(AtsAdapter):
    """Canonical events, signed with the connection's secret."""

    vendor = AtsVendor.GENERIC

    def verify(self, *, connection: AtsConnection, headers: Any, body: bytes) -> bool:
        return prefixed_hex_matches(
            headers.get(SIGNATURE_HEADER), prefix="sha256=", secret=connection.secret, body=body
        )

    def to_canonical(self, payload: Any) -> Any:
        return payload
