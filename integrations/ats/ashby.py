"""Ashby: `{"webhookActionId", "action", "data"}` deliveries signed with `Ashby-Signature`.

Facts from Ashby's developer docs (docs/vendors/ashby.md has the sources):

- `Ashby-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the webhook's
  secret token; any 2xx is success; non-2xx answers are retried up to 10 times except
  401/403/404/405/410.
- `webhookActionId` is the same across retries *and* across the related deliveries one
  change fans out to (a hire also sends `applicationUpdate` and `candidateStageChange`), so
  the dedupe key is `action` + `webhookActionId`, while the canonical event ids are
  `webhookActionId` + canonical kind: the related deliveries converge on one event.
- A rejection is a move into a stage of type `Archived` with `archiveReason.reasonType`
  `RejectedByOrg` / `RejectedByCandidate` / `Other`; a connection's reason mapping wins.
- `ping` is sent when a webhook is created or edited.
"""

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
    ats_id,
    body_hmac_hex,
    body_sha256,
    dig,
    event_id,
    refused,
)
from integrations.models import ReasonOutcome

SIGNATURE_HEADER = "Ashby-Signature"
PREFIX = "sha256="

# Stage types Ashby reports, placed without a mapping where the type says enough. Stages of
# type "Active" (most of an interview plan) need a stage mapping by id or title.
STAGE_TYPE_CATEGORY = {
    "Lead": StageCategory.SOURCING,
    "PreInterviewScreen": StageCategory.SCREENING,
    "Offer": StageCategory.OFFER,
    "Hired": StageCategory.HIRED,
    "Archived": StageCategory.CLOSED,
}
# archiveReason.reasonType -> outcome; "Other" (and a missing reason) counts as rejected.
REASON_TYPE_OUTCOME = {
    "RejectedByOrg": ReasonOutcome.REJECTED,
    "RejectedByCandidate": ReasonOutcome.WITHDRAWN,
}
OUTCOME_KIND = {
    ReasonOutcome.REJECTED: EventKind.APPLICATION_REJECTED,
    ReasonOutcome.WITHDRAWN: EventKind.APPLICATION_WITHDRAWN,
    ReasonOutcome.HIRED: EventKind.APPLICATION_HIRED,
}
INTERVIEW_STATUS_KIND = {
    "Scheduled": EventKind.INTERVIEW_SCHEDULED,
    "Cancelled": EventKind.INTERVIEW_CANCELLED,
    "WaitingOnFeedback": EventKind.INTERVIEW_COMPLETED,
    "Complete": EventKind.INTERVIEW_COMPLETED,
}
CLOSED_JOB_STATUSES = {"Closed", "Archived"}
ACTIVE = "active"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _need(data: Any, path: str, where: str) -> str:
    """A non-empty id (string or number) at `path` of `data`; DeliveryInvalid names it."""
    value = dig(data, path)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DeliveryInvalid(f"{where}.{path}", "This field is required.")
    return ats_id(value, f"{where}.{path}")


def _objects(value: Any) -> list[dict]:
    """The objects of a JSON array; anything else (a number, a string, null) has none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _when(value: Any, received_at: datetime, derived: list[str]) -> str:
    """The vendor's timestamp, or when we received the delivery (marked derived)."""
    if _text(value):
        return value.strip()
    derived.append("occurred_at")
    return received_at.isoformat()


class _Delivery:
    """One delivery being mapped: its ids, the mirror, and an event builder."""

    def __init__(self, delivery: StoredDelivery, mirror: Any) -> None:
        self.delivery = delivery
        self.mirror = mirror
        self.payload = delivery.payload
        action_id = _text(self.payload.get("webhookActionId"))
        self.base_id = f"ashby:{action_id or delivery.dedupe_key}"

    def event(
        self, kind: str, occurred_at: str, derived: list[str], *, base_id: str = "", **parts: Any
    ) -> dict:
        details = dict(parts.pop("details", None) or {})
        details["ats_event"] = self.delivery.event_type
        if derived:
            details["derived"] = sorted(set(derived))
        return {
            "id": event_id(base_id or self.base_id, kind),
            "kind": kind,
            "occurred_at": occurred_at,
            **{key: value for key, value in parts.items() if value is not None},
            "details": details,
        }


class AshbyAdapter(AtsAdapter):
    """Ashby webhooks: applications, stage changes, hires, offers, interviews, jobs."""

    vendor = AtsVendor.ASHBY
    success_status = 200
    signature_header = SIGNATURE_HEADER
    credential_headers = frozenset({SIGNATURE_HEADER.lower()})

    def envelope(self, inbound: Inbound) -> Envelope:
        payload = inbound.payload
        if not isinstance(payload, dict):
            raise DeliveryInvalid("body", "Must be a JSON object.")
        action = payload.get("action")
        if not _text(action):
            raise DeliveryInvalid("action", "This field is required.")
        action_id = _text(payload.get("webhookActionId"))
        # Ashby documents webhookActionId on every payload; without one, a byte-identical
        # retry still dedupes on the body's digest.
        key = action_id or f"sha256:{body_sha256(inbound.body)}"
        return Envelope(
            event_type=action.strip()[:120],
            dedupe_key=f"{action.strip()}:{key}",
            is_ping=action.strip() == "ping",
        )

    def verify(self, inbound: Inbound, keys: list[SigningKey], now: datetime) -> Verification:
        given = (inbound.headers.get(SIGNATURE_HEADER) or "").strip()
        if not given.startswith(PREFIX):
            return refused()
        return body_hmac_hex(keys, "sha256 HMAC of body", given[len(PREFIX) :], inbound.body)

    def to_events(self, delivery: StoredDelivery, mirror: Any) -> list[dict] | None:
        mapper = {
            "applicationSubmit": self._application_submit,
            "applicationUpdate": self._application_update,
            "candidateStageChange": self._stage_change,
            "candidateHire": self._candidate_hire,
            "offerCreate": self._offer,
            "offerUpdate": self._offer,
            "interviewScheduleCreate": self._interview_schedule,
            "interviewScheduleUpdate": self._interview_schedule,
            "jobCreate": self._job,
            "jobUpdate": self._job,
        }.get(delivery.event_type)
        if mapper is None:  # ping and every action we do not record
            return None
        if not isinstance(delivery.payload.get("data"), dict):
            raise DeliveryInvalid("data", "Must be a JSON object.")
        return mapper(_Delivery(delivery, mirror))

    # --- applications ---------------------------------------------------------------------

    def _application(self, ctx: _Delivery) -> dict:
        application = ctx.payload["data"].get("application")
        if not isinstance(application, dict):
            raise DeliveryInvalid("data.application", "Must be a JSON object.")
        return application

    def _refs(self, app: dict) -> dict[str, Any]:
        """The application and job of an Ashby application object, ids only for people."""
        where = "data.application"
        source = _text(dig(app, "source.title"))
        return {
            "application": {
                "id": _need(app, "id", where),
                "candidate_id": _need(app, "candidate.id", where),
                **({"source": source[:300]} if source else {}),
                **({"applied_at": app["createdAt"]} if _text(app.get("createdAt")) else {}),
            },
            "job": {
                "id": _need(app, "job.id", where),
                **({"title": app["job"]["title"][:300]} if _text(dig(app, "job.title")) else {}),
            },
        }

    def _stage(self, ctx: _Delivery, app: dict, derived: list[str]) -> dict:
        """Name and category of the application's current stage (mapping, then stage type)."""
        stage = app.get("currentInterviewStage")
        if not isinstance(stage, dict):
            raise DeliveryInvalid("data.application.currentInterviewStage", "Must be an object.")
        stage_id, title, stage_type = (
            _text(stage.get("id")),
            _text(stage.get("title")),
            _text(stage.get("type")),
        )
        for key in (stage_id, title):
            if key:
                resolved = ctx.mirror.stage(key)
                if resolved.category:
                    return {"name": (title or resolved.name)[:200], "category": resolved.category}
        if stage_type in STAGE_TYPE_CATEGORY and title:
            derived.append("stage.category")
            return {"name": title[:200], "category": STAGE_TYPE_CATEGORY[stage_type]}
        raise DeliveryInvalid(
            "data.application.currentInterviewStage",
            f"Stage {title or stage_id!r} (type {stage_type or 'unknown'}) is not mapped: add a "
            "stage mapping for its id or title to the connection, then replay the delivery.",
        )

    def _application_submit(self, ctx: _Delivery) -> list[dict]:
        app = self._application(ctx)
        derived: list[str] = []
        refs = self._refs(app)
        stage = self._stage(ctx, app, derived)
        when = _when(app.get("createdAt"), ctx.delivery.received_at, derived)
        return [ctx.event(EventKind.APPLICATION_CREATED, when, derived, stage=stage, **refs)]

    def _application_update(self, ctx: _Delivery) -> list[dict]:
        # Also sent for source or custom-field edits: only a change of stage or status counts.
        return self._application_moved(ctx, only_if_changed=True)

    def _stage_change(self, ctx: _Delivery) -> list[dict]:
        return self._application_moved(ctx, only_if_changed=False)

    def _candidate_hire(self, ctx: _Delivery) -> list[dict]:
        app = self._application(ctx)
        derived: list[str] = []
        refs = self._refs(app)
        offer = ctx.payload["data"].get("offer")
        details: dict[str, Any] = {}
        if isinstance(offer, dict) and _text(offer.get("id")):
            details["offer_id"] = offer["id"]
            start = dig(offer, "latestVersion.startDate")
            if _text(start):
                details["start_date"] = start
        when = _when(app.get("updatedAt"), ctx.delivery.received_at, derived)
        return [ctx.event(EventKind.APPLICATION_HIRED, when, derived, details=details, **refs)]

    def _application_moved(self, ctx: _Delivery, *, only_if_changed: bool) -> list[dict]:
        app = self._application(ctx)
        refs = self._refs(app)
        known = ctx.mirror.application(refs["application"]["id"])
        derived: list[str] = []
        status = _text(app.get("status"))
        stage_type = _text(dig(app, "currentInterviewStage.type"))
        if status == "Archived" or stage_type == "Archived":
            if only_if_changed and known is not None and known.status != ACTIVE:
                return []
            when = _when(
                app.get("archivedAt") or app.get("updatedAt"), ctx.delivery.received_at, derived
            )
            return self._archived(ctx, app, refs, when, derived)
        if status == "Hired" or stage_type == "Hired":
            if only_if_changed and known is not None and known.status == "hired":
                return []
            when = _when(app.get("updatedAt"), ctx.delivery.received_at, derived)
            return [ctx.event(EventKind.APPLICATION_HIRED, when, derived, **refs)]
        stage = self._stage(ctx, app, derived)
        if (
            only_if_changed
            and known is not None
            and known.status == ACTIVE
            and known.current_stage == stage["name"]
        ):
            return []
        details: dict[str, Any] = {}
        if known is not None and known.current_stage:
            # Ashby sends only where the application is now: the stage it left is ours.
            details["previous_stage"] = known.current_stage
            derived.append("stage.previous")
        when = _when(app.get("updatedAt"), ctx.delivery.received_at, derived)
        return [
            ctx.event(
                EventKind.APPLICATION_STAGE_CHANGED,
                when,
                derived,
                stage=stage,
                details=details,
                **refs,
            )
        ]

    def _archived(
        self, ctx: _Delivery, app: dict, refs: dict, when: str, derived: list[str]
    ) -> list[dict]:
        """A move to an Archived stage: rejected, withdrawn (or declined, when mapped so)."""
        reason = app.get("archiveReason") if isinstance(app.get("archiveReason"), dict) else {}
        reason_id, text, reason_type = (
            _text(reason.get("id")),
            _text(reason.get("text")),
            _text(reason.get("reasonType")),
        )
        outcome = ctx.mirror.reason_outcome(reason_id) or ctx.mirror.reason_outcome(text)
        source = "connection reason mapping"
        if outcome is None and reason_type in REASON_TYPE_OUTCOME:
            outcome, source = REASON_TYPE_OUTCOME[reason_type], "archiveReason.reasonType"
        if outcome is None:
            outcome, source = ReasonOutcome.REJECTED, "default for reasonType Other or none"
            derived.append("reason.outcome")
        details = {
            "outcome": outcome,
            "outcome_source": source,
            **({"reason": text[:300]} if text else {}),
            **({"reason_type": reason_type} if reason_type else {}),
            **({"ats_reason_id": reason_id} if reason_id else {}),
        }
        if outcome == ReasonOutcome.DECLINED:
            # The candidate declined the offer and the application was archived for it.
            return [
                ctx.event(EventKind.OFFER_DECLINED, when, derived, details=details, **refs),
                ctx.event(EventKind.APPLICATION_WITHDRAWN, when, derived, details=details, **refs),
            ]
        return [ctx.event(OUTCOME_KIND[outcome], when, derived, details=details, **refs)]

    # --- offers and interviews: ids only, the rest from the mirror -------------------------

    def _known_refs(self, ctx: _Delivery, app_id: str, field: str, derived: list[str]) -> dict:
        known = ctx.mirror.application(app_id)
        if known is None:
            raise DeliveryInvalid(
                field,
                f"Application {app_id!r} is not known yet (its applicationSubmit or stage "
                "change has not been recorded); replay this delivery once it has.",
            )
        derived.extend(["application.candidate_id", "job.id"])
        return {
            "application": {"id": app_id, "candidate_id": known.candidate_ats_id},
            "job": {"id": known.job_ats_id},
        }

    def _offer(self, ctx: _Delivery) -> list[dict]:
        offer = ctx.payload["data"].get("offer")
        if not isinstance(offer, dict):
            raise DeliveryInvalid("data.offer", "Must be a JSON object.")
        offer_id = _need(offer, "id", "data.offer")
        app_id = _need(offer, "applicationId", "data.offer")
        acceptance = _text(offer.get("acceptanceStatus"))
        offer_status = _text(offer.get("offerStatus"))
        latest = offer.get("latestVersion")
        if not isinstance(latest, dict):
            versions = _objects(offer.get("versions"))
            latest = versions[-1] if versions else {}
        wanted: list[tuple[str, Any]] = []
        if latest.get("approvalStatus") == "Approved":
            wanted.append((EventKind.OFFER_APPROVED, None))
        if acceptance == "Accepted":
            wanted.append((EventKind.OFFER_ACCEPTED, offer.get("decidedAt")))
        elif acceptance == "Declined":
            wanted.append((EventKind.OFFER_DECLINED, offer.get("decidedAt")))
        elif acceptance == "WaitingOnResponse" or offer_status == "WaitingOnCandidateResponse":
            wanted.append((EventKind.OFFER_EXTENDED, None))
        if not wanted:
            return []
        events = []
        for kind, timestamp in wanted:
            derived: list[str] = []
            refs = self._known_refs(ctx, app_id, "data.offer.applicationId", derived)
            if timestamp is None and _text(latest.get("createdAt")):
                # Ashby does not say when a version was approved or sent: the version's
                # creation is the stable stand-in (the same on every later offerUpdate).
                timestamp = latest["createdAt"]
                derived.append("occurred_at")
            when = _when(timestamp, ctx.delivery.received_at, derived)
            details = {
                "offer_id": offer_id,
                **({"acceptance_status": acceptance} if acceptance else {}),
                **({"offer_status": offer_status} if offer_status else {}),
            }
            # One offer (version) decided, approved or sent is one fact, however many
            # offerUpdates repeat its status: the ids name the offer, not the delivery.
            version_id = _text(latest.get("id"))
            fact = (
                f"ashby:offer-version:{version_id}"
                if version_id and kind in (EventKind.OFFER_APPROVED, EventKind.OFFER_EXTENDED)
                else f"ashby:offer:{offer_id}"
            )
            events.append(ctx.event(kind, when, derived, base_id=fact, details=details, **refs))
        return events

    def _interview_schedule(self, ctx: _Delivery) -> list[dict]:
        schedule = ctx.payload["data"].get("interviewSchedule")
        if not isinstance(schedule, dict):
            raise DeliveryInvalid("data.interviewSchedule", "Must be a JSON object.")
        where = "data.interviewSchedule"
        schedule_id = _need(schedule, "id", where)
        kind = INTERVIEW_STATUS_KIND.get(_text(schedule.get("status")))
        if kind is None:  # still being scheduled, on hold, ...: nothing happened yet
            return []
        derived: list[str] = []
        refs = self._known_refs(
            ctx, _need(schedule, "applicationId", where), f"{where}.applicationId", derived
        )
        starts = sorted(
            e["startTime"]
            for e in _objects(schedule.get("interviewEvents"))
            if _text(e.get("startTime"))
        )
        interview = {"id": schedule_id, **({"scheduled_for": starts[0]} if starts else {})}
        when = _when(
            schedule.get("updatedAt") or schedule.get("createdAt"),
            ctx.delivery.received_at,
            derived,
        )
        details = {"schedule_status": schedule.get("status")}
        return [ctx.event(kind, when, derived, interview=interview, details=details, **refs)]

    # --- jobs -----------------------------------------------------------------------------

    def _job(self, ctx: _Delivery) -> list[dict]:
        job = ctx.payload["data"].get("job")
        if not isinstance(job, dict):
            raise DeliveryInvalid("data.job", "Must be a JSON object.")
        ref: dict[str, Any] = {"id": _need(job, "id", "data.job")}
        if _text(job.get("title")):
            ref["title"] = job["title"].strip()[:300]
        for ours, theirs in (("opened_at", "openedAt"), ("closed_at", "closedAt")):
            if _text(job.get(theirs)):
                ref[ours] = job[theirs]
        for member in _objects(job.get("hiringTeam")):
            role, user = _text(member.get("role")).lower(), _text(member.get("userId"))
            if user and role == "hiring manager":
                ref["hiring_manager_id"] = user
            elif user and role == "recruiter":
                ref["recruiter_id"] = user
        derived: list[str] = []
        status = _text(job.get("status"))
        if ctx.delivery.event_type == "jobCreate":
            kind = EventKind.JOB_CREATED
            when = _when(
                job.get("createdAt") or job.get("updatedAt"), ctx.delivery.received_at, derived
            )
        elif status in CLOSED_JOB_STATUSES:
            kind = EventKind.JOB_CLOSED
            when = _when(
                job.get("closedAt") or job.get("updatedAt"), ctx.delivery.received_at, derived
            )
        else:
            kind = EventKind.JOB_UPDATED
            when = _when(job.get("updatedAt"), ctx.delivery.received_at, derived)
        details = {"job_status": status} if status else {}
        return [ctx.event(kind, when, derived, job=ref, details=details)]
