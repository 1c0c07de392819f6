"""What every ATS adapter provides, and the small types the hook view and the processor share.

The hook view asks an adapter, in this order:

1. `handshake(inbound)` — a vendor's activation request answered without storing anything
   (SmartRecruiters echoes `X-Hook-Secret`); most vendors have none.
2. `envelope(inbound)` — the vendor's event type, the dedupe key and whether this is a ping
   or test delivery; raises `DeliveryInvalid` (400, naming the field) when a field we need to
   file the delivery is missing.
3. `verify(inbound, keys, now)` — the signature over the raw bytes, compared in constant
   time, against each active key; stale timestamps are refused here (401).

The delivery is then stored as received and answered with `success_status`. Later, in a
Celery task, `to_events(stored, mirror)` turns it into canonical event payloads (the format
of docs/webhooks.md); `None` means "nothing to record" (ping, test, unknown event type),
`DeliveryInvalid` marks the delivery failed with that reason (kept; replayable after a fix).
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from failures.events import MAX_ID_LENGTH
from integrations.signatures import hmac_sha256_hex

# Length of the canonical event ids adapters build: within the event log's MAX_ID_LENGTH,
# with room for the prefixes of keys derived from an event id (failure dedupe keys).
_EVENT_ID_BUDGET = MAX_ID_LENGTH - 40
# Digits of the longest epoch timestamp we read (milliseconds until the year 5138).
_EPOCH_DIGITS = 14


class DeliveryInvalid(Exception):
    """The delivery lacks or garbles something; `field` names it in dotted form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SigningKey:
    """One active secret of a connection, decrypted for verification."""

    label: str
    value: str
    event_type: str = ""


@dataclass(frozen=True)
class Inbound:
    """A webhook request as an adapter sees it (headers are case-insensitive)."""

    headers: Mapping[str, str]
    body: bytes
    payload: Any
    received_at: datetime


@dataclass(frozen=True)
class Envelope:
    """What we need to file a delivery before verifying and processing it."""

    event_type: str
    dedupe_key: str
    is_ping: bool = False


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a signature: which key verified it, or why it was refused."""

    ok: bool
    key_label: str = ""
    scheme: str = ""
    reason: str = "Missing or invalid signature."

    @property
    def verified_with(self) -> str:
        return f"{self.scheme}, key '{self.key_label}'"


@dataclass(frozen=True)
class Handshake:
    """An answer given without storing anything (a vendor's activation request)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDelivery:
    """A stored delivery handed to `to_events`."""

    id: int
    connection_id: str
    event_type: str
    dedupe_key: str
    headers: Mapping[str, str]
    payload: Any
    received_at: datetime


@dataclass(frozen=True)
class Routed:
    """A canonical event to record on another connection of the same organization.

    For add-on systems (background checks) whose deliveries are about applications an ATS
    connection owns: recording on the owner keeps one application in the mirror. The
    processor refuses a connection outside the delivery's organization.
    """

    connection_id: str
    payload: dict


def refused(reason: str = "Missing or invalid signature.") -> Verification:
    return Verification(ok=False, reason=reason)


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def first_matching_key(
    keys: list[SigningKey], scheme: str, expected: str | list[str], compute: Any
) -> Verification:
    """Verification by the first key whose `compute(key.value)` equals one of `expected`.

    `compute` returns the signature that key would have made; `expected` is what the
    request carries (several signatures when a vendor sends one per key it holds). Every
    key is compared with every given signature in constant time, without an early exit
    that would tell which key came close. A key without a value never verifies.
    """
    given = [expected] if isinstance(expected, str) else expected
    given_bytes = [value.encode("utf-8", "surrogatepass") for value in given if value]
    matched: SigningKey | None = None
    for key in keys:
        if not key.value:
            continue
        made = compute(key.value).encode()
        for value in given_bytes:
            if hmac.compare_digest(made, value) and matched is None:
                matched = key
    if matched is None:
        return refused()
    return Verification(ok=True, key_label=matched.label, scheme=scheme)


def body_hmac_hex(
    keys: list[SigningKey], scheme: str, given: str | None, body: bytes
) -> Verification:
    """Verify a header carrying the hex HMAC-SHA256 of the raw body (case-insensitive hex)."""
    if not given or not given.strip():
        return refused()
    return first_matching_key(
        keys, scheme, given.strip().lower(), lambda secret: hmac_sha256_hex(secret, body)
    )


def epoch_seconds(value: Any) -> int | None:
    """Epoch seconds (or milliseconds) as a vendor sends them: a JSON integer or a string of
    ASCII digits, else None. Refuses what `int()` would wrongly accept or choke on (other
    scripts' digits, `1_000`, signs, spaces, thousands of digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (0 < len(text) <= _EPOCH_DIGITS and text.isascii() and text.isdigit()):
            return None
        return int(text)
    if isinstance(value, int) and 0 <= value < 10**_EPOCH_DIGITS:
        return value
    return None


def within_window(sent_at: int, now: datetime, window_seconds: int, *, unit: int = 1) -> bool:
    """Whether `sent_at` (epoch seconds, or milliseconds with unit=1000) lies within
    `window_seconds` of `now`, in either direction. Integer arithmetic: a huge signed value
    is simply stale, never an overflow."""
    now_units = int(now.timestamp() * unit)
    return abs(now_units - sent_at) <= window_seconds * unit


def fresh(verification: Verification, sent_at: Any, now: datetime, *, what: str, unit: int = 1):
    """The verification, unless the signed timestamp `sent_at` is not epoch digits ("Invalid
    <what>.") or lies outside the replay window in either direction ("Stale <what>")."""
    if not verification.ok:
        return verification
    stamp = epoch_seconds(sent_at)
    if stamp is None:
        return refused(f"Invalid {what}.")
    if not within_window(stamp, now, settings.FAILTRACK_REPLAY_WINDOW_SECONDS, unit=unit):
        return refused(f"Stale {what}: outside the replay window.")
    return verification


def epoch_to_iso(value: Any, *, milliseconds: bool = False) -> str:
    """An ISO-8601 UTC timestamp from epoch seconds (or milliseconds)."""
    seconds = float(value) / (1000 if milliseconds else 1)
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def dig(data: Any, path: str, default: Any = None) -> Any:
    """data["a"]["b"]… for path "a.b", or default when any step is missing or not an object."""
    current = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return default
        current = current[part]
    return current


def require(data: Any, path: str) -> Any:
    """Like `dig`, but a missing or empty value is a DeliveryInvalid naming the path."""
    value = dig(data, path)
    if value is None or value == "" or value == {}:
        raise DeliveryInvalid(path, "This field is required.")
    return value


def ats_id(value: Any, field: str) -> str:
    """An id the vendor sent (string or number), as text; DeliveryInvalid naming the field.

    Never truncated: two different ids cut to one would merge two applications.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DeliveryInvalid(field, "Must be a non-empty string or number.")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise DeliveryInvalid(field, f"At most {MAX_ID_LENGTH} characters.")
    return text


def event_id(*parts: str) -> str:
    """A canonical event id from its parts (vendor, dedupe key, kind...) joined by ':'.

    Deterministic per delivery, so processing it twice records nothing twice. An id longer
    than the event log takes keeps a readable head and gains the SHA-256 of the whole:
    truncating alone would give two deliveries one id and drop the second's events.
    """
    text = ":".join(parts)
    if len(text) <= _EVENT_ID_BUDGET:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[: _EVENT_ID_BUDGET - 72]}…sha256:{digest}"


class AtsAdapter:
    """Verifies one vendor's deliveries and maps them to canonical event payloads."""

    vendor: str = ""
    # The status code the vendor counts as success (some accept only one exact code).
    success_status: int = 200
    # The status of a duplicate's answer when it differs from success_status.
    duplicate_status: int | None = None
    content_types: tuple[str, ...] = ("application/json",)
    # The header named in a 401 answer, so an operator knows what to check.
    signature_header: str = ""
    # Header names (lower case) that carry credentials and are never stored.
    credential_headers: frozenset[str] = frozenset()
    # Lever: the body carries a one-time token; the same token with another body is refused.
    refuse_reused_key_with_other_body: bool = False

    def handshake(self, inbound: Inbound) -> Handshake | None:
        return None

    def envelope(self, inbound: Inbound) -> Envelope:
        raise NotImplementedError

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        raise NotImplementedError

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list["dict | Routed"] | None:
        raise NotImplementedError
