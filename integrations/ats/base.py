"""What every ATS adapter provides."""

from typing import Any

from failures.models import AtsConnection


class AtsAdapter:
    """Verifies one vendor's deliveries and maps them to canonical event payloads."""

    vendor: str = ""
    success_status: int = 202

    def verify(self, *, connection: AtsConnection, headers: Any, body: bytes) -> bool:
        """True when the delivery is signed with the connection's secret."""
        raise NotImplementedError

    def to_canonical(self, payload: Any) -> Any:
        """The canonical event payload for a decoded delivery."""
        raise NotImplementedError
