"""A realistic, deterministic ATS simulator that knows the failures it causes.

It feeds canonical events through `services.event_record` — the same path a webhook
takes — and writes its ground truth (`SimulationTruth`) so detection can be checked
against it. Memory stays flat: one application's events exist at a time and truth rows
are written in batches.
"""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import reset_queries, transaction

from failures.choices import StageCategory, VersionStatus
from failures.detectors import StageSlaDetector
from failures.models import (
    AtsConnection,
    DefinitionVersion,
    Failure,
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
HISTORY_DAYS = 150
SLA_CODE = "SCR-SLA-BREACH"
OFFER_CODE = "OFR-DECLINED"


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
    truths: dict[str, int] = field(default_factory=dict)
    organizations: list[SimulatedOrganization] = field(default_factory=list)


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def organization_prepare(
    *, slug: str, name: str, jobs: int, rng: random.Random, rules_since: datetime
) -> SimulatedOrganization:
    """Create (or reuse) an organization with regions, teams, stages, a connection, definitions."""
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    for code, region_name in REGIONS:
        organization.regions.get_or_create(code=code, defaults={"name": region_name})
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


def _application_story(rng: random.Random, start: datetime) -> Iterator[_Step]:
    """One application's life, step by step, with realistic conversion rates."""
    t = start
    hours = timedelta(hours=1)
    if rng.random() < 0.2:
        yield _Step(t, "application.created", "Sourced")
        t += timedelta(hours=rng.randint(12, 24 * 6))
        roll = rng.random()
        if roll < 0.25:
            yield _Step(t, "application.rejected")
            return
        if roll < 0.35:
            yield _Step(t, "application.withdrawn")
            return
        yield _Step(t, "application.stage_changed", "Application Review")
    else:
        yield _Step(t, "application.created", "Application Review")

    # Screening: most move within days; some get stuck far beyond any SLA.
    if rng.random() < 0.12:
        screening = timedelta(hours=rng.randint(8 * 24, 28 * 24))
    else:
        screening = timedelta(hours=rng.randint(6, 6 * 24))
    outcome = rng.random()
    if outcome < 0.40 or rng.random() < 0.5:
        yield _Step(t + screening * 0.4, "application.stage_changed", "Phone Screen")
    t += screening
    if outcome < 0.50:
        yield _Step(t, "application.rejected")
        return
    if outcome < 0.58:
        yield _Step(t, "application.withdrawn")
        return
    yield _Step(t, "application.stage_changed", "Technical Interview")
    t += timedelta(hours=rng.randint(2 * 24, 8 * 24))
    roll = rng.random()
    if roll < 0.30:
        yield _Step(t, "application.rejected")
        return
    if roll < 0.36:
        yield _Step(t, "application.withdrawn")
        return
    yield _Step(t, "application.stage_changed", "Onsite")
    t += timedelta(hours=rng.randint(2 * 24, 7 * 24))
    if rng.random() < 0.35:
        yield _Step(t, "application.rejected")
        return
    yield _Step(t, "application.stage_changed", "Offer")
    t += timedelta(hours=rng.randint(4, 36))
    yield _Step(t, "offer.extended", "Offer")
    t += timedelta(hours=rng.randint(24, 5 * 24))
    if rng.random() < 0.22:
        yield _Step(t, "offer.declined", "Offer", {"reason": rng.choice(DECLINE_REASONS)})
        yield _Step(t + hours, "application.withdrawn")
        return
    yield _Step(t, "offer.accepted", "Offer")
    yield _Step(t + hours, "application.stage_changed", "Pre-boarding")
    t += timedelta(hours=rng.randint(3 * 24, 20 * 24))
    yield _Step(t, "application.hired")


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
    sla_limit = timedelta(days=org.sla_days)
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
        screening_entered: datetime | None = None
        category = None
        with transaction.atomic():
            for k, step in enumerate(_application_story(rng, applied)):
                if step.at > until:
                    break
                event: dict[str, Any] = {
                    "id": f"sim-{seed}-{slug}-{n}-{k}",
                    "kind": step.kind,
                    "occurred_at": _stamp(step.at),
                    "application": application,
                    "job": job,
                    "actor": {"id": recruiter, "role": "recruiter"},
                }
                if step.stage:
                    event["stage"] = {"name": step.stage}
                if step.details:
                    event["details"] = step.details
                event_record(connection=org.connection, payload=event)
                result.events += 1
                at = step.at.replace(microsecond=0)
                new_category = _category_after(step, category)
                if category == StageCategory.SCREENING and new_category != category:
                    assert screening_entered is not None
                    if at - screening_entered > sla_limit:
                        truths.append(_sla_truth(org, seed, app_id, screening_entered, sla_limit))
                    screening_entered = None
                if new_category == StageCategory.SCREENING and category != new_category:
                    screening_entered = at
                category = new_category
                if step.kind == "offer.declined":
                    truths.append(
                        SimulationTruth(
                            organization=org.organization,
                            seed=seed,
                            definition_code=OFFER_CODE,
                            application_ats_id=app_id,
                            dedupe_key=f"event:{event['id']}",
                            occurred_at=at,
                        )
                    )
            if screening_entered is not None and until - screening_entered > sla_limit:
                truths.append(_sla_truth(org, seed, app_id, screening_entered, sla_limit))
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


def _sla_truth(
    org: SimulatedOrganization, seed: int, app_id: str, entered: datetime, limit: timedelta
) -> SimulationTruth:
    return SimulationTruth(
        organization=org.organization,
        seed=seed,
        definition_code=SLA_CODE,
        application_ats_id=app_id,
        dedupe_key=StageSlaDetector.dedupe_key(StageCategory.SCREENING, entered),
        occurred_at=entered + limit,
    )


def _truths_flush(truths: list[SimulationTruth], result: SimulationResult) -> None:
    SimulationTruth.objects.bulk_create(truths, ignore_conflicts=True)
    for truth in truths:
        result.truths[truth.definition_code] = result.truths.get(truth.definition_code, 0) + 1
    truths.clear()


@dataclass
class TruthComparison:
    """Detection against ground truth for one failure code."""

    code: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0


def truth_compare(*, organization: Organization) -> list[TruthComparison]:
    """Compare recorded failures with the simulator's ground truth, code by code."""
    truth = set(
        SimulationTruth.objects.filter(organization=organization).values_list(
            "definition_code", "application_ats_id", "dedupe_key"
        )
    )
    found = set(
        Failure.objects.filter(organization=organization).values_list(
            "definition__code", "application__ats_id", "dedupe_key"
        )
    )
    codes = sorted({c for c, _, _ in truth | found})
    return [
        TruthComparison(
            code=code,
            true_positives=len({t for t in truth & found if t[0] == code}),
            false_positives=len({t for t in found - truth if t[0] == code}),
            false_negatives=len({t for t in truth - found if t[0] == code}),
        )
        for code in codes
    ]
