"""Use-cases of the integrations app that are not a webhook delivery: tracking keys."""

import logging
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from failures.models import AtsConnection
from integrations.beacon import tracking_keys_forget
from integrations.models import TrackingKey, new_tracking_token

logger = logging.getLogger(__name__)

# Hosts that may use plain http: a developer's own machine. Everywhere else the ATS page
# must be served over https.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGINS = 20


def origin_normalize(value: str) -> str:
    """An origin exactly as a browser sends it in the `Origin` header, or ValidationError.

    Browsers serialize an origin as `scheme://host[:port]`: lower-case, no path, no
    trailing slash, the default port left out. Configured origins are stored that way so a
    request's header can be compared to them by plain equality.
    """
    text = (value or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError(f"{text!r} is not an origin like https://ats.example.com.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValidationError(f"{text!r} is not an origin like https://ats.example.com.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError(f"{text!r}: an origin has no user, query or fragment.")
    if parts.path not in ("", "/"):
        raise ValidationError(f"{text!r}: an origin has no path (drop {parts.path!r}).")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise ValidationError(f"{text!r}: ATS pages must be served over https.")
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def origins_normalize(values: list[str]) -> list[str]:
    """Normalize a list of origins (at least one, no duplicates, at most MAX_ORIGINS)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError({"allowed_origins": "A list of origins (strings)."})
    errors = []
    normalized: list[str] = []
    for value in values:
        try:
            origin = origin_normalize(value)
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        if origin not in normalized:
            normalized.append(origin)
    if errors:
        raise ValidationError({"allowed_origins": errors})
    if not normalized:
        raise ValidationError({"allowed_origins": "At least one origin is required."})
    if len(normalized) > MAX_ORIGINS:
        raise ValidationError({"allowed_origins": f"At most {MAX_ORIGINS} origins."})
    return normalized


def tracking_key_issue(key: TrackingKey) -> str:
    """Give an unsaved key a fresh token; returns the token, which is never stored."""
    token = new_tracking_token()
    key.token_sha256 = TrackingKey.digest(token)
    key.token_prefix = token[:12]
    return token


def tracking_key_create(
    *,
    actor: AbstractBaseUser | None,
    connection: AtsConnection,
    allowed_origins: list[str],
    label: str = "",
) -> tuple[TrackingKey, str]:
    """Create a tracking key for a connection; returns it with its token (shown once)."""
    key = TrackingKey(
        connection=connection,
        label=label or "beacon",
        allowed_origins=origins_normalize(allowed_origins),
    )
    token = tracking_key_issue(key)
    key.full_clean()
    key._history_user = actor
    key.save()
    logger.info(
        "tracking key created org=%s connection=%s prefix=%s",
        connection.organization.slug,
        connection.pk,
        key.token_prefix,
    )
    return key, token


def tracking_key_revoke(*, actor: AbstractBaseUser | None, key: TrackingKey) -> None:
    """Stop accepting beacons sent with this key."""
    key.is_active = False
    key._history_user = actor
    key._change_reason = "revoked"
    key.save(update_fields=["is_active"])
    tracking_keys_forget()  # this process stops at once; others within KEY_FRESH_SECONDS
    logger.info("tracking key revoked prefix=%s", key.token_prefix)
