"""Retrospective analysis: what a definition version would have flagged over a past period.

`version_replay` answers what re-recording the organization's own events, in the order
they happened, into a scratch copy of the organization whose only rules are the replayed
version and the version in force, then scanning at the end of the period, would record —
without writing anything. It streams the event log one application at a time
(`failures.replay_stream`, docs/decisions.md §18), about a thousand times faster than
doing it.

`version_replay_recorded` does it: it re-records every event through
`services.event_record` inside a transaction that is rolled back. It is the reference the
streamed replay is held equal to in the tests, and runs at recording speed.
"""

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from failures.choices import VersionStatus
from failures.events import EventInvalid
from failures.models import (
    Application,
    AtsConnection,
    DefinitionVersion,
    Failure,
    FailureDefinition,
    Organization,
    RecruitingEvent,
    StageMapping,
)
from failures.replay_stream import RuleTally, replay_stream, rule_copy
from failures.selectors import definition_versions_in_force
from failures.services import detection_scan, event_record

CURRENT_SUFFIX = "~in-force"
_COPIED_VERSION_FIELDS = [
    "detector",
    "parameters",
    "strategic_policy",
    "strategic_multiplier",
    "excluded_reasons",
    "on_reopen",
    "compliance_note",
]


@dataclass
class ReplayOutcome:
    """What one version flags over the period."""

    total: int = 0
    by_stage: Counter = field(default_factory=Counter)
    by_team: Counter = field(default_factory=Counter)
    exempted: int = 0
    keys: set[tuple[str, str]] = field(default_factory=set)
    examples: list[dict] = field(default_factory=list)

    @property
    def teams(self) -> list[tuple[str, int]]:
        """Teams by failures flagged, most first (templates cannot call most_common)."""
        return self.by_team.most_common()


@dataclass
class ReplayResult:
    """The replayed version beside the version in force, over [start, end)."""

    version: DefinitionVersion
    in_force: DefinitionVersion | None
    start: datetime
    end: datetime
    events: int = 0
    skipped: int = 0
    applications: int = 0
    replayed: ReplayOutcome = field(default_factory=ReplayOutcome)
    current: ReplayOutcome = field(default_factory=ReplayOutcome)

    @property
    def only_replayed(self) -> set[tuple[str, str]]:
        """(application, occurrence) the replayed version flags and the one in force does not."""
        return self.replayed.keys - self.current.keys

    @property
    def only_current(self) -> set[tuple[str, str]]:
        """What the version in force flags that the replayed version would not."""
        return self.current.keys - self.replayed.keys


class _Rollback(Exception):
    pass


def replay_events(organization: Organization, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    """The organization's events that shape applications alive during [start, end)."""
    alive = Application.objects.filter(organization=organization, applied_at__lt=end).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=start - timedelta(days=365))
    )
    return (
        RecruitingEvent.objects.filter(
            organization=organization, occurred_at__lt=end, application__in=alive
        )
        .order_by("occurred_at", "pk")
        .values_list("payload", flat=True)
    )


def _version_in_force(version: DefinitionVersion, end: datetime) -> DefinitionVersion | None:
    definition = version.definition
    return next(
        (
            v
            for v in definition_versions_in_force(
                at=end, organization_id=definition.organization_id
            )
            if v.definition_id == definition.pk
        ),
        None,
    )


def version_replay(
    *,
    version: DefinitionVersion,
    start: datetime,
    end: datetime,
    examples: int = 10,
    on_event: Callable[[], None] | None = None,
    workers: int | None = None,
) -> ReplayResult:
    """Replay `version` (any status) over [start, end) beside the version in force.

    Reads the event log and the organization's settings only; writes nothing. `workers`:
    processes sharing the applications (default one per CPU; see replay_stream).
    """
    if end <= start:
        raise ValueError("The period must end after it starts.")
    definition = version.definition
    in_force = _version_in_force(version, end)
    rules = [rule_copy(0, version, definition.code)]
    if in_force is not None:
        rules.append(rule_copy(1, in_force, definition.code + CURRENT_SUFFIX))
    streamed = replay_stream(
        organization=definition.organization,
        rules=rules,
        start=start,
        end=end,
        examples=examples,
        on_event=on_event,
        workers=workers,
    )
    result = ReplayResult(
        version=version,
        in_force=in_force,
        start=start,
        end=end,
        events=streamed.events,
        skipped=streamed.skipped,
        applications=streamed.applications,
        replayed=_tally_outcome(rules[0].tally, definition.stage_category),
    )
    if in_force is not None:
        result.current = _tally_outcome(rules[1].tally, definition.stage_category)
    return result


def _tally_outcome(tally: RuleTally, category: str) -> ReplayOutcome:
    """A streamed rule's tally as a ReplayOutcome (examples earliest first)."""
    return ReplayOutcome(
        total=tally.total,
        by_stage=Counter({category: tally.total}) if tally.total else Counter(),
        by_team=Counter(tally.by_team),
        exempted=tally.exempted,
        keys=tally.keys,
        examples=[example for _, _, example in sorted(tally.examples, key=lambda i: (-i[0], i[1]))],
    )


def version_replay_recorded(
    *,
    version: DefinitionVersion,
    start: datetime,
    end: datetime,
    examples: int = 10,
    on_event: Callable[[], None] | None = None,
) -> ReplayResult:
    """The reference replay: re-record every event into a scratch organization, roll back."""
    if end <= start:
        raise ValueError("The period must end after it starts.")
    definition = version.definition
    in_force = _version_in_force(version, end)
    rules = [(version, definition.code)]
    if in_force is not None:
        rules.append((in_force, definition.code + CURRENT_SUFFIX))
    result = ReplayResult(version=version, in_force=in_force, start=start, end=end)
    outcomes = rules_replay_recorded(
        organization=definition.organization,
        rules=rules,
        start=start,
        end=end,
        examples=examples,
        on_event=on_event,
        counts=result,
    )
    result.replayed = outcomes[0]
    if in_force is not None:
        result.current = outcomes[1]
    return result


def rules_replay_recorded(
    *,
    organization: Organization,
    rules: list[tuple[DefinitionVersion, str]],
    start: datetime,
    end: datetime,
    examples: int,
    counts: ReplayResult,
    on_event: Callable[[], None] | None = None,
) -> list[ReplayOutcome]:
    """Re-record the period's events with these (version, code) rules only, and roll back.

    Fills the event and application counts of `counts`; returns one outcome per rule.
    """
    try:
        with transaction.atomic():
            scratch, connection = _scratch_organization(organization)
            copies = [
                _rule_copy(scratch, version.definition, version, code) for version, code in rules
            ]
            for payload in replay_events(organization, start, end).iterator(chunk_size=2000):
                try:
                    event_record(connection=connection, payload=payload)
                except EventInvalid:
                    # Accepted once, refused by today's validation: counted, not replayed.
                    counts.skipped += 1
                counts.events += 1
                if on_event:
                    on_event()
            detection_scan(now=end, organization=scratch)
            counts.applications = Application.objects.filter(organization=scratch).count()
            outcomes = [_outcome(copy, start, end, examples) for copy in copies]
            raise _Rollback
    except _Rollback:
        pass
    return outcomes


def replay_event_count(*, version: DefinitionVersion, start: datetime, end: datetime) -> int:
    """How many events a replay will go through (for progress bars)."""
    return replay_events(version.definition.organization, start, end).count()


def _scratch_organization(organization: Organization) -> tuple[Organization, AtsConnection]:
    scratch = Organization.objects.create(
        name=f"Replay of {organization.name}", slug=f"replay-{uuid.uuid4().hex[:20]}"
    )
    for region in organization.regions.all():
        scratch.regions.create(
            code=region.code,
            name=region.name,
            holiday_country=region.holiday_country,
            holiday_subdivision=region.holiday_subdivision,
            timezone=region.timezone,
        )
    for team in organization.teams.all():
        scratch.teams.create(name=team.name)
    StageMapping.objects.bulk_create(
        StageMapping(organization=scratch, stage_name=m.stage_name, category=m.category)
        for m in organization.stage_mappings.all()
    )
    connection = AtsConnection.objects.create(organization=scratch, name="Replay")
    return scratch, connection


def _rule_copy(
    scratch: Organization, definition: FailureDefinition, version: DefinitionVersion, code: str
) -> FailureDefinition:
    copy = FailureDefinition.objects.create(
        organization=scratch,
        code=code,
        name=definition.name,
        stage_category=definition.stage_category,
        kind=definition.kind,
        severity=definition.severity,
        owner_role=definition.owner_role,
    )
    DefinitionVersion.objects.create(
        definition=copy,
        number=version.number,
        status=VersionStatus.APPROVED,
        effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        **{name: getattr(version, name) for name in _COPIED_VERSION_FIELDS},
    )
    return copy


def _outcome(
    definition: FailureDefinition, start: datetime, end: datetime, examples: int
) -> ReplayOutcome:
    outcome = ReplayOutcome()
    failures = (
        Failure.objects.filter(definition=definition, occurred_at__gte=start, occurred_at__lt=end)
        .select_related("application", "job__team")
        .order_by("occurred_at")
    )
    for failure in failures.iterator(chunk_size=2000):
        outcome.total += 1
        outcome.by_stage[definition.stage_category] += 1
        outcome.by_team[failure.job.team.name if failure.job.team else "(no team)"] += 1
        outcome.exempted += failure.status == "exempted"
        outcome.keys.add((failure.application.ats_id, failure.dedupe_key))
        if len(outcome.examples) < examples:
            outcome.examples.append(
                {
                    "application": failure.application.ats_id,
                    "occurred_at": failure.occurred_at,
                    "status": failure.status,
                    "details": failure.details,
                }
            )
    return outcome
