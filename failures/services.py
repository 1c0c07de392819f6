"""Use-cases of the failures app: every write goes through one of these functions.

The admin, the API, webhooks, Celery tasks and management commands all call them, so a
rule lives in one place. Side effects (signals) happen after the transaction commits.
"""

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from failures import crypto
from failures.choices import (
    FAILURE_STATUS_TRANSITIONS,
    ApplicationStatus,
    AtsVendor,
    DetectorKind,
    EventKind,
    FailureKind,
    FailureSeverity,
    FailureStatus,
    MembershipRole,
    ReopenPolicy,
    StageCategory,
    VersionStatus,
)
from failures.detectors import Detection, EventContext, detector_for
from failures.events import CanonicalEvent, EventInvalid, JobRef, event_parse
from failures.models import (
    Application,
    ApplicationHold,
    AtsConnection,
    Candidate,
    ComplianceExclusion,
    ConnectionSecret,
    DefinitionException,
    DefinitionVersion,
    EventKey,
    Failure,
    FailureDefinition,
    IntegrationError,
    Interview,
    Job,
    Membership,
    Organization,
    RecruitingEvent,
    Region,
    StageMapping,
    StageTransition,
    Team,
    new_connection_secret,
)
from failures.roles import STAFF_ROLES, group_name
from failures.scan_recording import (
    BATCH_SIZE,
    ExceptionBook,
    batched_recording_available,
    failures_record_batch,
)
from failures.selectors import definition_versions_in_force, scope_queryset
from failures.signals import failures_recorded

logger = logging.getLogger(__name__)

# --- Tenancy ----------------------------------------------------------------------------


def user_roles_sync(*, user: AbstractBaseUser) -> None:
    """Make a user's role groups and staff flag follow their memberships."""
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    role_groups = Group.objects.filter(name__startswith="failtrack: ")
    wanted = [g for g in role_groups if g.name in {group_name(r) for r in roles}]
    user.groups.remove(*[g for g in role_groups if g not in wanted])
    user.groups.add(*wanted)
    is_staff = user.is_superuser or bool(roles & STAFF_ROLES)
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def membership_grant(
    *,
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser,
    organization: Organization,
    role: str,
    regions: list[Region] | None = None,
    teams: list[Team] | None = None,
) -> Membership:
    """Give a user a role in an organization (replacing any earlier role there)."""
    if role not in MembershipRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    for item in [*(regions or []), *(teams or [])]:
        if item.organization_id != organization.pk:
            raise ValidationError({"regions": f"{item} belongs to another organization."})
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    membership.regions.set(regions or [])
    membership.teams.set(teams or [])
    user_roles_sync(user=user)
    logger.info("membership granted org=%s role=%s user_id=%s", organization.slug, role, user.pk)
    return membership


@transaction.atomic
def connection_create(
    *,
    actor: AbstractBaseUser | None,
    organization: Organization,
    name: str,
    vendor: str = AtsVendor.GENERIC,
    secret: str | None = None,
) -> AtsConnection:
    """Open an ATS connection with one signing secret (the given one, or a fresh random one)."""
    connection = AtsConnection(organization=organization, name=name, vendor=vendor)
    connection.full_clean()
    connection._history_user = actor
    connection.save()
    connection_secret_add(
        actor=actor, connection=connection, secret=secret or new_connection_secret()
    )
    logger.info(
        "connection created org=%s vendor=%s id=%s", organization.slug, vendor, connection.pk
    )
    return connection


def connection_secret_add(
    *,
    actor: AbstractBaseUser | None,
    connection: AtsConnection,
    secret: str,
    label: str = "",
    event_type: str = "",
) -> ConnectionSecret:
    """Add a signing secret; the ones already active stay valid until revoked (rotation)."""
    if len(secret) < 8:
        raise ValidationError({"secret": "A signing secret must be at least 8 characters."})
    if len(secret) > 500:
        raise ValidationError({"secret": "A signing secret must be at most 500 characters."})
    if not label:
        taken = set(connection.secrets.values_list("label", flat=True))
        label = "primary" if "primary" not in taken else f"key-{len(taken) + 1}"
        while label in taken:
            label += "-new"
    row = ConnectionSecret(connection=connection, label=label, event_type=event_type)
    row.set_value(secret)
    row.full_clean()
    row._history_user = actor
    row.save()
    return row


def connection_secret_revoke(*, actor: AbstractBaseUser | None, secret: ConnectionSecret) -> None:
    """Stop accepting deliveries signed with this secret."""
    secret.is_active = False
    secret._history_user = actor
    secret._change_reason = "revoked"
    secret.save(update_fields=["is_active"])


def connection_secret_reactivate(
    *, actor: AbstractBaseUser | None, secret: ConnectionSecret
) -> None:
    """Accept deliveries signed with a revoked secret again."""
    secret.is_active = True
    secret._history_user = actor
    secret._change_reason = "re-activated"
    secret.save(update_fields=["is_active"])


def secrets_rotate() -> int:
    """Re-encrypt every stored secret under the first configured encryption key."""
    count = 0
    for row in ConnectionSecret.objects.iterator():
        row.ciphertext = crypto.reencrypt(row.ciphertext)
        row.save(update_fields=["ciphertext"])
        count += 1
    return count


# --- Definitions --------------------------------------------------------------------------

# The standard definitions every organization starts with: (code, name, category, kind,
# severity, owner, detector, parameters, description).
STANDARD_DEFINITIONS = [
    (
        "SCR-SLA-BREACH",
        "Screening SLA breached",
        StageCategory.SCREENING,
        FailureKind.PROCESS,
        FailureSeverity.HIGH,
        MembershipRole.TA_OPS,
        DetectorKind.STAGE_SLA,
        {"max_days": 7},
        "An application waited in screening longer than the agreed number of days.",
    ),
    (
        "OFR-DECLINED",
        "Offer declined",
        StageCategory.OFFER,
        FailureKind.OUTCOME,
        FailureSeverity.MEDIUM,
        MembershipRole.HRBP,
        DetectorKind.OFFER_DECLINED,
        {},
        "A candidate declined the offer we extended.",
    ),
]


@transaction.atomic
def definitions_bootstrap(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None = None,
    effective_from: datetime | None = None,
) -> list[FailureDefinition]:
    """Give an organization the standard definitions, each with an approved version 1."""
    effective_from = effective_from or timezone.now()
    definitions = []
    for code, name, category, kind, severity, owner, detector, params, text in STANDARD_DEFINITIONS:
        definition, created = FailureDefinition.objects.get_or_create(
            organization=organization,
            code=code,
            defaults={
                "name": name,
                "stage_category": category,
                "kind": kind,
                "severity": severity,
                "owner_role": owner,
                "description": text,
            },
        )
        if created or not definition.versions.exists():
            version = DefinitionVersion(
                definition=definition,
                number=1,
                detector=detector,
                parameters=dict(params),
                status=VersionStatus.APPROVED,
                effective_from=effective_from,
                approved_at=effective_from,
                created_by=actor,
                change_summary="Standard definition, approved when the organization was set up.",
            )
            version.full_clean()
            version._change_reason = "Standard definition bootstrapped"
            version.save()
        definitions.append(definition)
    return definitions


# --- Recording events ----------------------------------------------------------------------


@dataclass
class EventRecordResult:
    """What recording one event did."""

    event: RecruitingEvent
    created: bool
    failures: list[Failure] = field(default_factory=list)


def _stage_category_resolve(organization: Organization, event: CanonicalEvent) -> str | None:
    if event.stage is None:
        return None
    if event.stage.category:
        return event.stage.category
    mapped = (
        StageMapping.objects.filter(organization=organization, stage_name__iexact=event.stage.name)
        .values_list("category", flat=True)
        .first()
    )
    if mapped is None:
        raise EventInvalid(
            "stage.category",
            f"Stage {event.stage.name!r} is not mapped for this organization: send "
            "stage.category or add a stage mapping.",
        )
    return mapped


def _job_upsert(connection: AtsConnection, ref: JobRef) -> Job:
    organization = connection.organization
    job, _ = Job.objects.select_related("region", "team").get_or_create(
        organization=organization, connection=connection, ats_id=ref.id
    )
    wanted: dict[str, Any] = {}
    for attr in (
        "title",
        "department",
        "job_family",
        "hiring_manager_ats_id",
        "recruiter_ats_id",
        "opened_at",
        "closed_at",
    ):
        value = getattr(ref, attr)
        if value is not None:
            wanted[attr] = value
    if ref.is_strategic is not None:
        wanted["is_strategic"] = ref.is_strategic
    if ref.seniority is not None:
        wanted["seniority"] = ref.seniority
    # Look regions and teams up only when the job does not already point at them.
    if ref.region is not None and (job.region is None or job.region.code != ref.region):
        wanted["region"] = Region.objects.get_or_create(organization=organization, code=ref.region)[
            0
        ]
    if ref.team is not None and (job.team is None or job.team.name != ref.team):
        wanted["team"] = Team.objects.get_or_create(organization=organization, name=ref.team)[0]
    changed = [name for name, value in wanted.items() if getattr(job, name) != value]
    if changed:
        for name in changed:
            setattr(job, name, wanted[name])
        job._change_reason = "Updated from an ATS event"
        job.save(update_fields=changed)
    return job


def _application_upsert(connection: AtsConnection, event: CanonicalEvent, job: Job) -> Application:
    ref = event.application
    assert ref is not None
    organization = connection.organization
    candidate, _ = Candidate.objects.get_or_create(
        organization=organization, connection=connection, ats_id=ref.candidate_id
    )
    application, created = Application.objects.get_or_create(
        organization=organization,
        connection=connection,
        ats_id=ref.id,
        defaults={
            "candidate": candidate,
            "job": job,
            "source": ref.source or "",
            "applied_at": ref.applied_at or event.occurred_at,
        },
    )
    if application.job_id == job.pk:
        application.job = job  # the detectors read it; no second query
    if not created:
        if application.candidate_id != candidate.pk:
            raise EventInvalid(
                "application.candidate_id",
                "Does not match the candidate this application already belongs to.",
            )
        if application.job_id != job.pk:
            raise EventInvalid(
                "job.id", "Does not match the job this application already belongs to."
            )
        if ref.source and not application.source:
            application.source = ref.source
    return application


_TERMINAL = {
    EventKind.APPLICATION_REJECTED: (ApplicationStatus.REJECTED, StageCategory.CLOSED, "Rejected"),
    EventKind.APPLICATION_WITHDRAWN: (
        ApplicationStatus.WITHDRAWN,
        StageCategory.CLOSED,
        "Withdrawn",
    ),
    EventKind.APPLICATION_HIRED: (ApplicationStatus.HIRED, StageCategory.HIRED, "Hired"),
}


def _application_move(
    application: Application,
    *,
    stage: str,
    category: str,
    event: CanonicalEvent,
    log_row: RecruitingEvent,
) -> tuple[EventContext, bool]:
    """Record a transition; put the application there unless the event is older than now.

    Returns what the move left (for the detectors) and whether the application moved.
    """
    at = event.occurred_at
    StageTransition.objects.create(
        application=application,
        from_stage=application.current_stage,
        from_category=application.stage_category,
        to_stage=stage,
        to_category=category,
        occurred_at=at,
        actor_ats_id=event.actor_id,
        actor_role=event.actor_role,
        event=log_row,
    )
    if application.stage_entered_at is not None and at < application.stage_entered_at:
        # An older event arriving late: it belongs in the history, not in "now".
        return EventContext(event=event, application=application), False
    left_category = None
    left_entered = None
    left_stage = application.current_stage or None
    if application.stage_category and application.stage_category != category:
        left_category = application.stage_category
        left_entered = application.category_entered_at
    if application.stage_category != category or application.category_entered_at is None:
        application.category_entered_at = at
    application.current_stage = stage
    application.stage_category = category
    application.stage_entered_at = at
    context = EventContext(
        event=event,
        application=application,
        left_category=left_category,
        left_category_entered_at=left_entered,
        left_stage=left_stage,
    )
    return context, True


def _offer_approved(application: Application, event: CanonicalEvent) -> None:
    application.offer_approved_at = event.occurred_at


def _interview_event(application: Application, event: CanonicalEvent) -> None:
    """Keep the interview mirror: scheduled, cancelled, held, no-show, scorecard in."""
    ref = event.interview
    assert ref is not None
    at = event.occurred_at
    interview, created = Interview.objects.get_or_create(
        application=application,
        ats_id=ref.id,
        defaults={"scheduled_at": at, "scheduled_for": ref.scheduled_for},
    )
    changed: list[str] = []
    if event.kind == EventKind.INTERVIEW_SCHEDULED and not created:
        # Scheduled again: a reschedule undoes the cancellation.
        interview.scheduled_at, interview.scheduled_for = at, ref.scheduled_for
        interview.cancelled_at = None
        changed = ["scheduled_at", "scheduled_for", "cancelled_at"]
    field = {
        EventKind.INTERVIEW_CANCELLED: "cancelled_at",
        EventKind.INTERVIEW_COMPLETED: "completed_at",
        EventKind.INTERVIEW_NO_SHOW: "no_show_at",
        EventKind.SCORECARD_SUBMITTED: "scorecard_submitted_at",
    }.get(event.kind)
    if field is not None and getattr(interview, field) is None:
        setattr(interview, field, at)
        changed.append(field)
    if changed:
        interview.save(update_fields=changed)


def _integration_event(application: Application, event: CanonicalEvent) -> None:
    """Record a failing external system, or its recovery."""
    system = str(event.details.get("system") or "unknown")[:100]
    if event.kind == EventKind.INTEGRATION_ERROR:
        IntegrationError.objects.create(
            application=application,
            system=system,
            occurred_at=event.occurred_at,
            event_id=event.id,
        )
    else:
        IntegrationError.objects.filter(
            application=application,
            system=system,
            recovered_at__isnull=True,
            occurred_at__lte=event.occurred_at,
        ).update(recovered_at=event.occurred_at)


def _hired_start(application: Application, event: CanonicalEvent) -> None:
    application.hired_at = event.occurred_at


_FACT_RECORDERS = {
    EventKind.OFFER_APPROVED: _offer_approved,
    EventKind.INTERVIEW_SCHEDULED: _interview_event,
    EventKind.INTERVIEW_CANCELLED: _interview_event,
    EventKind.INTERVIEW_COMPLETED: _interview_event,
    EventKind.INTERVIEW_NO_SHOW: _interview_event,
    EventKind.SCORECARD_SUBMITTED: _interview_event,
    EventKind.INTEGRATION_ERROR: _integration_event,
    EventKind.INTEGRATION_RECOVERED: _integration_event,
}


def _application_hold(application: Application, event: CanonicalEvent) -> None:
    """Open or close a hold: SLA clocks stop while an application is on hold."""
    open_hold = application.holds.filter(ended_at__isnull=True).order_by("-started_at").first()
    if event.kind == EventKind.APPLICATION_ON_HOLD:
        if open_hold is None:
            ApplicationHold.objects.create(application=application, started_at=event.occurred_at)
    elif open_hold is not None and event.occurred_at >= open_hold.started_at:
        open_hold.ended_at = event.occurred_at
        open_hold.save(update_fields=["ended_at"])


def _event_apply(
    application: Application, event: CanonicalEvent, category: str | None, row: RecruitingEvent
) -> EventContext:
    context = EventContext(event=event, application=application)
    terminal = _TERMINAL.get(event.kind)
    if event.kind in (EventKind.APPLICATION_ON_HOLD, EventKind.APPLICATION_RESUMED):
        _application_hold(application, event)
    elif event.kind in _FACT_RECORDERS:
        _FACT_RECORDERS[event.kind](application, event)
    elif terminal is not None:
        status, terminal_category, label = terminal
        if application.status == ApplicationStatus.ACTIVE:
            context, moved = _application_move(
                application, stage=label, category=terminal_category, event=event, log_row=row
            )
            if moved:
                application.status = status
                application.closed_at = event.occurred_at
                if event.kind == EventKind.APPLICATION_HIRED:
                    _hired_start(application, event)
    elif event.stage is not None and category is not None:
        is_new_stage = (
            application.current_stage != event.stage.name or application.stage_category != category
        )
        if is_new_stage:
            context, moved = _application_move(
                application, stage=event.stage.name, category=category, event=event, log_row=row
            )
            reopens = category not in (StageCategory.CLOSED, StageCategory.HIRED)
            if moved and reopens and application.status != ApplicationStatus.ACTIVE:
                # Moved back into the pipeline: the ATS re-opened the application.
                application.status = ApplicationStatus.ACTIVE
                application.closed_at = None
                _failures_after_reopen(application, event)
    if application.last_event_at is None or event.occurred_at > application.last_event_at:
        application.last_event_at = event.occurred_at
    if event.actor_role.lower() == "recruiter" and (
        application.last_recruiter_action_at is None
        or event.occurred_at > application.last_recruiter_action_at
    ):
        application.last_recruiter_action_at = event.occurred_at
    application.save()
    return context


def _failures_after_reopen(application: Application, event: CanonicalEvent) -> None:
    """Resolve or dismiss the application's open failures, as each version says."""
    to_status = {
        ReopenPolicy.RESOLVE: FailureStatus.RESOLVED,
        ReopenPolicy.DISMISS: FailureStatus.DISMISSED,
    }
    open_failures = application.failures.filter(
        status__in=[FailureStatus.OPEN, FailureStatus.ACKNOWLEDGED]
    ).select_related("definition_version")
    now = timezone.now()
    for failure in open_failures.select_for_update():
        status = to_status.get(failure.definition_version.on_reopen)
        if status is None:
            continue
        failure.status = status
        failure.status_changed_at = now
        failure.status_changed_by = None
        failure.status_reason = f"The ATS re-opened the application (event {event.id})."
        failure._change_reason = failure.status_reason[:100]
        failure.save(
            update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"]
        )


def event_record(*, connection: AtsConnection, payload: Any) -> EventRecordResult:
    """Validate and record one canonical event, update the mirror, and detect failures.

    Idempotent per (connection, event id): a duplicate changes nothing and returns the
    stored event with created=False. Any invalid part rolls back the whole event.
    """
    event = event_parse(payload)
    organization = connection.organization
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = RecruitingEvent.objects.create(
                    organization=organization,
                    connection=connection,
                    event_id=event.id,
                    kind=event.kind,
                    occurred_at=event.occurred_at,
                    payload=event.raw,
                )
                EventKey.objects.create(
                    connection=connection,
                    event_id=event.id,
                    event_pk=row.pk,
                    occurred_at=event.occurred_at,
                )
        except IntegrityError:
            key = EventKey.objects.get(connection=connection, event_id=event.id)
            existing = RecruitingEvent.objects.get(pk=key.event_pk)
            return EventRecordResult(event=existing, created=False)

        category = _stage_category_resolve(organization, event)
        if event.application is None:
            if event.job is not None:
                _job_upsert(connection, event.job)
            return EventRecordResult(event=row, created=True)

        assert event.job is not None
        job = _job_upsert(connection, event.job)
        application = _application_upsert(connection, event, job)
        context = _event_apply(application, event, category, row)
        row.application = application
        row.save(update_fields=["application"])

        detected_at = timezone.now()
        failures = []
        for version in definition_versions_in_force(
            at=detected_at, organization_id=organization.pk
        ):
            for detection in detector_for(version.detector).on_event(version, context):
                if compliance_excludes(version=version, detection=detection, at=detected_at):
                    continue
                failure, created = failure_record(
                    version=version, detection=detection, detected_at=detected_at
                )
                if created:
                    failures.append(failure)
    return EventRecordResult(event=row, created=True, failures=failures)


# --- Failures -----------------------------------------------------------------------------


def failure_record(
    *, version: DefinitionVersion, detection: Detection, detected_at: datetime
) -> tuple[Failure, bool]:
    """Record a detection as a failure once; a repeat returns the existing one."""
    definition = version.definition
    exempt_reason = detection.exempt_reason or _documented_exception(
        definition_id=definition.pk, job_id=detection.job_id, at=detection.occurred_at
    )
    try:
        with transaction.atomic():
            failure = Failure(
                organization_id=definition.organization_id,
                definition=definition,
                definition_version=version,
                application_id=detection.application_id,
                candidate_id=detection.candidate_id,
                job_id=detection.job_id,
                dedupe_key=detection.dedupe_key,
                occurred_at=detection.occurred_at,
                detected_at=detected_at,
                details=detection.details,
            )
            if exempt_reason:
                # Exempted cases are kept, with the reason, never silently dropped.
                failure.status = FailureStatus.EXEMPTED
                failure.status_reason = exempt_reason
                failure.status_changed_at = detected_at
            failure._change_reason = f"Detected by {definition.code} v{version.number}"
            failure.save()
    except IntegrityError:
        existing = Failure.objects.get(
            definition=definition,
            application_id=detection.application_id,
            dedupe_key=detection.dedupe_key,
        )
        return existing, False
    failure_id = failure.pk
    transaction.on_commit(lambda: failures_recorded.send(sender=Failure, failure_ids=[failure_id]))
    logger.debug(
        "failure recorded id=%s code=%s org_id=%s",
        failure_id,
        definition.code,
        definition.organization_id,
    )
    return failure, True


def _documented_exception(*, definition_id: int, job_id: int, at: datetime) -> str | None:
    """The reason of a documented exception covering this job at that moment, if any."""
    exception = (
        DefinitionException.objects.filter(
            definition_id=definition_id, job_id=job_id, starts_at__lte=at
        )
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .order_by("-starts_at")
        .first()
    )
    return f"Documented exception: {exception.reason}" if exception else None


def compliance_excludes(*, version: DefinitionVersion, detection: Detection, at: datetime) -> bool:
    """True (and counted) when the event's reason is one the version must never label."""
    reason = (detection.event_reason or "").strip().lower()
    if not reason:
        return False
    excluded = {r.strip().lower() for r in version.excluded_reasons or []}
    if reason not in excluded:
        return False
    counter, _ = ComplianceExclusion.objects.get_or_create(
        version=version, day=at.date(), reason=reason
    )
    ComplianceExclusion.objects.filter(pk=counter.pk).update(count=F("count") + 1)
    return True


def _actor_may_change_status(actor: AbstractBaseUser, failure: Failure) -> bool:
    """Only a role that may change statuses, in the failure's organization, region and team."""
    if not actor.is_active:
        return False
    in_scope = scope_queryset(
        Failure.objects.filter(pk=failure.pk),
        user=actor,
        region="job__region",
        team="job__team",
        permission="failures.change_failure_status",
    )
    return in_scope.exists()


def failure_transition(
    *, actor: AbstractBaseUser, failure: Failure, to_status: str, reason: str
) -> Failure:
    """Change a failure's status along an allowed transition, with actor and reason."""
    if not _actor_may_change_status(actor, failure):
        raise PermissionDenied("You may not change the status of this failure.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give a reason for the status change."})
    if to_status not in FailureStatus.values:
        raise ValidationError({"status": f"Unknown status {to_status!r}."})
    with transaction.atomic():
        locked = Failure.objects.select_for_update().get(pk=failure.pk)
        if to_status not in FAILURE_STATUS_TRANSITIONS[locked.status]:
            raise ValidationError(
                {
                    "status": f"A {locked.get_status_display().lower()} failure cannot become "
                    f"{FailureStatus(to_status).label.lower()}."
                }
            )
        locked.status = to_status
        locked.status_changed_at = timezone.now()
        locked.status_changed_by = actor
        locked.status_reason = reason
        locked._change_reason = reason
        locked._history_user = actor
        locked.save(
            update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"]
        )
    logger.info("failure status id=%s status=%s actor_id=%s", locked.pk, to_status, actor.pk)
    return locked


def failure_acknowledge(*, actor: AbstractBaseUser, failure: Failure, reason: str) -> Failure:
    """Someone owns the failure now."""
    return failure_transition(
        actor=actor, failure=failure, to_status=FailureStatus.ACKNOWLEDGED, reason=reason
    )


def failure_resolve(*, actor: AbstractBaseUser, failure: Failure, reason: str) -> Failure:
    """The cause was dealt with."""
    return failure_transition(
        actor=actor, failure=failure, to_status=FailureStatus.RESOLVED, reason=reason
    )


def failure_dismiss(*, actor: AbstractBaseUser, failure: Failure, reason: str) -> Failure:
    """It was not a failure after all."""
    return failure_transition(
        actor=actor, failure=failure, to_status=FailureStatus.DISMISSED, reason=reason
    )


def failure_exempt(*, actor: AbstractBaseUser, failure: Failure, reason: str) -> Failure:
    """A documented exception applies (e.g. a strategic hire)."""
    return failure_transition(
        actor=actor, failure=failure, to_status=FailureStatus.EXEMPTED, reason=reason
    )


def failure_reopen(*, actor: AbstractBaseUser, failure: Failure, reason: str) -> Failure:
    """Closing it was a mistake."""
    return failure_transition(
        actor=actor, failure=failure, to_status=FailureStatus.OPEN, reason=reason
    )


# --- Periodic detection --------------------------------------------------------------------


@dataclass
class ScanResult:
    """What one detection scan did."""

    versions: int = 0
    recorded: int = 0
    codes: dict[str, int] = field(default_factory=dict)


def detection_scan(
    *, now: datetime | None = None, organization: Organization | None = None
) -> ScanResult:
    """Run every scanning detector in force; record what timestamps alone reveal.

    Idempotent: a second scan at the same moment records nothing new.
    """
    now = now or timezone.now()
    result = ScanResult()
    versions = definition_versions_in_force(
        at=now, organization_id=organization.pk if organization else None
    )
    for version in versions:
        detector = detector_for(version.detector)
        if not detector.scans:
            continue
        result.versions += 1
        code = version.definition.code
        if batched_recording_available():
            # PostgreSQL: thousands of breaches per statement instead of one per transaction.
            exceptions = ExceptionBook(version.definition_id)
            found = detector.scan(version, now)
            while batch := list(itertools.islice(found, BATCH_SIZE)):
                recorded = len(
                    failures_record_batch(
                        version=version, detections=batch, detected_at=now, exceptions=exceptions
                    )
                )
                result.recorded += recorded
                if recorded:
                    result.codes[code] = result.codes.get(code, 0) + recorded
            continue
        for detection in detector.scan(version, now):
            _, created = failure_record(version=version, detection=detection, detected_at=now)
            if created:
                result.recorded += 1
                result.codes[code] = result.codes.get(code, 0) + 1
    logger.info("detection scan versions=%s recorded=%s", result.versions, result.recorded)
    return result
