"""Signed batches of canonical events over HTTP: a backfill file posted as JSON lines.

`POST /api/v1/hooks/generic/<connection-id>/batch/` with `Content-Type: application/x-ndjson`
and `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, signed with one of
the connection's active keys (keys limited to one event type cannot sign a batch, which
mixes kinds). The body is imported at once by `failures.bulk.events_import` — the same
validation, dedupe and mirror as the generic webhook — and the answer gives the counts
and each bad line's number and field. Bad lines never stop the rest; sending the same
batch again is safe (what was recorded is then a duplicate).

Unlike a single webhook, a batch is not stored as a delivery nor spooled: when the database
is down the answer is 503 and the sender retries.
"""

import io
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from failures.bulk import events_import, lines_read
from failures.choices import AtsVendor
from failures.models import AtsConnection
from integrations.ats import ADAPTERS
from integrations.ats.base import Inbound
from integrations.credentials import CredentialsUnavailable, credentials_get
from integrations.views import _error, _JsonOnly

logger = logging.getLogger(__name__)

# The largest batch body accepted (one batch is imported within one request).
MAX_BYTES = int(getattr(settings, "FAILTRACK_BATCH_MAX_BYTES", 10 * 1024 * 1024))
CONTENT_TYPES = ("application/x-ndjson",)


class BatchLineErrorSerializer(serializers.Serializer):
    """Why one line was not imported."""

    line = serializers.IntegerField(help_text="1-based line number in the body.")
    field = serializers.CharField(help_text="The offending field, dotted (or 'body').")
    message = serializers.CharField()


class BatchResultSerializer(serializers.Serializer):
    """What importing a batch did (the documented 200 answer)."""

    lines = serializers.IntegerField(help_text="Non-blank lines read.")
    imported = serializers.IntegerField(help_text="Events recorded now.")
    duplicates = serializers.IntegerField(
        help_text="Events whose id this connection had already recorded, or repeated lines."
    )
    invalid = serializers.IntegerField(help_text="Lines refused (see errors).")
    failures = serializers.IntegerField(help_text="Failures the imported events revealed.")
    errors = BatchLineErrorSerializer(many=True, help_text="The first 1,000 refused lines.")
    errors_truncated = serializers.BooleanField()


class EventBatchView(APIView):
    """Import a signed batch of canonical events (JSON lines) for a generic connection."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw bytes are read (and verified) as they came
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JsonOnly
    throttle_classes: list = []

    @extend_schema(
        operation_id="ats_hook_batch_import",
        summary="Import a signed batch of canonical events (JSON lines)",
        description=(
            "Backfill: one canonical event (docs/webhooks.md) per line, signed like the "
            "generic webhook with `X-Failtrack-Signature: sha256=<hex HMAC-SHA256 of the raw "
            f"body>`. At most {MAX_BYTES:,} bytes (`FAILTRACK_BATCH_MAX_BYTES`). Imported "
            "before the answer; bad lines are skipped and listed with their number and field; "
            "events this connection already recorded count as duplicates."
        ),
        parameters=[
            OpenApiParameter("connection_id", str, OpenApiParameter.PATH, description="UUID")
        ],
        request={"application/x-ndjson": OpenApiTypes.STR},
        responses={
            200: BatchResultSerializer,
            400: OpenApiResponse(description="Empty body or an invalid Content-Length."),
            401: OpenApiResponse(description="Missing or wrong signature."),
            404: OpenApiResponse(description="Unknown (or inactive) generic connection."),
            413: OpenApiResponse(description="Body larger than the configured limit."),
            415: OpenApiResponse(description="Content-Type is not application/x-ndjson."),
            503: OpenApiResponse(description="Database unavailable: retry the batch."),
        },
        auth=[],
    )
    def post(self, request: Request, connection_id: str) -> JsonResponse:
        adapter = ADAPTERS[AtsVendor.GENERIC]
        try:
            credentials = credentials_get(AtsVendor.GENERIC, connection_id)
        except CredentialsUnavailable:
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        if credentials is None:
            return _error(404, "Unknown ATS connection.")

        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Invalid Content-Length header.", "Content-Length")
        if declared > MAX_BYTES:
            return _error(413, f"Body larger than {MAX_BYTES} bytes.")
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            return _error(415, f"Content-Type must be {CONTENT_TYPES[0]}.", "Content-Type")
        # Read past Django's in-memory upload limit, but never more than the batch limit.
        body = request._request.read(MAX_BYTES + 1)
        if len(body) > MAX_BYTES:
            return _error(413, f"Body larger than {MAX_BYTES} bytes.")
        if not body.strip():
            return _error(400, "The body holds no events.", "body")

        now = timezone.now()
        inbound = Inbound(headers=request.headers, body=body, payload=None, received_at=now)
        verification = adapter.verify(inbound, credentials.keys_for(""), now=now)
        if not verification.ok:
            logger.warning(
                "batch signature refused connection=%s reason=%s",
                credentials.connection_id,
                verification.reason,
            )
            return _error(401, verification.reason, adapter.signature_header)

        try:
            connection = AtsConnection.objects.select_related("organization").get(
                pk=credentials.connection_id
            )
            result = events_import(connection=connection, lines=lines_read(io.BytesIO(body)))
        except AtsConnection.DoesNotExist:
            return _error(404, "Unknown ATS connection.")
        except DatabaseError:
            logger.exception("batch import failed connection=%s", credentials.connection_id)
            return _error(503, "Temporarily unavailable; please retry.", **{"Retry-After": "30"})
        logger.info(
            "batch imported connection=%s bytes=%s imported=%s duplicates=%s invalid=%s",
            credentials.connection_id,
            len(body),
            result.imported,
            result.duplicates,
            result.invalid,
        )
        return JsonResponse(result.as_dict(), status=200)
