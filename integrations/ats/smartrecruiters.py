"""SmartRecruiters: Webhooks Subscription API callbacks, ids in the body, facts in headers.

Facts from SmartRecruiters' developer docs (docs/vendors/smartrecruiters.md has the sources):

- Activation handshake: SmartRecruiters POSTs with an `X-Hook-Secret` header and expects,
  within 20 s, a 200 echoing that header. Nothing is stored: the value only proves the URL
  answers, and SmartRecruiters signs callbacks with a separate subscription secret key.
- Callbacks carry `event-id`, `event-name`, `event-version`, `link` (the entity's API URL)
  and `smartrecruiters-timestamp` (seconds) headers, and are acknowledged with 202.
- `smartrecruiters-signature: v1=<hex>[;v1=<hex>...]`: hex HMAC-SHA256 over
  `timestamp.body.event-id.event-name.event-version.link` (absent headers as empty strings),
  one segment per active secret key; any segment verifying is enough.
- The body holds ids (job, candidate, offer, ...): what it lacks is derived from the mirror.
"""

import hashlib
import hmac
from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind, StageCategory
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Handshake,
    Inbound,
    SigningKey,
    StoredDelivery,
    Verification,
    event_id,
    first_matching_key,
    fresh,
    refused,
)
from integrations.models import ReasonOutcome

SIGNATURE_HEADER = "smartrecruiters-signature"
TIMESTAMP_HEADER = "smartrecruiters-timestamp"
HANDSHAKE_HEADER = "X-Hook-Secret"
# The headers the v1 signature covers after the timestamp and the body, in this order.
SIGNED_HEADERS = ("event-id", "event-name", "event-version", "link")

# Application statuses placed without a mapping; sub-statuses (customer-defined) and other
# statuses are looked up in the connection's or organization's stage mapping first.
STATUS_CATEGORY = {
    "LEAD": StageCategory.SOURCING,
    "NEW": StageCategory.SCREENING,
    "IN_REVIEW": StageCategory.SCREENING,
    "INTERVIEW": StageCategory.INTERVIEWING,
    "OFFER": StageCategory.OFFER,
}
STATUS_OUTCOME = {
    "REJECTED": ReasonOutcome.REJECTED,
    "WITHDRAWN": ReasonOutcome.WITHDRAWN,
    "HIRED": ReasonOutcome.HIRED,
}
OUTCOME_KIND = {
    ReasonOutcome.REJECTED: EventKind.APPLICATION_REJECTED,
    ReasonOutcome.WITHDRAWN: EventKind.APPLICATION_WITHDRAWN,
    ReasonOutcome.HIRED: EventKind.APPLICATION_HIRED,
    ReasonOutcome.DECLINED: EventKind.OFFER_DECLINED,
}
OFFER_STATUS_KIND = {
    "SENT": EventKind.OFFER_EXTENDED,
    "ACCEPTED": EventKind.OFFER_ACCEPTED,
    "DECLINED": EventKind.OFFER_DECLINED,
    "REJECTED": EventKind.OFFER_DECLINED,
}
CLOSED_JOB_STATUSES = {"CLOSED", "FILLED", "CANCELLED"}
ACTIVE = "active"


def _text(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _first(body: dict, *names: str) -> str:
    """The first non-empty of several spellings (`jobId` / `job_id`) of a body field."""
    for name in names:
        value = _text(body.get(name))
        if value:
            return value
    return ""


def _header_bytes(value: str) -> bytes:
    # WSGI hands header values over as latin-1 decoded text: encoding back gives the bytes.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def v1_signature(secret: str, timestamp: str, body: bytes, headers: dict[str, str]) -> str:
    """The hex v1 signature SmartRecruiters sends for these headers and body."""
    message = b".".join(
        [
            _header_bytes(timestamp),
            body,
            *(_header_bytes(headers.get(h, "")) for h in SIGNED_HEADERS),
        ]
    )
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class SmartRecruitersAdapter(AtsAdapter):
    """SmartRecruiters webhooks: applications, statuses, offers, interviews, jobs."""

    vendor = AtsVendor.SMARTRECRUITERS
    # SmartRecruiters expects exactly 202 for a callback (also for one we already had).
    success_status = 202
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER, HANDSHAKE_HEADER.lower()})

    def handshake(self, inbound: Inbound) -> Handshake | None:
        secret = inbound.headers.get(HANDSHAKE_HEADER)
        if secret is None:
            return None
        secret = secret.strip()
        if not secret or len(secret) > 500 or not secret.isprintable():
            return Handshake(
                status=400,
                body={"error": "Invalid X-Hook-Secret header.", "field": "X-Hook-Secret"},
            )
        return Handshake(
            status=200, headers={HANDSHAKE_HEADER: secret}, body={"status": "activated"}
        )

    def envelope(self, inbound: Inbound) -> Envelope:
        if not isinstance(inbound.payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        name = (inbound.headers.get("event-name") or "").strip()
        delivery_id = (inbound.headers.get("event-id") or "").strip()
        if not name:
            raise DeliveryInvalid("event-name", "This header is required.")
        if not delivery_id:
            raise DeliveryInvalid("event-id", "This header is required.")
        return Envelope(event_type=name[:120], dedupe_key=delivery_id)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        header = inbound.headers.get(SIGNATURE_HEADER) or ""
        given = [
            value.strip().lower()
            for scheme, _, value in (part.strip().partition("=") for part in header.split(";"))
            if scheme.strip().lower() == "v1" and value.strip()
        ]
        timestamp = (inbound.headers.get(TIMESTAMP_HEADER) or "").strip()
        if not given or not timestamp:
            return refused()
        signed = {name: inbound.headers.get(name) or "" for name in SIGNED_HEADERS}
        verification = first_matching_key(
            keys,
            "v1 HMAC (smartrecruiters)",
            given,
            lambda secret: v1_signature(secret, timestamp, inbound.body, signed),
        )
        return fresh(verification, timestamp, now, what="smartrecruiters-timestamp")

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        name = delivery.event_type
        if name == "application.created":
            return self._application_created(delivery)
        if name == "application.status.updated":
            return self._status_updated(delivery, mirror)
        if name in ("offer.created", "offer.updated", "offer.approval.approved"):
            return self._offer(delivery, mirror)
        if name in ("interview.created", "interview.canceled"):
            return self._interview(delivery, mirror)
        if name in ("job.created", "job.updated", "job.status.updated"):
            return self._job(delivery)
        return None  # candidate.*, attachments, approvals steps...: nothing we record

    # --- helpers --------------------------------------------------------------------------

    def _event(self, delivery: StoredDelivery, kind: str, derived: list[str], **parts: Any) -> dict:
        details = dict(parts.pop("details", None) or {})
        details["ats_event"] = delivery.event_type
        version = delivery.headers.get("event-version")
        if version:
            details["event_version"] = version
        # The body carries no time of the change: when we received it stands in for it.
        derived = [*derived, "occurred_at"]
        details["derived"] = sorted(set(derived))
        return {
            "id": event_id("smartrecruiters", delivery.dedupe_key, kind),
            "kind": kind,
            "occurred_at": delivery.received_at.isoformat(),
            **parts,
            "details": details,
        }

    def _ids(self, delivery: StoredDelivery) -> tuple[str, str]:
        body = delivery.payload
        job_id = _first(body, "jobId", "job_id")
        candidate_id = _first(body, "candidateId", "candidate_id")
        if not job_id:
            raise DeliveryInvalid("jobId", "This field is required.")
        if not candidate_id:
            raise DeliveryInvalid("candidateId", "This field is required.")
        return job_id, candidate_id

    def _refs(self, job_id: str, candidate_id: str) -> dict:
        # A SmartRecruiters application is a candidate's application to a job: that pair
        # is its identity in SmartRecruiters' own API, and ours.
        return {
            "application": {"id": f"{candidate_id}:{job_id}", "candidate_id": candidate_id},
            "job": {"id": job_id},
        }

    # --- events ---------------------------------------------------------------------------

    def _application_created(self, delivery: StoredDelivery) -> list[dict]:
        job_id, candidate_id = self._ids(delivery)
        return [
            self._event(
                delivery, EventKind.APPLICATION_CREATED, [], **self._refs(job_id, candidate_id)
            )
        ]

    def _status_updated(self, delivery: StoredDelivery, mirror: Any) -> list[dict]:
        body = delivery.payload
        job_id, candidate_id = self._ids(delivery)
        refs = self._refs(job_id, candidate_id)
        status = _first(body, "status", "applicationStatus").upper()
        sub_status = _first(body, "subStatus", "sub_status")
        if not status:
            raise DeliveryInvalid(
                "status",
                "The callback carries no status; the application's state is only available "
                "from SmartRecruiters' API (see the stored link header).",
            )
        known = mirror.application(refs["application"]["id"])
        derived: list[str] = []
        details: dict[str, Any] = {
            "status": status,
            **({"sub_status": sub_status} if sub_status else {}),
        }
        if status in STATUS_OUTCOME:
            reason = _first(body, "reasonId", "reason_id", "reason")
            mapped = mirror.reason_outcome(reason) if reason else None
            outcome = mapped or STATUS_OUTCOME[status]
            if mapped:
                details["ats_reason"] = reason[:200]
            if known is not None and known.status != ACTIVE and outcome != ReasonOutcome.DECLINED:
                return []
            return [self._event(delivery, OUTCOME_KIND[outcome], derived, details=details, **refs)]
        if status == "TRANSFERRED":
            return []
        stage = self._stage(mirror, status, sub_status, derived)
        if known is not None and known.current_stage:
            details["previous_stage"] = known.current_stage
            derived.append("stage.previous")
        return [
            self._event(
                delivery,
                EventKind.APPLICATION_STAGE_CHANGED,
                derived,
                stage=stage,
                details=details,
                **refs,
            )
        ]

    def _stage(self, mirror: Any, status: str, sub_status: str, derived: list[str]) -> dict:
        name = f"{status} / {sub_status}" if sub_status else status
        for key in (f"{status}:{sub_status}" if sub_status else "", sub_status, name, status):
            if key:
                resolved = mirror.stage(key)
                if resolved.category:
                    return {"name": name[:200], "category": resolved.category}
        if status in STATUS_CATEGORY:
            derived.append("stage.category")
            return {"name": name[:200], "category": STATUS_CATEGORY[status]}
        raise DeliveryInvalid(
            "status",
            f"Status {name!r} is not mapped: add a stage mapping for it to the connection, "
            "then replay the delivery.",
        )

    def _offer(self, delivery: StoredDelivery, mirror: Any) -> list[dict]:
        body = delivery.payload
        job_id, candidate_id = self._ids(delivery)
        offer_id = _first(body, "offerId", "offer_id", "id")
        if delivery.event_type == "offer.approval.approved":
            kind = EventKind.OFFER_APPROVED
        else:
            kind = OFFER_STATUS_KIND.get(_first(body, "status", "offerStatus").upper())
            if kind is None:  # created as a draft, waiting for approval...: nothing yet
                return []
        details = {"offer_id": offer_id} if offer_id else {}
        event = self._event(delivery, kind, [], details=details, **self._refs(job_id, candidate_id))
        if offer_id:
            # Every offer.updated repeats the offer's status: one offer sent, accepted or
            # declined is one fact, so the id names the offer rather than the callback.
            event["id"] = event_id("smartrecruiters", "offer", offer_id, kind)
        return [event]

    def _interview(self, delivery: StoredDelivery, mirror: Any) -> list[dict]:
        body = delivery.payload
        job_id, candidate_id = self._ids(delivery)
        interview_id = _first(body, "interviewId", "interview_id", "id")
        if not interview_id:
            raise DeliveryInvalid("interviewId", "This field is required.")
        kind = (
            EventKind.INTERVIEW_SCHEDULED
            if delivery.event_type == "interview.created"
            else EventKind.INTERVIEW_CANCELLED
        )
        refs = self._refs(job_id, candidate_id)
        return [self._event(delivery, kind, [], interview={"id": interview_id}, **refs)]

    def _job(self, delivery: StoredDelivery) -> list[dict]:
        body = delivery.payload
        job_id = _first(body, "jobId", "job_id", "id")
        if not job_id:
            raise DeliveryInvalid("jobId", "This field is required.")
        status = _first(body, "status").upper()
        if delivery.event_type == "job.created":
            kind = EventKind.JOB_CREATED
        elif status in CLOSED_JOB_STATUSES:
            kind = EventKind.JOB_CLOSED
        else:
            kind = EventKind.JOB_UPDATED
        details = {"job_status": status} if status else {}
        return [self._event(delivery, kind, [], job={"id": job_id}, details=details)]
