"""Lever web hooks.

Lever does not sign the body. Each delivery carries, in the body, a one-time `token` (48
random characters), `triggeredAt` (epoch milliseconds) and `signature` = hex HMAC-SHA256 of
`token + triggeredAt` keyed with the web hook's signature token — and Lever gives each event
type its own signature token, so a connection may hold one secret per event type. Lever's
own advice is to refuse a token seen before and a `triggeredAt` far from now: we refuse
both (the token is the dedupe key, a reused token with another body is a 401; the window is
FAILTRACK_REPLAY_WINDOW_SECONDS). Any 2xx counts as delivered; Lever retries five times.
The settings page's test request has an empty `data` object.

Lever names stages and archive reasons by id only and sends no job: stage ids map through
the connection's stages, reason ids through its reasons, and the job comes from the mirror
(or a placeholder per connection). docs/vendors/lever.md has the full mapping.
"""

from datetime import datetime
from typing import Any

from failures.choices import AtsVendor, EventKind
from integrations.ats.base import (
    AtsAdapter,
    DeliveryInvalid,
    Envelope,
    Inbound,
    SigningKey,
    StoredDelivery,
    Verification,
    ats_id,
    epoch_seconds,
    epoch_to_iso,
    event_id,
    first_matching_key,
    fresh,
    refused,
    require,
)
from integrations.ats.mirror import Mirror
from integrations.signatures import hmac_sha256_hex

# The body field that carries the signature (named in a 401 answer).
SIGNATURE_FIELD = "signature"
# The job of an opportunity whose posting nobody told us: Lever's events carry none.
PLACEHOLDER_JOB_ID = "lever:unknown-posting"
PLACEHOLDER_JOB_TITLE = "Lever posting (not sent by Lever)"

APPLICATION_EVENTS = frozenset(
    {"applicationCreated", "candidateStageChange", "candidateArchiveChange", "candidateHired"}
)

_OUTCOME_KINDS = {
    "rejected": [EventKind.APPLICATION_REJECTED],
    "withdrawn": [EventKind.APPLICATION_WITHDRAWN],
    "hired": [EventKind.APPLICATION_HIRED],
    # An offer declined also ends the application, as the candidate's choice.
    "declined": [EventKind.OFFER_DECLINED, EventKind.APPLICATION_WITHDRAWN],
}


def _text(value: Any) -> str | None:
    """A string or number as text, else None. Not truncated: an id too long for the event
    log fails the delivery naming its field, where a cut id would merge two."""
    if value is None or isinstance(value, (dict, list, bool, float)):
        return None
    return str(value).strip() or None


class LeverAdapter(AtsAdapter):
    """Lever: HMAC of token + triggeredAt in the body; the one-time token is the dedupe key."""

    vendor = AtsVendor.LEVER
    success_status = 200
    signature_header = SIGNATURE_FIELD
    refuse_reused_key_with_other_body = True

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        for key in ("event", "token"):
            value = payload.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DeliveryInvalid(key, "This field is required.")
        if epoch_seconds(payload.get("triggeredAt")) is None:
            raise DeliveryInvalid("triggeredAt", "Must be epoch milliseconds (an integer).")
        data = payload.get("data")
        if data is not None and not isinstance(data, dict):
            raise DeliveryInvalid("data", "Must be a JSON object.")
        return Envelope(
            event_type=payload["event"].strip()[:120],
            dedupe_key=payload["token"].strip(),
            is_ping=not data,  # the settings page's test request: "data": {}
        )

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        payload = inbound.payload
        signature = payload.get(SIGNATURE_FIELD)
        if not isinstance(signature, str) or not signature.strip():
            return refused()
        triggered = payload["triggeredAt"]
        # Exactly as Lever concatenates; a lone surrogate (a JSON escape) cannot verify, and
        # must not crash the encoding either.
        plain = f"{payload['token']}{triggered}".encode("utf-8", "surrogatepass")
        verification = first_matching_key(
            keys,
            "HMAC of token + triggeredAt",
            signature.strip().lower(),
            lambda secret: hmac_sha256_hex(secret, plain),
        )
        return fresh(verification, triggered, now, what="triggeredAt", unit=1000)

    def to_events(self, delivery: StoredDelivery, mirror: Mirror) -> list[dict] | None:
        if delivery.event_type not in APPLICATION_EVENTS or not delivery.payload.get("data"):
            return None  # test delivery, deletions, interviews (beta), contacts, anything new
        return _Mapping(delivery, mirror).events()


class _Mapping:
    """One delivery's translation; collects what had to be derived."""

    def __init__(self, delivery: StoredDelivery, mirror: Mirror) -> None:
        self.delivery = delivery
        self.mirror = mirror
        self.event_type = delivery.event_type
        self.body = delivery.payload
        self.data = delivery.payload["data"]
        self.derived: list[str] = []

    def events(self) -> list[dict] | None:
        opportunity_id = ats_id(require(self.body, "data.opportunityId"), "data.opportunityId")
        self.known = self.mirror.application(opportunity_id)
        self.parts = {
            "application": {"id": opportunity_id, "candidate_id": self.candidate_id()},
            "job": self.job(),
        }
        occurred_at = epoch_to_iso(self.body["triggeredAt"], milliseconds=True)
        if self.event_type == "applicationCreated":
            self.parts["application"]["applied_at"] = occurred_at
            details = {}
            if application_id := _text(self.data.get("applicationId")):
                details["lever_application_id"] = application_id
            return [self.event(EventKind.APPLICATION_CREATED, occurred_at, details=details)]
        if self.event_type == "candidateHired":
            return [self.event(EventKind.APPLICATION_HIRED, occurred_at)]
        if self.event_type == "candidateStageChange":
            return [self.stage_change(occurred_at)]
        return self.archive_change(occurred_at)

    def event(self, kind: str, occurred_at: str, *, suffix: str = "", **extra: Any) -> dict:
        details = dict(extra.pop("details", {}))
        details["ats_event"] = self.event_type
        if self.derived:
            details["derived"] = sorted(set(self.derived))
        # Lever documents an event UID (`id`); the one-time token stands in when it is absent.
        base = _text(self.body.get("id")) or self.delivery.dedupe_key
        return {
            "id": event_id("lever", base, *([suffix] if suffix else [])),
            "kind": kind,
            "occurred_at": occurred_at,
            **self.parts,
            **extra,
            "details": details,
        }

    def candidate_id(self) -> str:
        """The contact (the person); the mirror's, once known, so it never changes."""
        if self.known is not None:
            if self.known.candidate_ats_id != _text(self.data.get("contactId")):
                self.derived.append("application.candidate_id")
            return self.known.candidate_ats_id
        for key in ("contactId", "candidateId"):  # candidateId: Lever's deprecated alias
            if value := _text(self.data.get(key)):
                return value
        raise DeliveryInvalid("data.contactId", "This field is required.")

    def job(self) -> dict:
        """The posting: the mirror's, else one Lever sent, else the connection's placeholder."""
        if self.known is not None:
            self.derived.append("job.id")
            return {"id": self.known.job_ats_id}
        if posting_id := _text(self.data.get("postingId")):
            return {"id": posting_id}
        self.derived.append("job.id")
        return {"id": PLACEHOLDER_JOB_ID, "title": PLACEHOLDER_JOB_TITLE}

    def stage_change(self, occurred_at: str) -> dict:
        to_stage = ats_id(require(self.body, "data.toStageId"), "data.toStageId")
        resolved = self.mirror.stage(to_stage)
        if resolved.category is None:
            raise DeliveryInvalid(
                "data.toStageId",
                f"Lever stage {to_stage!r} is not mapped for this connection: add a connection "
                "stage (the id, its name and category), then replay the delivery.",
            )
        details: dict[str, Any] = {"stage_id": to_stage}
        if from_stage := _text(self.data.get("fromStageId")):
            previous = self.mirror.stage(from_stage)
            details["previous_stage"] = {
                "id": from_stage,
                "name": previous.name,
                "category": previous.category,
            }
        return self.event(
            EventKind.APPLICATION_STAGE_CHANGED,
            occurred_at,
            stage={"name": resolved.name, "category": resolved.category},
            details=details,
        )

    def archive_change(self, occurred_at: str) -> list[dict] | None:
        archived = self.data.get("toArchived")
        if isinstance(archived, dict):
            return self.archived(archived, occurred_at)
        if archived is not None:
            raise DeliveryInvalid("data.toArchived", "Must be a JSON object or null.")
        # Unarchived: Lever names no stage; back into the last pipeline stage we recorded.
        stage = self.mirror.stage_before_close(self.parts["application"]["id"])
        if self.known is None or stage is None:
            return None  # nothing of ours to re-open; its next stage change will place it
        self.derived.append("stage.name")
        return [
            self.event(
                EventKind.APPLICATION_STAGE_CHANGED,
                occurred_at,
                stage={"name": stage.name, "category": stage.category},
                details={"reopened": True},
            )
        ]

    def archived(self, archived: dict, occurred_at: str) -> list[dict]:
        reason = _text(archived.get("reason"))
        if reason is None:
            raise DeliveryInvalid("data.toArchived.reason", "This field is required.")
        archived_at = epoch_seconds(archived.get("archivedAt")) or 0
        triggered_at = epoch_seconds(self.body["triggeredAt"]) or 0
        # archivedAt is not signed: only a time no later than the signed triggeredAt counts.
        if 0 < archived_at <= triggered_at:
            occurred_at = epoch_to_iso(archived_at, milliseconds=True)
        outcome = self.mirror.reason_outcome(reason)
        details: dict[str, Any] = {"archive_reason_id": reason}
        if outcome is None:
            # Unmapped reasons count as the company's decision (most are); the event says
            # so, and mapping the reason (withdrawn, declined…) applies to later deliveries.
            outcome = "rejected"
            self.derived.append("reason.outcome")
        if name := self.mirror.reason_name(reason):
            details["reason"] = name  # compliance exclusions compare reason names
        details["outcome"] = outcome
        kinds = _OUTCOME_KINDS[outcome]
        return [
            self.event(
                kind, occurred_at, suffix=kind.value if len(kinds) > 1 else "", details=details
            )
            for kind in kinds
        ]
