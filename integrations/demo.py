"""Demo deliveries: a Greenhouse connection whose webhooks went through the real path.

Gives the admin's *Inbound deliveries* realistic rows to look at: processed ones, a ping,
and one kept as failed because its stage was never mapped (replay it after adding the
mapping). Runs only with DEBUG on, like the rest of the demo; safe to run twice (the same
Greenhouse event ids are duplicates the second time).
"""

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.test import Client
from django.utils import timezone

from failures.choices import AtsVendor
from failures.models import AtsConnection, Organization
from failures.services import connection_create
from integrations.ingest import deliveries_process_pending
from integrations.signatures import hmac_sha256_hex

DEMO_GREENHOUSE_SECRET = "demo-greenhouse-secret"


def _application(app_id: str, stage: str, at: str, applied: str) -> dict[str, Any]:
    return {
        "id": app_id,
        "status": "active",
        "applied_at": applied,
        "last_activity_at": at,
        "source": {"id": 16, "name": "LinkedIn"},
        "current_stage": {"id": 900 + len(stage), "name": stage},
        "candidate": {"id": f"gh-cand-{app_id}"},
        "jobs": [{"id": 274075, "name": "Data Scientist", "departments": [{"name": "Data"}]}],
    }


def demo_deliveries(*, organization_slug: str = "acme") -> AtsConnection:
    """Send a handful of signed Greenhouse webhooks to the demo's Greenhouse connection."""
    if not settings.DEBUG:
        raise RuntimeError("Demo deliveries only load with DEBUG on.")
    organization = Organization.objects.get(slug=organization_slug)
    connection = organization.connections.filter(vendor=AtsVendor.GREENHOUSE).first()
    if connection is None:
        connection = connection_create(
            actor=None,
            organization=organization,
            name="Greenhouse",
            vendor=AtsVendor.GREENHOUSE,
            secret=DEMO_GREENHOUSE_SECRET,
        )
    now = timezone.now().replace(microsecond=0)

    def stamp(days: float) -> str:
        return (now - timedelta(days=days)).isoformat().replace("+00:00", "Z")

    deliveries: list[tuple[str, dict[str, Any]]] = [
        ("demo-gh-1", {"action": "ping", "payload": {"web_hook_id": 1}}),
        (
            "demo-gh-2",
            {
                "action": "new_candidate_application",
                "payload": {
                    "application": _application("gh-1", "Application Review", stamp(9), stamp(9))
                },
            },
        ),
        (
            "demo-gh-3",
            {
                "action": "candidate_stage_change",
                "payload": {"application": _application("gh-1", "Onsite", stamp(4), stamp(9))},
            },
        ),
        (
            # A stage nobody mapped: kept as failed until a mapping exists, then replayed.
            "demo-gh-4",
            {
                "action": "candidate_stage_change",
                "payload": {
                    "application": _application("gh-1", "Take-home Test", stamp(1), stamp(9))
                },
            },
        ),
    ]
    client = Client(HTTP_HOST="localhost")
    url = f"/api/v1/hooks/greenhouse/{connection.pk}/"
    for event_id, payload in deliveries:
        body = json.dumps(payload).encode()
        client.post(
            url,
            data=body,
            content_type="application/json",
            headers={
                "Signature": "sha256 " + hmac_sha256_hex(DEMO_GREENHOUSE_SECRET, body),
                "Greenhouse-Event-ID": event_id,
            },
        )
    deliveries_process_pending()
    return connection
