"""Webhook signature schemes, always compared in constant time over the raw bytes."""

import hashlib
import hmac


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of a body with a shared secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def prefixed_hex_matches(header: str | None, *, prefix: str, secret: str, body: bytes) -> bool:
    """True when `header` is `prefix` + the hex HMAC-SHA256 of `body` (case-insensitive hex)."""
    if not header or not secret:
        return False
    header = header.strip()
    if not header.startswith(prefix):
        return False
    received = header[len(prefix) :].strip().lower()
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(received.encode(), expected.encode())
