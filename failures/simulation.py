"""A realistic, deterministic ATS simulator that knows the failures it causes.

It feeds canonical events through `services.event_record` — the same path a webhook
takes — and writes its ground truth (`SimulationTruth`) so detection can be checked
against it. Memory stays flat: one application's events exist at a time and truth rows
are written in batches.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import holidays
from django.db import reset_queries, transaction

from failures.choices import StageCategory, VersionStatus
from failures.detectors import StageSlaDetector
from failures.models import (
    AtsConnection,
    ComplianceExclusion,
    DefinitionVersion,
    Failure,
    FailureDefinition,
    Organization,
    SimulationTruth,
    StageMapping,
)
from failures.services import connection_create, definitions_bootstrap, event_record

ORGANIZATIONS = [
    ("acme", "Acme Robotics"),
    ("globex", "Globex Health"),
    ("initech", "Initech Retail"),
    ("umbrella", "Umbrella Logistics"),
]
REGIONS = [("EMEA", "Europe, Middle East & Africa"), ("AMER", "Americas"), ("APAC", "Asia Pacific")]
# Each region's public holidays are not business days (recruiter inactivity counts them).
REGION_HOLIDAYS = {"EMEA": "DE", "AMER": "US", "APAC": "SG"}
HOLD_SHARE = 0.10  # applications put on hold for a while during screening
TEAMS = {
    "Platform": (
        "Engineering",
        ["Backend Engineer", "Site Reliability Engineer", "Staff Engineer"],
    ),
    "Data": ("Engineering", ["Data Engineer", "Data Scientist", "Analytics Engineer"]),
    "Sales": ("Sales", ["Account Executive", "Sales Development Rep", "Sales Engineer"]),
    "Support": ("Customer Success", ["Support Specialist", "Customer Success Manager"]),
    "People": ("HR", ["HR Generalist", "Talent Partner"]),
    "Design": ("Design", ["Product Designer", "UX Researcher"]),
}
SOURCES = [("LinkedIn", 35), ("Careers site", 25), ("Referral", 15), ("Indeed", 15), ("Agency", 10)]
STAGES = [
    ("Sourced", StageCategory.SOURCING),
    ("Application Review", StageCategory.SCREENING),
    ("Phone Screen", StageCategory.SCREENING),
    ("Technical Interview", StageCategory.INTERVIEWING),
    ("Onsite", StageCategory.INTERVIEWING),
    ("Offer", StageCategory.OFFER),
    ("Pre-boarding", StageCategory.ONBOARDING),
]
DECLINE_REASONS = ["Compensation", "Accepted another offer", "Location", "Role scope"]
WITHDRAW_REASONS = ["Took another job", "Not interested any more", "Relocation"]
EXIT_REASONS = ["Resigned", "Terminated", "Relocation"]
HISTORY_DAYS = 150
SLA_CODE = "SCR-SLA-BREACH"
OFFER_CODE = "OFR-DECLINED"
DROP_OFF_CODE = "SCR-DROP-OFF"
SCHEDULE_CODE = "INT-SCHEDULING"
FEEDBACK_CODE = "INT-FEEDBACK"
APPROVAL_CODE = "OFR-UNAPPROVED"
INTEGRATION_CODE = "BGC-INTEGRATION"
BAD_HIRE_CODE = "HIRE-EARLY-EXIT"
INACTIVITY_CODE = "REC-INACTIVITY"
INACTIVITY_BUSINESS_DAYS = 5
BACKGROUND_SYSTEM = "checkr"
SCHEDULE_HOURS = 48
FEEDBACK_HOURS = 48
BAD_HIRE_DAYS = 90
INTEGRATION_WINDOW_MINUTES = 60
INTEGRATION_MIN_ERRORS = 3

# The rules of a simulated organization beyond the standard two: (code, name, category,
# kind, detector, parameters, version policy). Calendar hours keep the truth arithmetic
# plain; business days are covered by their own tests.
SIMULATED_DEFINITIONS = [
    (
        DROP_OFF_CODE,
        "Candidate dropped off in screening",
        StageCategory.SCREENING,
        "process",
        "candidate_drop_off",
        {},
        {"excluded_reasons": ["Accommodation"], "strategic_policy": "exempt"},
    ),
    (
        SCHEDULE_CODE,
        "Interview scheduling missed",
        StageCategory.INTERVIEWING,
        "process",
        "scheduling_missed",
        {"max_hours": SCHEDULE_HOURS, "unit": "calendar_days"},
        {},
    ),
    (
        FEEDBACK_CODE,
        "Interview feedback overdue",
        StageCategory.INTERVIEWING,
        "process",
        "feedback_overdue",
        {"max_hours": FEEDBACK_HOURS},
        {},
    ),
    (
        APPROVAL_CODE,
        "Offer extended without approval",
        StageCategory.OFFER,
        "process",
        "approval_missing",
        {},
        {},
    ),
    (
        INTEGRATION_CODE,
        "Background check failing",
        StageCategory.ONBOARDING,
        "process",
        "integration_error",
        {"window_minutes": INTEGRATION_WINDOW_MINUTES, "min_errors": INTEGRATION_MIN_ERRORS},
        {},
    ),
    (
        BAD_HIRE_CODE,
        "Hire left within 90 days",
        StageCategory.ONBOARDING,
        "outcome",
        "bad_hire",
        {"max_days": BAD_HIRE_DAYS},
        {},
    ),
    (
        INACTIVITY_CODE,
        "No recruiter action for a working week",
        StageCategory.SCREENING,
        "process",
        "recruiter_inactivity",
        {"max_days": INACTIVITY_BUSINESS_DAYS},
        {},
    ),
]


@dataclass
class SimulatedOrganization:
    """An organization the simulator set up, with what its events need."""

    organization: Organization
    connection: AtsConnection
    sla_days: int
    jobs: list[dict[str, Any]]


@dataclass
class SimulationResult:
    """Counts of what the simulator sent and caused."""

    applications: int = 0
    events: int = 0
    # Failures caused, per code; and detections that compliance rules must exclude.
    truths: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    organizations: list[SimulatedOrganization] = field(default_factory=list)


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def organization_prepare(
    *, slug: str, name: str, jobs: int, rng: random.Random, rules_since: datetime
) -> SimulatedOrganization:
    """Create (or reuse) an organization with regions, teams, stages, a connection, definitions."""
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    for code, region_name in REGIONS:
        region, _ = organization.regions.get_or_create(code=code, defaults={"name": region_name})
        if not region.holiday_country:
            region.holiday_country = REGION_HOLIDAYS[code]
            region.save(update_fields=["holiday_country"])
    for team in TEAMS:
        organization.teams.get_or_create(name=team)
    for stage, category in STAGES:
        StageMapping.objects.get_or_create(
            organization=organization, stage_name=stage, defaults={"category": category}
        )
    connection = organization.connections.filter(name="Simulated ATS").first()
    if connection is None:
        connection = connection_create(actor=None, organization=organization, name="Simulated ATS")
    # The simulated organization has had its rules in force since before its history began.
    definitions_bootstrap(organization=organization, effective_from=rules_since)
    for code, name_, category, kind, detector, parameters, policy in SIMULATED_DEFINITIONS:
        definition, created = FailureDefinition.objects.get_or_create(
            organization=organization,
            code=code,
            defaults={"name": name_, "stage_category": category, "kind": kind},
        )
        if created:
            version = DefinitionVersion(
                definition=definition,
                number=1,
                detector=detector,
                parameters=parameters,
                status=VersionStatus.APPROVED,
                effective_from=rules_since,
                approved_at=rules_since,
                change_summary="Simulated organization's rule.",
                **policy,
            )
            version.full_clean()
            version.save()
    version = (
        DefinitionVersion.objects.filter(
            definition__organization=organization,
            definition__code=SLA_CODE,
            status=VersionStatus.APPROVED,
        )
        .order_by("-effective_from", "-number")
        .first()
    )
    assert version is not None
    job_specs = []
    team_names = list(TEAMS)
    for j in range(jobs):
        team = team_names[j % len(team_names)]
        family, titles = TEAMS[team]
        job_specs.append(
            {
                "id": f"job-{j + 1}",
                "title": rng.choice(titles),
                "team": team,
                "region": REGIONS[rng.randrange(len(REGIONS))][0],
                "job_family": family,
                "department": family,
                "is_strategic": rng.random() < 0.05,
            }
        )
    return SimulatedOrganization(
        organization=organization,
        connection=connection,
        sla_days=version.parameters["max_days"],
        jobs=job_specs,
    )


@dataclass
class _Step:
    at: datetime
    kind: str
    stage: str | None = None
    details: dict[str, Any] | None = None
    interview: str | None = None
    role: str = "recruiter"


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=rng.randint(int(low * 3600), int(high * 3600)))


def _interview_steps(
    rng: random.Random, start: datetime, name: str, first: bool
) -> tuple[list[_Step], datetime]:
    """Scheduling, the interview (sometimes a no-show and a second try) and the scorecard."""
    steps: list[_Step] = []
    # The first interview of the stage is sometimes scheduled far too late.
    delay = _hours(rng, 50, 90) if first and rng.random() < 0.10 else _hours(rng, 1, 20)
    scheduled = start + delay
    held = scheduled + _hours(rng, 24, 72)
    steps.append(_Step(scheduled, "interview.scheduled", interview=name))
    if rng.random() < 0.04:
        steps.append(_Step(held, "interview.no_show", interview=name, role="system"))
        name = f"{name}-retry"
        scheduled = held + _hours(rng, 1, 4)
        held = scheduled + _hours(rng, 24, 48)
        steps.append(_Step(scheduled, "interview.scheduled", interview=name))
    steps.append(_Step(held, "interview.completed", interview=name, role="interviewer"))
    late = rng.random() < 0.08
    scorecard = held + (_hours(rng, 50, 100) if late else _hours(rng, 1, 30))
    steps.append(_Step(scorecard, "scorecard.submitted", interview=name, role="interviewer"))
    return steps, held


def _application_story(rng: random.Random, start: datetime, n: int) -> list[_Step]:
    """One application's life, in time order, with realistic conversion rates."""
    steps: list[_Step] = []
    t = start
    if rng.random() < 0.2:
        steps.append(_Step(t, "application.created", "Sourced"))
        t += timedelta(hours=rng.randint(12, 24 * 6))
        roll = rng.random()
        if roll < 0.25:
            steps.append(_Step(t, "application.rejected"))
            return steps
        if roll < 0.35:
            steps.append(_Step(t, "application.withdrawn", role="candidate"))
            return steps
        steps.append(_Step(t, "application.stage_changed", "Application Review"))
    else:
        steps.append(_Step(t, "application.created", "Application Review"))

    # Screening: most move within days; some get stuck far beyond any SLA.
    if rng.random() < 0.12:
        screening = timedelta(hours=rng.randint(8 * 24, 28 * 24))
    else:
        screening = timedelta(hours=rng.randint(6, 6 * 24))
    outcome = rng.random()
    if outcome < 0.40 or rng.random() < 0.5:
        steps.append(_Step(t + screening * 0.4, "application.stage_changed", "Phone Screen"))
    if rng.random() < HOLD_SHARE:
        # A hold (hiring freeze, candidate's request): its time never counts against the SLA.
        hold_start = t + screening * 0.5
        hold = timedelta(hours=rng.randint(24, 12 * 24))
        steps.append(_Step(hold_start, "application.on_hold", details={"reason": "Hiring freeze"}))
        steps.append(_Step(hold_start + hold, "application.resumed"))
        screening += hold
    t += screening
    if outcome < 0.50:
        steps.append(_Step(t, "application.rejected"))
        return steps
    if outcome < 0.58:
        # Some withdraw for reasons that must never be labelled a candidate failure.
        reason = "Accommodation" if rng.random() < 0.25 else rng.choice(WITHDRAW_REASONS)
        steps.append(
            _Step(t, "application.withdrawn", details={"reason": reason}, role="candidate")
        )
        return steps
    steps.append(_Step(t, "application.stage_changed", "Technical Interview"))
    interview, held = _interview_steps(rng, t, f"int-{n}-1", first=True)
    steps += interview
    t = held + _hours(rng, 2, 48)
    roll = rng.random()
    if roll < 0.30:
        steps.append(_Step(t, "application.rejected"))
        return steps
    if roll < 0.36:
        steps.append(_Step(t, "application.withdrawn", role="candidate"))
        return steps
    steps.append(_Step(t, "application.stage_changed", "Onsite"))
    interview, held = _interview_steps(rng, t, f"int-{n}-2", first=False)
    steps += interview
    t = held + _hours(rng, 2, 72)
    if rng.random() < 0.35:
        steps.append(_Step(t, "application.rejected"))
        return steps
    steps.append(_Step(t, "application.stage_changed", "Offer"))
    approved = rng.random() >= 0.10  # some offers go out before anyone approved them
    if approved:
        steps.append(_Step(t + _hours(rng, 1, 3), "offer.approved", "Offer"))
    t += _hours(rng, 4, 36)
    steps.append(_Step(t, "offer.extended", "Offer"))
    if not approved and rng.random() < 0.5:
        steps.append(_Step(t + _hours(rng, 2, 10), "offer.approved", "Offer"))
    t += timedelta(hours=rng.randint(24, 5 * 24))
    if rng.random() < 0.22:
        steps.append(
            _Step(
                t,
                "offer.declined",
                "Offer",
                {"reason": rng.choice(DECLINE_REASONS)},
                role="candidate",
            )
        )
        steps.append(_Step(t + timedelta(hours=1), "application.withdrawn", role="candidate"))
        return steps
    steps.append(_Step(t, "offer.accepted", "Offer", role="candidate"))
    steps.append(_Step(t + timedelta(hours=1), "application.stage_changed", "Pre-boarding"))
    steps += _background_check(rng, t + timedelta(hours=2))
    t += timedelta(hours=rng.randint(3 * 24, 20 * 24))
    steps.append(_Step(t, "application.hired"))
    roll = rng.random()
    if roll < 0.12:
        ended = t + timedelta(days=rng.randint(10, 80))
    elif roll < 0.17:
        ended = t + timedelta(days=rng.randint(120, 200))
    else:
        return sorted(steps, key=lambda step: step.at)
    steps.append(
        _Step(
            ended, "employment.ended", details={"reason": rng.choice(EXIT_REASONS)}, role="system"
        )
    )
    return sorted(steps, key=lambda step: step.at)


def _background_check(rng: random.Random, start: datetime) -> list[_Step]:
    """The background-check integration: mostly fine, sometimes flaky, sometimes broken."""
    system = {"system": BACKGROUND_SYSTEM}
    roll = rng.random()
    if roll < 0.08:  # persistent: three errors within the hour, no recovery
        return [
            _Step(start + timedelta(minutes=m), "integration.error", details=system, role="system")
            for m in (0, rng.randint(5, 15), rng.randint(20, 40))
        ]
    if roll < 0.14:  # transient: retried and recovered within the window
        return [
            _Step(start, "integration.error", details=system, role="system"),
            _Step(
                start + timedelta(minutes=10), "integration.error", details=system, role="system"
            ),
            _Step(
                start + timedelta(minutes=12), "integration.error", details=system, role="system"
            ),
            _Step(
                start + timedelta(minutes=25),
                "integration.recovered",
                details=system,
                role="system",
            ),
        ]
    if roll < 0.20:  # transient: a single hiccup
        return [_Step(start, "integration.error", details=system, role="system")]
    return []


def _stamp(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def simulate(
    *,
    seed: int,
    applications: int,
    organizations: int = 1,
    until: datetime,
    on_application: Callable[[], None] | None = None,
) -> SimulationResult:
    """Simulate `applications` applications over the HISTORY_DAYS before `until`."""
    if not 1 <= organizations <= len(ORGANIZATIONS):
        raise ValueError(f"organizations must be between 1 and {len(ORGANIZATIONS)}")
    rng = random.Random(seed)  # noqa: S311 - deterministic simulation, not security
    until = until.replace(microsecond=0)
    result = SimulationResult()
    # The first organization is the big one; the others share a third of the volume.
    shares = [applications] if organizations == 1 else _split(applications, organizations)
    for index, share in enumerate(shares):
        slug, name = ORGANIZATIONS[index]
        org = organization_prepare(
            slug=slug,
            name=name,
            jobs=max(3, share // 25),
            rng=rng,
            rules_since=until - timedelta(days=HISTORY_DAYS + 1),
        )
        result.organizations.append(org)
        _simulate_organization(
            org,
            seed=seed,
            count=share,
            until=until,
            rng=rng,
            result=result,
            on_application=on_application,
        )
    return result


def _split(total: int, parts: int) -> list[int]:
    first = total - total // 3
    rest = total - first
    shares = [first] + [rest // (parts - 1)] * (parts - 1)
    shares[-1] += total - sum(shares)
    return shares


def _simulate_organization(
    org: SimulatedOrganization,
    *,
    seed: int,
    count: int,
    until: datetime,
    rng: random.Random,
    result: SimulationResult,
    on_application: Callable[[], None] | None,
) -> None:
    truths: list[SimulationTruth] = []
    slug = org.organization.slug
    for n in range(1, count + 1):
        job = org.jobs[rng.randrange(len(org.jobs))]
        applied = until - timedelta(seconds=rng.randint(2 * 3600, HISTORY_DAYS * 86400))
        app_id = f"app-{n}"
        application = {
            "id": app_id,
            "candidate_id": f"cand-{n}",
            "source": _weighted(rng, SOURCES),
            "applied_at": _stamp(applied),
        }
        recruiter = f"rec-{rng.randint(1, 12)}"
        # Events after `until` have not happened yet.
        story = sorted(_application_story(rng, applied, n), key=lambda step: step.at)
        steps = [step for step in story if step.at <= until]
        sent: list[tuple[_Step, str]] = []
        with transaction.atomic():
            for k, step in enumerate(steps):
                event_id = f"sim-{seed}-{slug}-{n}-{k}"
                actor_id = recruiter if step.role == "recruiter" else f"{step.role}-{n}"
                event: dict[str, Any] = {
                    "id": event_id,
                    "kind": step.kind,
                    "occurred_at": _stamp(step.at),
                    "application": application,
                    "job": job,
                    "actor": {"id": actor_id, "role": step.role},
                }
                if step.stage:
                    event["stage"] = {"name": step.stage}
                if step.details:
                    event["details"] = step.details
                if step.interview:
                    event["interview"] = {"id": step.interview}
                event_record(connection=org.connection, payload=event)
                sent.append((step, event_id))
            result.events += len(sent)
        truths += _truths_of(org, seed, app_id, job, sent, until)
        result.applications += 1
        if len(truths) >= 500:
            _truths_flush(truths, result)
        reset_queries()
        if on_application:
            on_application()
    _truths_flush(truths, result)


def _category_after(step: _Step, current: str | None) -> str | None:
    if step.kind in ("application.rejected", "application.withdrawn"):
        return StageCategory.CLOSED
    if step.kind == "application.hired":
        return StageCategory.HIRED
    if step.stage:
        return dict(STAGES)[step.stage]
    return current


def _truths_of(
    org: SimulatedOrganization,
    seed: int,
    app_id: str,
    job: dict[str, Any],
    sent: list[tuple[_Step, str]],
    until: datetime,
) -> list[SimulationTruth]:
    """The failures this application's events amount to, by each rule, as of `until`.

    Written from the rules' definitions in docs/simulator.md, not from the detectors' code.
    """
    truths: list[SimulationTruth] = []

    def truth(code: str, key: str, at: datetime, *, exempted=False, excluded=False) -> None:
        truths.append(
            SimulationTruth(
                organization=org.organization,
                seed=seed,
                definition_code=code,
                application_ats_id=app_id,
                dedupe_key=key,
                occurred_at=at,
                exempted=exempted,
                excluded=excluded,
            )
        )

    sla = timedelta(days=org.sla_days)
    schedule_limit = timedelta(hours=SCHEDULE_HOURS)
    feedback_limit = timedelta(hours=FEEDBACK_HOURS)
    category: str | None = None
    entered: datetime | None = None
    interviewing_since: datetime | None = None
    interview_scheduled = False
    completed: dict[str, datetime] = {}
    scorecards: dict[str, datetime] = {}
    approved_at: datetime | None = None
    hired_at: datetime | None = None
    errors: list[datetime] = []
    recoveries: list[datetime] = []
    holds: list[list[datetime | None]] = []  # [start, end or None while still on hold]
    for step, event_id in sent:
        at = step.at
        if step.kind == "application.on_hold":
            holds.append([at, None])
        elif step.kind == "application.resumed" and holds and holds[-1][1] is None:
            holds[-1][1] = at
        after = _category_after(step, category)
        if after != category:
            if category == StageCategory.SCREENING and entered:
                on_hold = _hold_time(holds, entered, at)
                if at - entered - on_hold > sla:
                    key = StageSlaDetector.dedupe_key(category, entered)
                    truth(SLA_CODE, key, entered + sla + on_hold)
            if category == StageCategory.SCREENING and step.kind == "application.withdrawn":
                reason = (step.details or {}).get("reason", "")
                truth(
                    DROP_OFF_CODE,
                    f"withdrawn:{event_id}",
                    at,
                    exempted=job["is_strategic"],
                    excluded=reason == "Accommodation",
                )
            entered = at
            if after == StageCategory.INTERVIEWING:
                interviewing_since = at
        category = after
        if step.kind == "offer.declined":
            truth(OFFER_CODE, f"event:{event_id}", at)
        elif step.kind == "interview.scheduled" and not interview_scheduled:
            interview_scheduled = True
            assert interviewing_since is not None
            if at - interviewing_since > schedule_limit:
                truth(
                    SCHEDULE_CODE,
                    f"unscheduled:{interviewing_since.isoformat()}",
                    interviewing_since + schedule_limit,
                )
        elif step.kind == "interview.no_show":
            truth(SCHEDULE_CODE, f"no-show:{step.interview}", at)
        elif step.kind == "interview.completed":
            completed[step.interview or ""] = at
        elif step.kind == "scorecard.submitted":
            scorecards[step.interview or ""] = at
        elif step.kind == "offer.approved":
            approved_at = approved_at or at
        elif step.kind == "offer.extended" and (approved_at is None or approved_at > at):
            truth(APPROVAL_CODE, f"unapproved:{event_id}", at)
        elif step.kind == "integration.error":
            errors.append(at)
        elif step.kind == "integration.recovered":
            recoveries.append(at)
        elif step.kind == "application.hired":
            hired_at = at
        elif (
            step.kind == "employment.ended"
            and hired_at
            and at - hired_at <= timedelta(days=BAD_HIRE_DAYS)
        ):
            truth(BAD_HIRE_CODE, f"bad-hire:{event_id}", at)
    # Still waiting when the history ends.
    still_on_hold = bool(holds) and holds[-1][1] is None
    if category not in (StageCategory.CLOSED, StageCategory.HIRED) and sent and not still_on_hold:
        # (Holds are put and lifted by recruiters, so a hold ends the idle time before it;
        # an application still on hold has no working time since its last action.)
        last_action = max(step.at for step, _ in sent if step.role == "recruiter")
        limit = timedelta(days=INACTIVITY_BUSINESS_DAYS)
        days_off = _public_holidays(REGION_HOLIDAYS[job["region"]], last_action, until)
        idle_until = _add_business_time(last_action, limit, days_off)
        # "More than N business days": a second of working time past the limit, by `until`
        # (a limit reached on a Friday night is only exceeded on Monday).
        if _add_business_time(last_action, limit + timedelta(seconds=1), days_off) <= until:
            truth(INACTIVITY_CODE, f"recruiter-idle:{last_action.isoformat()}", idle_until)
    if category == StageCategory.SCREENING and entered:
        on_hold = _hold_time(holds, entered, until)
        if until - entered - on_hold > sla:
            key = StageSlaDetector.dedupe_key(category, entered)
            truth(SLA_CODE, key, entered + sla + on_hold)
    if (
        category == StageCategory.INTERVIEWING
        and not interview_scheduled
        and interviewing_since
        and until - interviewing_since > schedule_limit
    ):
        truth(
            SCHEDULE_CODE,
            f"unscheduled:{interviewing_since.isoformat()}",
            interviewing_since + schedule_limit,
        )
    for name, held in completed.items():
        handed_in = scorecards.get(name)
        waited = (handed_in or until) - held
        if waited > feedback_limit:
            truth(FEEDBACK_CODE, f"scorecard:{name}", held + feedback_limit)
    truths += [
        SimulationTruth(
            organization=org.organization,
            seed=seed,
            definition_code=INTEGRATION_CODE,
            application_ats_id=app_id,
            dedupe_key=key,
            occurred_at=at,
        )
        for key, at in _persistent_integration_errors(errors, recoveries, until)
    ]
    return truths


def _hold_time(holds: list[list[datetime | None]], start: datetime, end: datetime) -> timedelta:
    """How much of [start, end) the application spent on hold."""
    total = timedelta()
    for hold_start, hold_end in holds:
        assert hold_start is not None
        overlap = min(hold_end or end, end) - max(hold_start, start)
        if overlap > timedelta():
            total += overlap
    return total


def _public_holidays(country: str, start: datetime, end: datetime) -> set[date]:
    """The public holidays of a country between two moments (the `holidays` library's)."""
    return set(holidays.country_holidays(country, years=range(start.year, end.year + 2)))


def _add_business_time(start: datetime, amount: timedelta, days_off: set[date]) -> datetime:
    """The moment `amount` of working time has passed after `start`.

    Working time is whole Monday-to-Friday UTC days that are not public holidays.
    """
    remaining = amount
    cursor = start
    while True:
        midnight = datetime.combine(
            cursor.date() + timedelta(days=1), datetime.min.time(), tzinfo=cursor.tzinfo
        )
        if cursor.weekday() < 5 and cursor.date() not in days_off:
            if remaining <= midnight - cursor:
                return cursor + remaining
            remaining -= midnight - cursor
        cursor = midnight


def _persistent_integration_errors(
    errors: list[datetime], recoveries: list[datetime], until: datetime
) -> list[tuple[str, datetime]]:
    """Windows of an hour from a first error: no recovery inside and three errors or more."""
    window = timedelta(minutes=INTEGRATION_WINDOW_MINUTES)
    found = []
    i = 0
    while i < len(errors):
        opened, closes = errors[i], errors[i] + window
        if closes > until:
            break
        burst = [e for e in errors[i:] if e < closes]
        recovered = any(opened <= r <= closes for r in recoveries)
        if not recovered and len(burst) >= INTEGRATION_MIN_ERRORS:
            found.append(
                (
                    f"integration:{BACKGROUND_SYSTEM}:{opened.isoformat()}",
                    burst[INTEGRATION_MIN_ERRORS - 1],
                )
            )
        i += len(burst)
    return found


def _truths_flush(truths: list[SimulationTruth], result: SimulationResult) -> None:
    SimulationTruth.objects.bulk_create(truths, ignore_conflicts=True)
    for truth in truths:
        counts = result.excluded if truth.excluded else result.truths
        counts[truth.definition_code] = counts.get(truth.definition_code, 0) + 1
    truths.clear()


@dataclass
class TruthComparison:
    """Detection against ground truth for one failure code."""

    code: str
    true_positives: int
    false_positives: int
    false_negatives: int
    # Found failures whose exempted status differs from the truth's.
    status_mismatches: int = 0
    excluded_expected: int = 0
    excluded_counted: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def exact(self) -> bool:
        """Precision and recall 100 %, exemptions and compliance exclusions as expected."""
        return (
            self.precision == 1.0
            and self.recall == 1.0
            and self.status_mismatches == 0
            and self.excluded_expected == self.excluded_counted
        )


def truth_compare(*, organization: Organization) -> list[TruthComparison]:
    """Compare recorded failures with the simulator's ground truth, code by code."""
    truths = SimulationTruth.objects.filter(organization=organization)
    expected = {
        (code, app, key): exempted
        for code, app, key, exempted in truths.filter(excluded=False).values_list(
            "definition_code", "application_ats_id", "dedupe_key", "exempted"
        )
    }
    found = {
        (code, app, key): status == "exempted"
        for code, app, key, status in Failure.objects.filter(organization=organization).values_list(
            "definition__code", "application__ats_id", "dedupe_key", "status"
        )
    }
    excluded_expected: dict[str, int] = {}
    for code in truths.filter(excluded=True).values_list("definition_code", flat=True):
        excluded_expected[code] = excluded_expected.get(code, 0) + 1
    excluded_counted: dict[str, int] = {}
    for code, count in ComplianceExclusion.objects.filter(
        version__definition__organization=organization
    ).values_list("version__definition__code", "count"):
        excluded_counted[code] = excluded_counted.get(code, 0) + count
    codes = sorted({key[0] for key in expected.keys() | found.keys()} | set(excluded_expected))
    return [
        TruthComparison(
            code=code,
            true_positives=sum(1 for k in expected.keys() & found.keys() if k[0] == code),
            false_positives=sum(1 for k in found.keys() - expected.keys() if k[0] == code),
            false_negatives=sum(1 for k in expected.keys() - found.keys() if k[0] == code),
            status_mismatches=sum(
                1
                for k in expected.keys() & found.keys()
                if k[0] == code and expected[k] != found[k]
            ),
            excluded_expected=excluded_expected.get(code, 0),
            excluded_counted=excluded_counted.get(code, 0),
        )
        for code in codes
    ]
