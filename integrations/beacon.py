"""Client-side tracking: what a recruiter does in an ATS page, reported with sendBeacon.

`navigator.sendBeacon` cannot set headers and sends `text/plain` unless the page picks a
Blob type, so the tracking key's token travels in the JSON body and the `Origin` header the
browser sets (which a page cannot forge) must be one of the key's allowed origins.

An accepted beacon becomes one canonical event, stored as an `InboundDelivery` of the
generic vendor before we answer (spooled when the database is down) and recorded by the
same worker path as every webhook (docs/beacon.md). The stored body is the canonical event
we built, never the beacon itself: the token is not kept anywhere.

A view is *not* a recruiter action: the event names no `application` object, so it leaves
the pipeline mirror (current stage, last recruiter action, last activity) untouched and the
recruiter-inactivity and drop-off detectors keep counting. An application a recruiter opens
every day and never advances is exactly what those detectors must still find.
"""

import json
import logging
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from failures.choices import AtsVendor
from failures.events import EventInvalid, event_parse
from integrations.ingest import delivery_accept
from integrations.models import TrackingKey

logger = logging.getLogger(__name__)

# A beacon carries one small event; browsers cap sendBeacon bodies at 64 KiB anyway.
MAX_BYTES = int(getattr(settings, "FAILTRACK_BEACON_MAX_BYTES", 4096))
# Beacons accepted per tracking key and minute (counted in Django's cache: per process
# unless CACHES points at a shared cache such as Redis).
RATE_PER_MINUTE = int(getattr(settings, "FAILTRACK_BEACON_RATE_PER_MINUTE", 600))
# text/plain is what sendBeacon sends for a string (no CORS preflight); application/json
# is for callers that can preflight (fetch from a page, a server).
CONTENT_TYPES = ("text/plain", "application/json")
# What a page may report, and the canonical kind each becomes.
KINDS = {"application.viewed": "application.viewed"}
# Roles of the person at the keyboard, in the ATS's vocabulary.
ACTOR_ROLES = ("recruiter", "hiring_manager", "coordinator", "sourcer", "interviewer")
# How long a looked-up key is trusted before it is read again (revocation delay).
KEY_FRESH_SECONDS = 30.0
TOKEN_MAX_LENGTH = 100


def _no_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise serializers.ValidationError("Control characters are not allowed.")


class BeaconActorSerializer(serializers.Serializer):
    """Who was at the keyboard: the ATS's user id and role (no names, no e-mail)."""

    id = serializers.CharField(max_length=200, validators=[_no_control_characters])
    role = serializers.ChoiceField(choices=ACTOR_ROLES)


class BeaconSerializer(serializers.Serializer):
    """One beacon as the page sends it (also the documented request body)."""

    token = serializers.CharField(
        max_length=TOKEN_MAX_LENGTH, help_text="The tracking key's token (ftk_…)."
    )
    id = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]{8,100}$",
        help_text="A random id the script gives each view; a repeated id is a duplicate.",
    )
    kind = serializers.ChoiceField(choices=list(KINDS))
    application_id = serializers.CharField(
        max_length=200, validators=[_no_control_characters], help_text="The ATS's id."
    )
    job_id = serializers.CharField(
        max_length=200, required=False, validators=[_no_control_characters]
    )
    actor = BeaconActorSerializer()
    duration_ms = serializers.IntegerField(
        min_value=0,
        max_value=24 * 3600 * 1000,
        required=False,
        help_text="How long the page was visible.",
    )


@dataclass(frozen=True)
class KeyInfo:
    """What a beacon needs of its tracking key, cached so beacons survive a database outage."""

    pk: int
    prefix: str
    active: bool
    allowed_origins: tuple[str, ...]
    connection_id: Any
    organization_id: int


_keys: dict[str, tuple[KeyInfo | None, float]] = {}


class KeysUnavailable(Exception):
    """The database is down and this process never read the key."""


def tracking_key_lookup(token: str) -> KeyInfo | None:
    """The key a token belongs to (by its SHA-256; the token itself is never stored)."""
    digest = TrackingKey.digest(token)
    cached = _keys.get(digest)
    now = time.monotonic()
    if cached is not None and now - cached[1] < KEY_FRESH_SECONDS:
        return cached[0]
    try:
        row = (
            TrackingKey.objects.filter(token_sha256=digest)
            .select_related("connection")
            .only(
                "token_prefix",
                "is_active",
                "allowed_origins",
                "connection__is_active",
                "connection__organization_id",
            )
            .first()
        )
    except DatabaseError as exc:
        if cached is not None:
            return cached[0]
        raise KeysUnavailable from exc
    info = None
    if row is not None:
        info = KeyInfo(
            pk=row.pk,
            prefix=row.token_prefix,
            active=row.is_active and row.connection.is_active,
            allowed_origins=tuple(row.allowed_origins or ()),
            connection_id=row.connection_id,
            organization_id=row.connection.organization_id,
        )
        _keys[digest] = (info, now)  # unknown tokens are not cached: no memory for junk
    return info


def tracking_keys_forget() -> None:
    """Drop cached keys (after a key changes in this process; tests)."""
    _keys.clear()


def origin_is_configured(origin: str) -> bool:
    """Whether any active key accepts this origin (answers CORS preflights)."""
    rows = TrackingKey.objects.filter(is_active=True, connection__is_active=True).values_list(
        "allowed_origins", flat=True
    )
    return any(origin in (origins or ()) for origins in rows)


def _error(code: int, message: str, field: str | None = None, **headers: str) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return Response(body, status=code, headers=headers or None)


def _first_error(errors: Any, path: str = "") -> tuple[str, str]:
    """The first (dotted field, message) of a DRF error structure."""
    if isinstance(errors, dict):
        name, inner = next(iter(errors.items()))
        if name == "non_field_errors":  # e.g. `actor` is not an object: name `actor`
            return _first_error(inner, path)
        return _first_error(inner, f"{path}.{name}" if path else str(name))
    if isinstance(errors, list) and errors:
        return _first_error(errors[0], path)
    return path or "body", str(errors)


def _shown(name: str) -> str:
    """A field name fit to echo in an answer (JSON may carry lone surrogates)."""
    return name[:100].encode("utf-8", "backslashreplace").decode("utf-8")


def _unknown_field(data: dict[str, Any]) -> str | None:
    """The first field the beacon format does not have (top level or in `actor`)."""
    unknown = sorted(set(data) - set(BeaconSerializer().fields))
    if unknown:
        return _shown(unknown[0])
    actor = data.get("actor")
    if isinstance(actor, dict):
        extra = sorted(set(actor) - set(BeaconActorSerializer().fields))
        if extra:
            return f"actor.{_shown(extra[0])}"
    return None


def _over_rate(key: KeyInfo) -> bool:
    window = int(time.time() // 60)
    name = f"failtrack:beacon-rate:{key.pk}:{window}"
    cache.add(name, 0, timeout=120)
    try:
        return cache.incr(name) > RATE_PER_MINUTE
    except ValueError:  # expired between add and incr: a new window
        cache.set(name, 1, timeout=120)
        return False


def canonical_event(beacon: dict[str, Any], key: KeyInfo, origin: str, at: Any) -> dict:
    """The canonical event a validated beacon becomes (see the module docstring)."""
    details: dict[str, Any] = {
        "application_id": beacon["application_id"],
        "source": "beacon",
        "tracking_key": key.prefix,
        "origin": origin,
        "recruiter_action": False,
    }
    if "job_id" in beacon:
        details["job_id"] = beacon["job_id"]
    if "duration_ms" in beacon:
        details["duration_ms"] = beacon["duration_ms"]
    return {
        "id": f"beacon:{beacon['id']}",
        "kind": KINDS[beacon["kind"]],
        "occurred_at": at.isoformat(),
        "actor": {"id": beacon["actor"]["id"], "role": beacon["actor"]["role"]},
        "details": details,
    }


_ACCEPTED = inline_serializer(
    "BeaconAccepted",
    {
        "status": serializers.ChoiceField(choices=["accepted", "duplicate"]),
        "event": serializers.CharField(help_text="The canonical event id."),
        "delivery": serializers.IntegerField(allow_null=True),
        "spooled": serializers.BooleanField(required=False),
    },
)
_ERROR = inline_serializer(
    "BeaconError",
    {
        "error": serializers.CharField(),
        "field": serializers.CharField(required=False, help_text="The offending field."),
    },
)


class BeaconView(APIView):
    """Receive one beacon from an ATS page embedding failtrack-beacon.js."""

    authentication_classes: list = []  # the token is in the body; cookies are ignored
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw bytes are read as they came
    throttle_classes: list = []

    def _cors(self, response: Response, origin: str) -> Response:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        return response

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """CORS preflight, for pages that post application/json with fetch().

        sendBeacon with a text/plain body needs none; allowed for origins configured on an
        active tracking key (OPTIONS is not part of the OpenAPI schema).
        """
        origin = request.headers.get("Origin", "")
        try:
            allowed = bool(origin) and origin_is_configured(origin)
        except DatabaseError:
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        if not allowed:
            return _error(403, "Origin not allowed.", "Origin")
        response = Response(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        return self._cors(response, origin)

    @extend_schema(
        operation_id="beacon_receive",
        summary="Report a user-driven event from an ATS page (navigator.sendBeacon)",
        description=(
            "Sent by failtrack-beacon.js (docs/beacon.md). The tracking key's token travels "
            "in the body because sendBeacon cannot set headers; the request's `Origin` must "
            "be one of the key's allowed origins. Body: JSON, sent as text/plain (sendBeacon) "
            "or application/json, at most 4 KiB. The event lands in the organization of the "
            "key's ATS connection as `application.viewed`; a view does not count as a "
            "recruiter action."
        ),
        request={"text/plain": BeaconSerializer, "application/json": BeaconSerializer},
        responses={
            200: OpenApiResponse(_ACCEPTED, description="Duplicate (same id): nothing new."),
            202: OpenApiResponse(_ACCEPTED, description="Stored; recorded by a worker."),
            400: OpenApiResponse(_ERROR, description="Malformed JSON or a bad field (named)."),
            401: OpenApiResponse(_ERROR, description="Missing or unknown token."),
            403: OpenApiResponse(_ERROR, description="Revoked key, or Origin not allowed."),
            413: OpenApiResponse(_ERROR, description="Body larger than 4 KiB."),
            415: OpenApiResponse(_ERROR, description="Content type not text/plain or JSON."),
            429: OpenApiResponse(_ERROR, description="Too many beacons for this key."),
            503: OpenApiResponse(_ERROR, description="Database down and key unknown: retry."),
        },
        auth=[],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        origin = request.headers.get("Origin", "")
        if not origin:
            return _error(403, "The Origin header is required.", "Origin")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Invalid Content-Length header.", "Content-Length")
        if declared > MAX_BYTES:
            return _error(413, f"Body larger than {MAX_BYTES} bytes.")
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            return _error(
                415, "Content-Type must be text/plain or application/json.", "Content-Type"
            )
        try:
            body = request._request.body
        except RequestDataTooBig:
            return _error(413, f"Body larger than {MAX_BYTES} bytes.")
        if len(body) > MAX_BYTES:
            return _error(413, f"Body larger than {MAX_BYTES} bytes.")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _error(400, f"Malformed JSON: {exc}"[:300], "body")
        if not isinstance(data, dict):
            return _error(400, "The beacon must be a JSON object.", "body")

        token = data.get("token")
        if (
            not isinstance(token, str)
            or not token.isascii()  # tokens are ftk_ + URL-safe base64
            or not 0 < len(token) <= TOKEN_MAX_LENGTH
        ):
            return _error(401, "A tracking key token is required.", "token")
        try:
            key = tracking_key_lookup(token)
        except KeysUnavailable:
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        if key is None:
            return _error(401, "Unknown tracking key.", "token")
        if not key.active:
            return _error(403, "This tracking key is revoked.", "token")
        if origin not in key.allowed_origins:
            logger.warning("beacon origin refused key=%s", key.prefix)
            return _error(403, "Origin not allowed for this tracking key.", "Origin")
        if _over_rate(key):
            return self._cors(
                _error(429, "Too many beacons; slow down.", **{"Retry-After": "60"}), origin
            )

        unknown = _unknown_field(data)
        if unknown:  # refuse rather than drop: a page must not push personal data our way
            return self._cors(_error(400, "Unknown field.", unknown), origin)
        beacon = BeaconSerializer(data=data)
        if not beacon.is_valid():
            field, message = _first_error(beacon.errors)
            return self._cors(_error(400, message, field), origin)
        now = timezone.now()
        event = canonical_event(beacon.validated_data, key, origin, now)
        try:
            event_parse(event)  # what the worker will check; refuse now rather than fail later
        except EventInvalid as exc:
            return self._cors(_error(400, exc.message, exc.field), origin)

        receipt = delivery_accept(
            connection_id=key.connection_id,
            organization_id=key.organization_id,
            vendor=AtsVendor.GENERIC,  # the body is a canonical event: the generic mapping
            event_type=event["kind"],
            dedupe_key=event["id"],
            body=json.dumps(event, separators=(",", ":")).encode(),
            headers={"origin": origin, "content-type": content_type},
            verified_with=f"tracking key {key.prefix}… from {origin}",
            received_at=now,
        )
        answer: dict[str, Any] = {
            "status": "duplicate" if receipt.duplicate else "accepted",
            "event": event["id"],
            "delivery": receipt.delivery_id,
        }
        if receipt.spooled:
            answer["spooled"] = True
        logger.info(
            "beacon %s key=%s kind=%s spooled=%s",
            answer["status"],
            key.prefix,
            event["kind"],
            receipt.spooled,
        )
        return self._cors(Response(answer, status=200 if receipt.duplicate else 202), origin)
