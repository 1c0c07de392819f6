"""Greenhouse Recruiting web hooks.

Greenhouse signs the raw body: `Signature: sha256 <hex HMAC-SHA256>` (algorithm, one space,
digest; no `=`), keyed with the secret entered when the web hook was created. It counts only
HTTP 200 as delivered and retries anything else (up to 6 times over about 15 hours). Every
delivery carries a `Greenhouse-Event-ID` header, our dedupe key. The body is
`{"action": ..., "payload": {...}}`; saving a web hook first sends a `ping` action.

What Greenhouse leaves out we derive from the mirror and list in `details.derived`: the
previous stage of a stage change, the candidate of an offer (offers name only the
application), the application of a cancelled interview. docs/vendors/greenhouse.md has the
full mapping.
"""

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

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
    body_hmac_hex,
    body_sha256,
    dig,
    event_id,
    refused,
    require,
)
from integrations.ats.mirror import Mirror

SIGNATURE_HEADER = "Signature"
EVENT_ID_HEADER = "Greenhouse-Event-ID"
PING_ACTION = "ping"
# Greenhouse's rejection reason type meaning the candidate withdrew.
WITHDRAWN_REASON_TYPE = "they rejected us"

APPLICATION_ACTIONS = frozenset(
    {
        "new_candidate_application",
        "new_prospect_application",
        "candidate_stage_change",
        "reject_candidate",
        "unreject_candidate",
        "hire_candidate",
        "unhire_candidate",
    }
)
OFFER_ACTIONS = frozenset({"offer_created", "offer_approved", "offer_updated"})
JOB_ACTIONS = frozenset({"job_created", "job_updated"})
MAPPED_ACTIONS = APPLICATION_ACTIONS | OFFER_ACTIONS | JOB_ACTIONS | {"interview_deleted"}


def _timestamp(value: Any) -> str | None:
    """An ISO 8601 timestamp with a zone as Greenhouse sends it, or None (dates, garbage)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return value


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _text(value: Any, limit: int = 300) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text[:limit] or None


def _id(value: Any) -> str | None:
    """An optional id as text, never cut: one too long fails the mapped event naming it."""
    if value is None or isinstance(value, (dict, list, bool, float)):
        return None
    return str(value).strip() or None


def _first(items: Any) -> dict:
    """The first element of a list when it is an object, else an empty object."""
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def _job_ref(job: dict, field: str) -> dict:
    """The canonical job of a Greenhouse job object (ids, title, department, dates)."""
    ref: dict[str, Any] = {"id": ats_id(job.get("id"), field)}
    if title := _text(job.get("name")):
        ref["title"] = title
    if department := _text(_first(job.get("departments")).get("name")):
        ref["department"] = department
    for ours, theirs in (("opened_at", "opened_at"), ("closed_at", "closed_at")):
        if stamp := _timestamp(job.get(theirs)):
            ref[ours] = stamp
    for ours, role in (("hiring_manager_id", "hiring_managers"), ("recruiter_id", "recruiters")):
        if user_id := _id(_first(dig(job, f"hiring_team.{role}")).get("user_id")):
            ref[ours] = user_id
    return ref


class GreenhouseAdapter(AtsAdapter):
    """Greenhouse Recruiting: body HMAC in `Signature`, dedupe on `Greenhouse-Event-ID`."""

    vendor = AtsVendor.GREENHOUSE
    success_status = 200  # Greenhouse retries every other status, even 202
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        action = payload.get("action")
        if not isinstance(action, str) or not action.strip():
            raise DeliveryInvalid("action", "This field is required.")
        action = action.strip()
        is_ping = action == PING_ACTION
        delivery_id = (inbound.headers.get(EVENT_ID_HEADER) or "").strip()
        if not delivery_id:
            if not is_ping:
                raise DeliveryInvalid(EVENT_ID_HEADER, "This header is required.")
            # A ping is answered whatever it carries: Greenhouse disables a web hook whose
            # ping fails. Identical pings are one delivery.
            delivery_id = f"ping:{body_sha256(inbound.body)}"
        if action in MAPPED_ACTIONS and not isinstance(payload.get("payload"), dict):
            raise DeliveryInvalid("payload", "Must be a JSON object.")
        return Envelope(event_type=action[:120], dedupe_key=delivery_id, is_ping=is_ping)

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        given = (inbound.headers.get(SIGNATURE_HEADER) or "").strip()
        algorithm, _, digest = given.partition(" ")
        if algorithm.lower() != "sha256" or not digest.strip():
            return refused()
        return body_hmac_hex(keys, "sha256 HMAC of body", digest.strip(), inbound.body)

    def to_events(self, delivery: StoredDelivery, mirror: Mirror) -> list[dict] | None:
        action = delivery.event_type
        if action not in MAPPED_ACTIONS:
            return None  # ping, deletions, candidate updates, anything new: nothing to record
        mapping = _Mapping(delivery, mirror)
        if action in APPLICATION_ACTIONS:
            return mapping.application_events()
        if action in OFFER_ACTIONS:
            return mapping.offer_events()
        if action in JOB_ACTIONS:
            return mapping.job_events()
        return mapping.interview_deleted()


class _Mapping:
    """One delivery's translation; collects what had to be derived."""

    def __init__(self, delivery: StoredDelivery, mirror: Mirror) -> None:
        self.delivery = delivery
        self.mirror = mirror
        self.action = delivery.event_type
        self.body = delivery.payload
        self.derived: list[str] = []

    # --- shared pieces --------------------------------------------------------------------

    def event(self, kind: str, *, occurred_at: str | None, **parts: Any) -> dict:
        if occurred_at is None:
            occurred_at = _iso(self.delivery.received_at)
            self.derived.append("occurred_at")
        details = dict(parts.pop("details", {}))
        details["ats_event"] = self.action
        if self.derived:
            details["derived"] = sorted(set(self.derived))
        return {
            "id": parts.pop("event_id", None) or event_id("greenhouse", self.delivery.dedupe_key),
            "kind": kind,
            "occurred_at": occurred_at,
            **{key: value for key, value in parts.items() if value is not None},
            "details": details,
        }

    def stage(self, stage: Any, path: str) -> dict:
        """Name and category of a Greenhouse stage: mapped by name, else by id, else refused."""
        if not isinstance(stage, dict):
            raise DeliveryInvalid(path, "Must be a JSON object.")
        name = _text(stage.get("name"), 200)
        if name is None:
            raise DeliveryInvalid(f"{path}.name", "This field is required.")
        category = self.mirror.stage(name).category
        if category is None and stage.get("id") is not None:
            category = self.mirror.stage(str(stage["id"])).category
        if category is None:
            raise DeliveryInvalid(
                f"{path}.name",
                f"Stage {name!r} is not mapped for this connection or organization: add a "
                "stage mapping, then replay the delivery.",
            )
        return {"name": name, "category": category}

    # --- applications ---------------------------------------------------------------------

    def application_events(self) -> list[dict] | None:
        app = require(self.body, "payload.application")
        if not isinstance(app, dict):
            raise DeliveryInvalid("payload.application", "Must be a JSON object.")
        app_id = ats_id(require(self.body, "payload.application.id"), "payload.application.id")
        known = self.mirror.application(app_id)
        candidate_id = _id(dig(app, "candidate.id"))
        if candidate_id is None:
            if known is None:
                raise DeliveryInvalid("payload.application.candidate.id", "This field is required.")
            candidate_id = known.candidate_ats_id
            self.derived.append("application.candidate_id")
        job = self.job_of(app, known)
        if job is None:
            return None  # a prospect on no job: not in any pipeline we track
        application: dict[str, Any] = {"id": app_id, "candidate_id": candidate_id}
        source = dig(app, "source.name") or dig(app, "source.public_name")
        if source_name := _text(source):
            application["source"] = source_name
        if applied_at := _timestamp(app.get("applied_at")):
            application["applied_at"] = applied_at
        common = {"application": application, "job": job}
        last_activity = _timestamp(app.get("last_activity_at"))

        if self.action in ("new_candidate_application", "new_prospect_application"):
            stage = None
            if isinstance(app.get("current_stage"), dict):
                stage = self.stage(app["current_stage"], "payload.application.current_stage")
            return [
                self.event(
                    EventKind.APPLICATION_CREATED,
                    occurred_at=_timestamp(app.get("applied_at")) or last_activity,
                    stage=stage,
                    details={"prospect": bool(app.get("prospect"))},
                    **common,
                )
            ]
        if self.action == "candidate_stage_change":
            stage = self.stage(app.get("current_stage"), "payload.application.current_stage")
            details: dict[str, Any] = {}
            if known is not None and known.current_stage:
                # Greenhouse names only the stage entered; the one left is ours.
                details["previous_stage"] = {
                    "name": known.current_stage,
                    "category": known.stage_category or None,
                }
                self.derived.append("stage.previous")
            return [
                self.event(
                    EventKind.APPLICATION_STAGE_CHANGED,
                    occurred_at=last_activity,
                    stage=stage,
                    details=details,
                    **common,
                )
            ]
        if self.action == "reject_candidate":
            kind, details = self.rejection(app)
            return [
                self.event(
                    kind,
                    occurred_at=_timestamp(app.get("rejected_at")) or last_activity,
                    details=details,
                    **common,
                )
            ]
        if self.action == "hire_candidate":
            hired_at = _timestamp(dig(app, "offer.resolved_at")) or last_activity
            details = {}
            if offer_id := _id(dig(app, "offer.id")):
                details["offer_id"] = offer_id
            return [
                self.event(
                    EventKind.APPLICATION_HIRED, occurred_at=hired_at, details=details, **common
                )
            ]
        # unreject_candidate, unhire_candidate: back into the pipeline at its current stage,
        # which re-opens the application in the mirror.
        stage = self.stage(app.get("current_stage"), "payload.application.current_stage")
        return [
            self.event(
                EventKind.APPLICATION_STAGE_CHANGED,
                occurred_at=last_activity,
                stage=stage,
                details={"reopened": True},
                **common,
            )
        ]

    def job_of(self, app: dict, known: Any) -> dict | None:
        jobs = app.get("jobs")
        job, field = None, "payload.application.jobs.id"
        if isinstance(jobs, list):
            job = next((j for j in jobs if isinstance(j, dict) and j.get("id") is not None), None)
        if job is None and isinstance(app.get("job"), dict) and app["job"].get("id") is not None:
            job, field = app["job"], "payload.application.job.id"  # hire's deprecated job
        if job is not None:
            ref = _job_ref(job, field)
            if "opened_at" not in ref and (opened := _timestamp(job.get("open_date"))):
                ref["opened_at"] = opened
            return ref
        if known is not None:
            self.derived.append("job.id")
            return {"id": known.job_ats_id}
        return None

    def rejection(self, app: dict) -> tuple[str, dict]:
        """Rejected or withdrawn: the connection's reason mapping, else the reason type."""
        reason = (
            app.get("rejection_reason") if isinstance(app.get("rejection_reason"), dict) else {}
        )
        reason_id = _id(reason.get("id"))
        reason_name = _text(reason.get("name"))
        reason_type = _text(dig(reason, "type.name"))
        outcome = None
        for key in (reason_id, reason_name):
            if key and outcome is None:
                outcome = self.mirror.reason_outcome(key)
        details: dict[str, Any] = {
            "rejection_reason": {"id": reason_id, "name": reason_name, "type": reason_type}
        }
        if reason_name:
            details["reason"] = reason_name
        if outcome == "declined":
            # The offer's own decline comes as offer_updated (Rejected); here it closes the
            # application as the candidate's choice.
            outcome = "withdrawn"
        if outcome in ("rejected", "withdrawn"):
            details["outcome_from"] = "connection reason mapping"
        else:
            is_withdrawal = (reason_type or "").lower() == WITHDRAWN_REASON_TYPE
            outcome = "withdrawn" if is_withdrawal else "rejected"
            details["outcome_from"] = "rejection reason type"
        kind = (
            EventKind.APPLICATION_WITHDRAWN
            if outcome == "withdrawn"
            else EventKind.APPLICATION_REJECTED
        )
        return kind, details

    # --- offers -------------------------------------------------------------------------

    def offer_events(self) -> list[dict] | None:
        offer = self.body["payload"]
        status = (_text(offer.get("offer_status")) or "").lower()
        sent_on = _text(offer.get("sent_on"), 40)
        if self.action == "offer_approved":
            kind, occurred_at = EventKind.OFFER_APPROVED, None
        elif status == "accepted":
            kind, occurred_at = EventKind.OFFER_ACCEPTED, _timestamp(offer.get("resolved_at"))
        elif status == "rejected":
            kind, occurred_at = EventKind.OFFER_DECLINED, _timestamp(offer.get("resolved_at"))
        elif status == "created" and sent_on:
            kind, occurred_at = EventKind.OFFER_EXTENDED, None
        else:
            return None  # a draft not yet sent, or a version deprecated by a newer one
        app_id = ats_id(require(self.body, "payload.application_id"), "payload.application_id")
        known = self.mirror.application(app_id)
        if known is None:
            raise DeliveryInvalid(
                "payload.application_id",
                f"Application {app_id} is not known yet and Greenhouse offers name no candidate; "
                "replay the delivery once the application has arrived.",
            )
        self.derived.append("application.candidate_id")
        job_id = _id(offer.get("job_id"))
        if job_id is None:
            job_id = known.job_ats_id
            self.derived.append("job.id")
        offer_id = ats_id(require(self.body, "payload.id"), "payload.id")
        version = _text(offer.get("version"), 20) or "1"
        details: dict[str, Any] = {"offer_id": offer_id, "offer_version": version}
        if sent_on:
            details["sent_on"] = sent_on
        return [
            self.event(
                kind,
                occurred_at=occurred_at,
                # One offer version reaches each state once, whichever delivery tells us.
                event_id=event_id("greenhouse", "offer", offer_id, f"v{version}", kind),
                application={"id": app_id, "candidate_id": known.candidate_ats_id},
                job={"id": job_id},
                details=details,
            )
        ]

    # --- jobs and interviews -------------------------------------------------------------

    def job_events(self) -> list[dict]:
        job = require(self.body, "payload.job")
        if not isinstance(job, dict):
            raise DeliveryInvalid("payload.job", "Must be a JSON object.")
        ref = _job_ref(job, "payload.job.id")
        status = (_text(job.get("status")) or "").lower()
        if self.action == "job_created":
            kind = EventKind.JOB_CREATED
            occurred_at = _timestamp(job.get("created_at")) or _timestamp(job.get("opened_at"))
        elif status == "closed":
            kind, occurred_at = EventKind.JOB_CLOSED, _timestamp(job.get("closed_at"))
        else:
            kind, occurred_at = EventKind.JOB_UPDATED, None
        return [self.event(kind, occurred_at=occurred_at, job=ref, details={"status": status})]

    def interview_deleted(self) -> list[dict] | None:
        interview_id = ats_id(require(self.body, "payload.interview.id"), "payload.interview.id")
        known = self.mirror.interview_application(interview_id)
        if known is None:
            return None  # an interview we never heard of: nothing to cancel
        self.derived += ["application.id", "application.candidate_id", "job.id"]
        return [
            self.event(
                EventKind.INTERVIEW_CANCELLED,
                occurred_at=None,
                application={"id": known.ats_id, "candidate_id": known.candidate_ats_id},
                job={"id": known.job_ats_id},
                interview={"id": interview_id},
            )
        ]
