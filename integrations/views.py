"""Signed ATS webhooks: verify over the raw bytes, store once, answer as the vendor expects."""

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from failures.choices import AtsVendor
from integrations.ats import ADAPTERS
from integrations.ats.base import DeliveryInvalid, Inbound
from integrations.credentials import CredentialsUnavailable, credentials_get
from integrations.ingest import KeyReused, delivery_accept, headers_to_store

logger = logging.getLogger(__name__)


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    # A plain JsonResponse, not DRF's Response: every answer is JSON whatever the vendor's
    # Accept header says, and the hook skips renderer negotiation (measured in
    # benchmarks/webhook_throughput.py).
    return JsonResponse(body, status=status, headers=headers or None)


def _error(code: int, message: str, field: str | None = None, **headers: str) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return _answer(code, body, headers)


class _JsonOnly(BaseContentNegotiation):
    """Errors DRF raises itself (405, ...) are JSON too, whatever the Accept header."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_decode(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, nesting bounded by the recursion limit."""
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


class AtsHookView(APIView):
    """Receive one signed delivery from an ATS connection."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw bytes are read (and verified) as they came
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JsonOnly
    throttle_classes: list = []

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        # A webhook needs none of DRF's request machinery — no authentication (the
        # signature is the authentication), parsing (the raw bytes are verified), content
        # negotiation or throttling — and it is the hottest path we serve: it goes straight
        # to `post`. (DRF still describes it in the OpenAPI schema.)
        self.args, self.kwargs, self.request, self.headers = args, kwargs, request, {}
        if request.method != "POST":
            return _error(405, f'Method "{request.method}" not allowed.', Allow="POST")
        return self.post(request, *args, **kwargs)

    @extend_schema(
        operation_id="ats_hook_receive",
        summary="Receive one signed ATS webhook delivery",
        description=(
            "Each vendor posts its own documented format, signed its own way "
            "(docs/webhooks.md): the generic vendor takes failtrack's canonical events "
            "signed with `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. "
            "The delivery is stored before the answer and processed into canonical events "
            "asynchronously; `GET /api/v1/deliveries/` shows its state."
        ),
        parameters=[
            OpenApiParameter(
                "vendor", str, OpenApiParameter.PATH, enum=[v.value for v in AtsVendor]
            ),
            OpenApiParameter("connection_id", str, OpenApiParameter.PATH, description="UUID"),
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(description="Accepted (vendors expecting 200), or duplicate."),
            202: OpenApiResponse(description="Accepted (generic, SmartRecruiters)."),
            400: OpenApiResponse(description="Malformed JSON or a missing field (named)."),
            401: OpenApiResponse(description="Missing, wrong or stale signature."),
            404: OpenApiResponse(description="Unknown vendor or connection."),
            413: OpenApiResponse(description="Body larger than the configured limit."),
            415: OpenApiResponse(description="Unsupported content type."),
            503: OpenApiResponse(description="Database down and connection unknown: retry."),
        },
        auth=[],
    )
    def post(self, request: HttpRequest, vendor: str, connection_id: str) -> JsonResponse:
        adapter = ADAPTERS.get(vendor)
        if adapter is None:
            return _error(404, "Unknown ATS connection.")
        try:
            credentials = credentials_get(vendor, connection_id)
        except CredentialsUnavailable:
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        if credentials is None:
            return _error(404, "Unknown ATS connection.")

        # An activation request (SmartRecruiters' X-Hook-Secret) is answered from its
        # headers alone, whatever its body: it stores nothing.
        handshake = adapter.handshake(
            Inbound(headers=request.headers, body=b"", payload=None, received_at=timezone.now())
        )
        if handshake is not None:
            return _answer(handshake.status, handshake.body, handshake.headers)

        limit = settings.FAILTRACK_WEBHOOK_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Invalid Content-Length header.", "Content-Length")
        if declared > limit:
            return _error(413, f"Body larger than {limit} bytes.")
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in adapter.content_types:
            return _error(
                415, f"Content-Type must be {' or '.join(adapter.content_types)}.", "Content-Type"
            )
        try:
            body = request.body
        except RequestDataTooBig:
            return _error(413, f"Body larger than {limit} bytes.")
        if len(body) > limit:
            return _error(413, f"Body larger than {limit} bytes.")

        try:
            payload = json_decode(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _error(400, f"Malformed JSON: {exc}"[:300], "body")
        now = timezone.now()
        inbound = Inbound(headers=request.headers, body=body, payload=payload, received_at=now)
        # A handshake that needs the body (Recruitee's unsigned test request) is asked again
        # with it; it stores nothing either.
        handshake = adapter.handshake(inbound)
        if handshake is not None:
            return _answer(handshake.status, handshake.body, handshake.headers)

        try:
            envelope = adapter.envelope(inbound)
        except DeliveryInvalid as exc:
            return _error(400, exc.message, exc.field)

        verification = adapter.verify(inbound, credentials.keys_for(envelope.event_type), now=now)
        if not verification.ok:
            logger.warning(
                "hook signature refused vendor=%s connection=%s reason=%s",
                vendor,
                credentials.connection_id,
                verification.reason,
            )
            return _error(401, verification.reason, adapter.signature_header)

        try:
            receipt = delivery_accept(
                connection_id=credentials.connection_id,
                organization_id=credentials.organization_id,
                vendor=vendor,
                event_type=envelope.event_type,
                dedupe_key=envelope.dedupe_key,
                body=body,
                headers=headers_to_store(adapter, request.headers),
                verified_with=verification.verified_with,
                received_at=now,
                refuse_reused_key=adapter.refuse_reused_key_with_other_body,
            )
        except OSError:
            # Neither the database nor the local spool could take it: do not claim success.
            logger.error("delivery neither stored nor spooled vendor=%s", vendor)
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        except KeyReused:
            logger.warning(
                "hook one-time token reused vendor=%s connection=%s",
                vendor,
                credentials.connection_id,
            )
            return _error(401, "Signature token already used.", adapter.signature_header)

        if receipt.duplicate:
            return _answer(
                adapter.duplicate_status or adapter.success_status,
                {"status": "duplicate", "delivery": receipt.delivery_id},
            )
        logger.info(
            "hook accepted vendor=%s connection=%s type=%s spooled=%s",
            vendor,
            credentials.connection_id,
            envelope.event_type,
            receipt.spooled,
        )
        body_out: dict[str, Any] = {"status": "accepted", "delivery": receipt.delivery_id}
        if receipt.spooled:
            body_out["spooled"] = True
        return _answer(adapter.success_status, body_out)
