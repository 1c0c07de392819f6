"""Teamtailor: company webhooks with JSON:API resources, signed in `TT-Signature`.

- Signature: `TT-Signature` is base64 of `t=<unix seconds>,v2=<hex HMAC-SHA256 of
  "<t>." + raw body>` keyed with the webhook's signature key (the scheme of issue #4; the
  stored Teamtailor docs describe the key and the payload but not the header's bytes, see
  docs/vendors/teamtailor.md). Timestamps outside the replay window are refused.
- Body, as documented: `{"payload": {"event_name": "job.update", "data": {"id", "type",
  "attributes"}}, "signature": ...}`; a body without the `payload` wrapper is read the same.
  Attribute names come kebab-cased (`created-at`) or snake-cased (`created_at`): both count.
- Teamtailor does not retry. A delivery that verifies is therefore never refused for its
  content: whatever it holds is stored and answered 200, and mapping problems surface as
  failed deliveries that can be replayed.
"""

import base64
import binascii
from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind, StageCategory
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Inbound,
    SigningKey,
    StoredDelivery,
    Verification,
    body_sha256,
    event_id,
    first_matching_key,
    fresh,
    refused,
)
from integrations.models import ReasonOutcome
from integrations.signatures import hmac_sha256_hex

SIGNATURE_HEADER = "TT-Signature"
ACTIVE = "active"
OUTCOME_KIND = {
    ReasonOutcome.REJECTED: EventKind.APPLICATION_REJECTED,
    ReasonOutcome.WITHDRAWN: EventKind.APPLICATION_WITHDRAWN,
    ReasonOutcome.HIRED: EventKind.APPLICATION_HIRED,
    ReasonOutcome.DECLINED: EventKind.OFFER_DECLINED,
}
CLOSED_JOB_STATUSES = {"archived"}


def _text(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def attribute(attributes: Any, name: str) -> Any:
    """An attribute by its kebab-case name, also found snake-cased or camelCased."""
    if not isinstance(attributes, dict):
        return None
    snake = name.replace("-", "_")
    head, *rest = snake.split("_")
    camel = head + "".join(part.title() for part in rest)
    for key in (name, snake, camel):
        if attributes.get(key) is not None:
            return attributes[key]
    return None


def resource(body: Any) -> tuple[str, dict]:
    """(event name, JSON:API data object) of a Teamtailor body, wrapped or not."""
    if not isinstance(body, dict):
        return "", {}
    inner = body.get("payload") if isinstance(body.get("payload"), dict) else body
    name = _text(inner.get("event_name") or inner.get("event-name") or body.get("event_name"))
    data = inner.get("data") if isinstance(inner.get("data"), dict) else {}
    return name, data


def related_id(data: dict, name: str) -> str:
    """The id of a JSON:API relationship (`relationships.candidate.data.id`), or an
    attribute spelling of it (`candidate-id`, `candidate_id`)."""
    relationships = data.get("relationships")
    if isinstance(relationships, dict):
        for key in (name, name.replace("-", "_")):
            rel = relationships.get(key)
            if isinstance(rel, dict) and isinstance(rel.get("data"), dict):
                value = _text(rel["data"].get("id"))
                if value:
                    return value
    return _text(attribute(data.get("attributes"), f"{name}-id"))


def parse_signature(header: str) -> tuple[str, list[str]]:
    """(timestamp, hex signatures) of a TT-Signature value; base64 or already decoded."""
    value = header.strip()
    if not value.startswith("t="):
        try:
            value = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "", []
    timestamp, signatures = "", []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            timestamp = item.strip()
        elif key == "v2" and item.strip():
            signatures.append(item.strip().lower())
    return timestamp, signatures


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex v2 signature of a body at a timestamp."""
    return hmac_sha256_hex(secret, timestamp.encode() + b"." + body)


class TeamtailorAdapter(AtsAdapter):
    """Teamtailor company webhooks: job applications and jobs."""

    vendor = AtsVendor.TEAMTAILOR
    success_status = 200
    content_types = ("application/json", "application/vnd.api+json")
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        if not isinstance(inbound.payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        name, data = resource(inbound.payload)
        # No event id is documented: a resource version (id + updated-at) identifies a
        # change; without one, the body's digest does. Nothing here refuses a delivery.
        updated = _text(attribute(data.get("attributes"), "updated-at"))
        resource_id = _text(data.get("id"))
        if resource_id and updated:
            key = f"{name or 'unknown'}:{_text(data.get('type'))}:{resource_id}:{updated}"
        else:
            key = f"{name or 'unknown'}:sha256:{body_sha256(inbound.body)}"
        return Envelope(event_type=(name or "unknown")[:120], dedupe_key=key)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        timestamp, given = parse_signature(inbound.headers.get(SIGNATURE_HEADER) or "")
        if not timestamp or not given:
            return refused()
        verification = first_matching_key(
            keys,
            "v2 HMAC (TT-Signature)",
            given,
            lambda secret: sign(secret, timestamp, inbound.body),
        )
        return fresh(verification, timestamp, now, what="TT-Signature timestamp")

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        name, data = resource(delivery.payload)
        mapper = {
            "job_application.create": self._application_created,
            "job_application.update": self._application_updated,
            "job.create": self._job,
            "job.update": self._job,
        }.get(name)
        if mapper is None:  # candidates (personal data), deletions, audit events...
            return None
        if not _text(data.get("id")):
            raise DeliveryInvalid("payload.data.id", "This field is required.")
        return mapper(delivery, data, mirror)

    # --- helpers --------------------------------------------------------------------------

    def _event(
        self,
        delivery: StoredDelivery,
        kind: str,
        when: Any,
        derived: list[str],
        **parts: Any,
    ) -> dict:
        details = dict(parts.pop("details", None) or {})
        details["ats_event"] = delivery.event_type
        occurred_at = _text(when)
        if not occurred_at:
            occurred_at = delivery.received_at.isoformat()
            derived = [*derived, "occurred_at"]
        if derived:
            details["derived"] = sorted(set(derived))
        return {
            "id": event_id("teamtailor", delivery.dedupe_key, kind),
            "kind": kind,
            "occurred_at": occurred_at,
            **parts,
            "details": details,
        }

    def _refs(self, data: dict, mirror: Any, derived: list[str]) -> dict:
        app_id = _text(data.get("id"))
        candidate_id, job_id = related_id(data, "candidate"), related_id(data, "job")
        if not (candidate_id and job_id):
            known = mirror.application(app_id)
            if known is None:
                missing = "candidate" if not candidate_id else "job"
                raise DeliveryInvalid(
                    f"payload.data.relationships.{missing}",
                    f"Job application {app_id!r} names no {missing} and is not known yet; "
                    "replay once its job_application.create has been recorded.",
                )
            if not candidate_id:
                candidate_id = known.candidate_ats_id
                derived.append("application.candidate_id")
            if not job_id:
                job_id = known.job_ats_id
                derived.append("job.id")
        source = _text(attribute(data.get("attributes"), "referring-site"))
        return {
            "application": {
                "id": app_id,
                "candidate_id": candidate_id,
                **({"source": source[:300]} if source else {}),
            },
            "job": {"id": job_id},
        }

    def _stage(self, data: dict, mirror: Any) -> dict | None:
        """The stage (by its id, through the connection's stage mapping), if one is named."""
        stage_id = related_id(data, "stage")
        if not stage_id:
            return None
        resolved = mirror.stage(stage_id)
        if resolved.category is None:
            raise DeliveryInvalid(
                "payload.data.relationships.stage",
                f"Stage {stage_id!r} is not mapped: add a stage mapping for this Teamtailor "
                "stage id (with its name) to the connection, then replay the delivery.",
            )
        return {"name": resolved.name[:200], "category": resolved.category}

    # --- events ---------------------------------------------------------------------------

    def _application_created(self, delivery: StoredDelivery, data: dict, mirror: Any):
        attributes = data.get("attributes")
        derived: list[str] = []
        refs = self._refs(data, mirror, derived)
        when = attribute(attributes, "created-at")
        if _text(when):
            refs["application"]["applied_at"] = _text(when)
        stage = self._stage(data, mirror)
        parts = {"stage": stage} if stage else {}
        return [
            self._event(delivery, EventKind.APPLICATION_CREATED, when, derived, **parts, **refs)
        ]

    def _application_updated(self, delivery: StoredDelivery, data: dict, mirror: Any):
        attributes = data.get("attributes")
        derived: list[str] = []
        refs = self._refs(data, mirror, derived)
        known = mirror.application(refs["application"]["id"])
        rejected_at = _text(attribute(attributes, "rejected-at"))
        if rejected_at:
            if known is not None and known.status != ACTIVE:
                return []
            reason_id = related_id(data, "reject-reason")
            outcome = mirror.reason_outcome(reason_id) if reason_id else None
            details: dict[str, Any] = {}
            if reason_id:
                details["ats_reason_id"] = reason_id
            if outcome is None:
                # Teamtailor's reject reason says who rejected, but the webhook names only its
                # id: without a connection mapping, a rejection is the company's.
                outcome = ReasonOutcome.REJECTED
                derived.append("reason.outcome")
            details["outcome"] = outcome
            return [
                self._event(
                    delivery, OUTCOME_KIND[outcome], rejected_at, derived, details=details, **refs
                )
            ]
        stage = self._stage(data, mirror)
        if stage is None:
            return []
        when = attribute(attributes, "changed-stage-at") or attribute(attributes, "updated-at")
        if stage["category"] == StageCategory.HIRED:
            if known is not None and known.status == "hired":
                return []
            return [self._event(delivery, EventKind.APPLICATION_HIRED, when, derived, **refs)]
        if (
            known is not None
            and known.status == ACTIVE
            and known.current_stage == stage["name"]
            and known.stage_category == stage["category"]
        ):
            return []  # an update that did not move the application
        details = {}
        if known is not None and known.current_stage:
            details["previous_stage"] = known.current_stage
            derived.append("stage.previous")
        return [
            self._event(
                delivery,
                EventKind.APPLICATION_STAGE_CHANGED,
                when,
                derived,
                stage=stage,
                details=details,
                **refs,
            )
        ]

    def _job(self, delivery: StoredDelivery, data: dict, mirror: Any):
        attributes = data.get("attributes")
        job: dict[str, Any] = {"id": _text(data.get("id"))}
        title = _text(attribute(attributes, "title"))
        if title:
            job["title"] = title[:300]
        status = _text(attribute(attributes, "status")).lower()
        if delivery.event_type == "job.create":
            kind, when = EventKind.JOB_CREATED, attribute(attributes, "created-at")
        elif status in CLOSED_JOB_STATUSES:
            kind, when = EventKind.JOB_CLOSED, attribute(attributes, "updated-at")
        else:
            kind, when = EventKind.JOB_UPDATED, attribute(attributes, "updated-at")
        details = {"job_status": status} if status else {}
        return [self._event(delivery, kind, when, [], job=job, details=details)]
