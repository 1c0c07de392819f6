"""Signed ATS webhooks: verify over the raw bytes, record once, answer fast."""

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from failures.events import EventInvalid
from failures.models import AtsConnection
from failures.services import event_record
from integrations.ats import ADAPTERS

logger = logging.getLogger(__name__)


def _error(code: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return Response(body, status=code)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class AtsHookView(APIView):
    """Receive one signed event from an ATS connection."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw bytes are read (and signed) as they came
    throttle_classes: list = []

    @extend_schema(
        operation_id="ats_hook_receive",
        summary="Receive one signed ATS event",
        description=(
            "Body: one canonical event (see docs/webhooks.md), signed with "
            "`X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."
        ),
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            202: OpenApiResponse(description="Accepted and recorded."),
            200: OpenApiResponse(description="Duplicate event id: nothing changed."),
            400: OpenApiResponse(description="Malformed JSON or an invalid field (named)."),
            401: OpenApiResponse(description="Missing or wrong signature."),
            404: OpenApiResponse(description="Unknown vendor or connection."),
            413: OpenApiResponse(description="Body larger than the configured limit."),
            415: OpenApiResponse(description="Content type is not application/json."),
        },
        auth=[],
    )
    def post(self, request: Request, vendor: str, connection_id: str) -> Response:
        adapter = ADAPTERS.get(vendor)
        connection = _connection_find(vendor, connection_id) if adapter else None
        if adapter is None or connection is None:
            return _error(404, "Unknown ATS connection.")

        limit = settings.FAILTRACK_WEBHOOK_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Invalid Content-Length header.", "Content-Length")
        if declared > limit:
            return _error(413, f"Body larger than {limit} bytes.")
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            return _error(415, "Content-Type must be application/json.", "Content-Type")
        try:
            body = request._request.body
        except RequestDataTooBig:
            return _error(413, f"Body larger than {limit} bytes.")
        if len(body) > limit:
            return _error(413, f"Body larger than {limit} bytes.")

        if not adapter.verify(connection=connection, headers=request.headers, body=body):
            logger.warning("hook signature refused connection=%s", connection.pk)
            return _error(401, "Missing or invalid signature.", "X-Failtrack-Signature")

        try:
            payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _error(400, f"Malformed JSON: {exc}"[:300], "body")

        try:
            result = event_record(connection=connection, payload=adapter.to_canonical(payload))
        except EventInvalid as exc:
            return _error(400, exc.message, exc.field)

        if not result.created:
            return Response(
                {"status": "duplicate", "id": result.event.event_id}, status=status.HTTP_200_OK
            )
        logger.info(
            "hook accepted connection=%s kind=%s failures=%d",
            connection.pk,
            result.event.kind,
            len(result.failures),
        )
        return Response(
            {"status": "accepted", "id": result.event.event_id, "failures": len(result.failures)},
            status=adapter.success_status,
        )


def _connection_find(vendor: str, connection_id: str) -> AtsConnection | None:
    try:
        pk = uuid.UUID(str(connection_id))
    except ValueError:
        return None
    return (
        AtsConnection.objects.select_related("organization")
        .filter(pk=pk, vendor=vendor, is_active=True)
        .first()
    )
