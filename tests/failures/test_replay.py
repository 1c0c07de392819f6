"""Retrospective replay: equals re-recording, writes nothing, compares versions."""

import json
from datetime import timedelta
from decimal import Decimal
from functools import partial
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from failures import replay_stream as replay_stream_module
from failures.choices import MembershipRole, VersionStatus
from failures.events import event_parse
from failures.governance import version_draft_create, version_propose
from failures.models import (
    BoardMember,
    DefinitionVersion,
    Failure,
    RecruitingEvent,
    ReviewBoard,
)
from failures.replay import (
    ReplayResult,
    _tally_outcome,
    rules_replay_recorded,
    version_replay,
)
from failures.replay_stream import EventReader, replay_stream, rule_copy
from failures.services import detection_scan, event_record
from failures.simulation import HISTORY_DAYS, simulate

pytestmark = pytest.mark.django_db
run_in_workers = replay_stream_module._run_in_workers


@pytest.fixture
def history():
    """A simulated organization (every detector kind) with edge cases added, detected to `end`."""
    end = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    result = simulate(seed=11, applications=160, organizations=1, until=end)
    simulated = result.organizations[0]
    _edge_cases(simulated.connection, end)
    detection_scan(now=end)
    return simulated.organization, end


def _stamp(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _edge_cases(connection, end) -> None:
    """What the simulator does not do: late and out-of-order events, re-opening, jobs that
    change, offsets, cancellations, open holds, recoveries, and an event today's rules refuse.
    """
    t0 = end - timedelta(days=40)
    job = {"id": "edge-job", "team": "Data", "region": "EMEA", "seniority": 5}
    n = iter(range(1000))

    def send(app, kind, at, *, stage=None, job_extra=None, role="recruiter", **extra):
        event = {
            "id": f"edge-{next(n)}",
            "kind": kind,
            "occurred_at": at if isinstance(at, str) else _stamp(at),
            "application": {"id": app, "candidate_id": f"c-{app}"},
            "job": {**job, **(job_extra or {})},
            "actor": {"id": "r-1", "role": role},
            **extra,
        }
        if stage:
            event["stage"] = {"name": stage}
        return event_record(connection=connection, payload=event)

    # Arrives in another order than it happened; the earlier move is older than "now".
    send("edge-late", "application.created", t0, stage="Application Review")
    send("edge-late", "application.stage_changed", t0 + timedelta(days=12), stage="Onsite")
    send("edge-late", "application.stage_changed", t0 + timedelta(days=9), stage="Phone Screen")
    # Breaches screening, is rejected, then re-opened by a move back into the pipeline.
    send("edge-reopen", "application.created", t0, stage="Application Review")
    send("edge-reopen", "application.rejected", t0 + timedelta(days=11))
    send("edge-reopen", "application.stage_changed", t0 + timedelta(days=13), stage="Phone Screen")
    # The job turns strategic, moves region and team, drops seniority (an offset on the way).
    later = {"is_strategic": True, "region": "APAC", "team": "Design", "seniority": 2}
    send("edge-job", "application.created", t0, stage="Application Review")
    send(
        "edge-job",
        "application.stage_changed",
        (t0 + timedelta(days=9, hours=2)).astimezone(timezone.get_fixed_timezone(120)).isoformat(),
        stage="Technical Interview",
        job_extra=later,
    )
    send("edge-job", "interview.scheduled", t0 + timedelta(days=12), interview={"id": "e-i1"})
    send(
        "edge-job",
        "interview.cancelled",
        t0 + timedelta(days=12, hours=3),
        interview={"id": "e-i1"},
    )
    send("edge-job", "interview.scheduled", t0 + timedelta(days=13), interview={"id": "e-i2"})
    send("edge-job", "interview.no_show", t0 + timedelta(days=14), interview={"id": "e-i2"})
    send("edge-job", "interview.completed", t0 + timedelta(days=15), interview={"id": "e-i2"})
    send("edge-job", "offer.extended", t0 + timedelta(days=16), stage="Offer", job_extra=later)
    send(
        "edge-job",
        "offer.declined",
        t0 + timedelta(days=18),
        stage="Offer",
        details={"reason": "Compensation"},
        role="candidate",
    )
    # On hold in screening until the end; errors that recover and errors that do not.
    send("edge-hold", "application.created", t0, stage="Application Review")
    send("edge-hold", "application.on_hold", t0 + timedelta(days=2))
    for minutes in (0, 5, 9):
        send(
            "edge-hold",
            "integration.error",
            t0 + timedelta(days=3, minutes=minutes),
            details={"system": "checkr"},
            role="system",
        )
    send("edge-hold", "integration.error", t0 + timedelta(days=4), details={"system": "docusign"})
    send(
        "edge-hold",
        "integration.error",
        t0 + timedelta(days=4, minutes=1),
        details={"system": "docusign"},
    )
    send(
        "edge-hold",
        "integration.recovered",
        t0 + timedelta(days=4, minutes=2),
        details={"system": "docusign"},
    )
    # A hire who leaves within the month.
    send("edge-hire", "application.created", t0, stage="Offer")
    send("edge-hire", "application.hired", t0 + timedelta(days=2))
    send("edge-hire", "employment.ended", t0 + timedelta(days=20), details={"reason": "Resigned"})
    # Stored once, refused by today's rules (an unmapped stage), with a job change in it:
    # re-recording rolls the whole event back, job update included.
    application = RecruitingEvent.objects.filter(event_id="edge-0").get().application
    RecruitingEvent.objects.create(
        organization=connection.organization,
        connection=connection,
        event_id="edge-refused",
        kind="application.stage_changed",
        occurred_at=t0 + timedelta(days=1),
        application=application,
        payload={
            "id": "edge-refused",
            "kind": "application.stage_changed",
            "occurred_at": _stamp(t0 + timedelta(days=1)),
            "application": {"id": "edge-late", "candidate_id": "c-edge-late"},
            "job": {**job, "is_strategic": True},
            "stage": {"name": "Nowhere"},
        },
    )


def _variants(organization) -> list[tuple[DefinitionVersion, str]]:
    """Every version in force, and drafts that exercise each kind's other parameters."""
    definitions = {d.code: d for d in organization.definitions.all()}
    rules = [
        (v, v.definition.code)
        for v in DefinitionVersion.objects.filter(
            definition__organization=organization, status=VersionStatus.APPROVED
        ).select_related("definition")
    ]

    def draft(code, detector, parameters, **policy):
        version = DefinitionVersion(
            definition=definitions[code], number=90 + len(rules), detector=detector,
            parameters=parameters, status=VersionStatus.DRAFT, **policy,
        )  # fmt: skip
        rules.append((version, f"{code}~{len(rules)}"))

    extend = {"strategic_policy": "extend", "strategic_multiplier": Decimal("2.00")}
    draft("SCR-SLA-BREACH", "stage_sla", {"max_days": 3, "unit": "business_days"},
          on_reopen="resolve", **extend)  # fmt: skip
    draft("SCR-SLA-BREACH", "stage_sla", {"max_days": 2}, on_reopen="dismiss",
          excluded_reasons=["Took another job"])  # fmt: skip
    draft("SCR-DROP-OFF", "candidate_drop_off", {"inactive_days": 10})
    draft("REC-INACTIVITY", "recruiter_inactivity", {"max_days": 3, "unit": "calendar_days"})
    draft("INT-SCHEDULING", "scheduling_missed", {"max_hours": 24}, strategic_policy="exempt")
    draft("INT-FEEDBACK", "feedback_overdue", {"max_hours": 24, "unit": "business_days"})
    draft("OFR-DECLINED", "offer_declined", {"min_seniority": 3, "reasons": ["compensation"]})
    draft("OFR-UNAPPROVED", "approval_missing", {}, strategic_policy="exempt")
    draft("BGC-INTEGRATION", "integration_error", {"window_minutes": 30, "min_errors": 2})
    draft("HIRE-EARLY-EXIT", "bad_hire", {"max_days": 30})
    return rules


def _comparable(outcome) -> dict:
    return {
        "total": outcome.total,
        "by_stage": dict(outcome.by_stage),
        "by_team": dict(outcome.by_team),
        "exempted": outcome.exempted,
        "keys": outcome.keys,
        "examples": sorted(
            (e["application"], e["occurred_at"], e["status"], json.dumps(e["details"], sort_keys=1))
            for e in outcome.examples
        ),
    }  # fmt: skip


def test_the_streamed_replay_equals_re_recording_for_every_detector_kind(history):
    organization, end = history
    rules = _variants(organization)
    kinds = {version.detector for version, _ in rules}
    assert len(kinds) == 9, "every detector kind is replayed"
    start = end - timedelta(days=HISTORY_DAYS + 1)
    everything = 10**6  # every failure is an example: details and statuses compared too

    counts = ReplayResult(version=rules[0][0], in_force=None, start=start, end=end)
    recorded = rules_replay_recorded(
        organization=organization, rules=rules, start=start, end=end,
        examples=everything, counts=counts,
    )  # fmt: skip
    streamed_rules = [rule_copy(i, version, code) for i, (version, code) in enumerate(rules)]
    streamed = replay_stream(
        organization=organization, rules=streamed_rules, start=start, end=end,
        examples=everything,
    )  # fmt: skip

    assert (streamed.events, streamed.skipped, streamed.applications) == (
        counts.events,
        counts.skipped,
        counts.applications,
    )
    assert streamed.skipped == 1  # the refused event
    flagged = set()
    for (version, code), rule, expected in zip(rules, streamed_rules, recorded, strict=True):
        outcome = _tally_outcome(rule.tally, version.definition.stage_category)
        assert _comparable(outcome) == _comparable(expected), code
        if expected.total:
            flagged.add(version.detector)
    assert flagged == kinds, "each kind flags something, so equality means something"
    statuses = {e["status"] for outcome in recorded for e in outcome.examples}
    assert {"open", "exempted", "resolved", "dismissed"} <= statuses


def test_replaying_the_version_in_force_equals_what_recording_recorded(history):
    organization, end = history
    start = end - timedelta(days=60)
    for code in ("SCR-SLA-BREACH", "OFR-DECLINED", "BGC-INTEGRATION"):
        version = organization.definitions.get(code=code).versions.get(number=1)
        recorded = set(
            Failure.objects.filter(
                definition=version.definition, occurred_at__gte=start, occurred_at__lt=end
            ).values_list("application__ats_id", "dedupe_key")
        )
        assert recorded, f"the history should contain {code} failures"

        result = version_replay(version=version, start=start, end=end)

        assert result.replayed.keys == recorded == result.current.keys
        assert result.only_replayed == set() and result.only_current == set()
        assert sum(result.replayed.by_team.values()) == result.replayed.total == len(recorded)


@pytest.mark.django_db(transaction=True)
def test_worker_processes_add_up_to_the_single_process_replay(monkeypatch):
    end = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    organization = simulate(seed=5, applications=40, until=end).organizations[0].organization
    start = end - timedelta(days=HISTORY_DAYS + 1)
    rules = _variants(organization)
    shared = []
    monkeypatch.setattr(
        replay_stream_module,
        "_run_in_workers",
        lambda replay, workers: shared.append(workers) or run_in_workers(replay, workers),
    )
    results = {}
    for workers in (1, 2):
        streamed_rules = [rule_copy(i, version, code) for i, (version, code) in enumerate(rules)]
        seen = []
        streamed = replay_stream(
            organization=organization, rules=streamed_rules, start=start, end=end,
            examples=5, on_event=partial(seen.append, 1), workers=workers,
        )  # fmt: skip
        assert len(seen) == streamed.events > 0  # the progress bar counts every event once
        results[workers] = (
            (streamed.events, streamed.skipped, streamed.applications),
            [_comparable(_tally_outcome(r.tally, "screening")) for r in streamed_rules],
        )
    assert shared == [2], "the second replay ran in two worker processes"
    assert results[2] == results[1]
    assert sum(outcome["total"] for outcome in results[1][1]) > 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_loses_its_connection_falls_back_to_one_process(monkeypatch):
    end = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    organization = simulate(seed=5, applications=30, until=end).organizations[0].organization
    start = end - timedelta(days=HISTORY_DAYS + 1)
    version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
    real_worker = replay_stream_module._worker

    def dropped(replay, share, done, results):
        if share[0] == 1:  # the second worker's server connection goes away
            results.put((share[0], None, None, None, "OperationalError('server closed')"))
            return
        real_worker(replay, share, done, results)

    def run(workers):
        rules = [rule_copy(0, version, version.definition.code)]
        seen = []
        result = replay_stream(
            organization=organization, rules=rules, start=start, end=end,
            on_event=partial(seen.append, 1), workers=workers,
        )  # fmt: skip
        return result, rules[0].tally, seen

    single, single_tally, _ = run(1)
    monkeypatch.setattr(replay_stream_module, "_worker", dropped)
    fallback, fallback_tally, seen = run(2)

    assert (fallback.events, fallback.applications) == (single.events, single.applications)
    assert fallback_tally.keys == single_tally.keys
    assert fallback_tally.total == single_tally.total > 0
    assert len(seen) == single.events  # progress counted once, not once per attempt


def test_a_replay_writes_nothing(history):
    organization, end = history
    version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
    before = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("failures").get_models()
    }

    with CaptureQueriesContext(db) as queries:
        result = version_replay(version=version, start=end - timedelta(days=60), end=end)

    assert result.replayed.total > 0
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)
    after = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("failures").get_models()
    }
    assert after == before


def test_the_fast_reader_reads_as_event_parse_does(history):
    organization, _ = history
    reader = EventReader()
    payloads = list(
        RecruitingEvent.objects.filter(organization=organization)
        .exclude(event_id="edge-refused")
        .values_list("payload", flat=True)
    )
    odd = {**payloads[0], "id": "  spaced  ", "actor": {"id": 7, "role": "Recruiter"}}
    for payload in [*payloads, odd, {**payloads[0], "details": {"note": "tab\there"}}]:
        assert reader.read(json.dumps(payload)) == event_parse(payload)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-13-01T00:00:00Z"}, "occurred_at"),
        ({"job": {"id": "j", "seniority": 40}}, "job.seniority"),
        ({"kind": "application.stage_changed", "stage": None}, "stage"),
        ({"id": "x\u0085y"}, "id"),
    ],
)
def test_the_fast_reader_refuses_what_event_parse_refuses(history, change, field):
    organization, _ = history
    payload = {**RecruitingEvent.objects.filter(organization=organization).first().payload}
    payload.update(change)
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(Exception) as refused:
        EventReader().read(json.dumps(payload))
    assert refused.value.field.startswith(field)


def test_a_stricter_draft_flags_more_and_the_difference_is_shown(history, make_member):
    organization, end = history
    board_member = make_member(MembershipRole.BOARD, organization)
    definition = organization.definitions.get(code="SCR-SLA-BREACH")
    draft = version_draft_create(
        actor=board_member,
        definition=definition,
        detector="stage_sla",
        parameters={"max_days": 3},
    )
    start = end - timedelta(days=120)

    result = version_replay(version=draft, start=start, end=end)

    assert result.in_force.number == 1
    assert result.replayed.total > result.current.total > 0
    assert result.only_current == set()  # a 3-day limit flags every 7-day breach, and more
    assert len(result.only_replayed) == result.replayed.total - result.current.total
    assert result.replayed.by_stage == {"screening": result.replayed.total}
    assert len(result.replayed.examples) == 10
    moments = [e["occurred_at"] for e in result.replayed.examples]
    assert moments == sorted(moments)
    assert (
        not DefinitionVersion.objects.filter(definition=definition, number=2)
        .exclude(status=VersionStatus.DRAFT)
        .exists()
    )


def test_the_command_prints_the_comparison_with_a_progress_bar(history):
    organization, end = history
    version = organization.definitions.get(code="OFR-DECLINED").versions.get(number=1)
    out, err = StringIO(), StringIO()

    call_command(
        "replay_version",
        str(version.pk),
        since=(end - timedelta(days=120)).isoformat(),
        until=end.isoformat(),
        stdout=out,
        stderr=err,
    )

    assert "OFR-DECLINED v1 (approved)" in out.getvalue()
    assert "would flag" in out.getvalue()
    assert "replaying" in err.getvalue()


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["999999"], {}, "No definition version"),
        (None, {"since": "yesterday"}, "--since"),
        (None, {"since": "2026-10-02T00:00:00Z", "until": "2026-10-01T00:00:00Z"}, "after"),
        (None, {"workers": 0}, "--workers"),
    ],
)
def test_the_command_refuses_bad_input(org, args, options, message):
    version = org.definitions.get(code="OFR-DECLINED").versions.get(number=1)
    with pytest.raises(CommandError, match=message):
        call_command(
            "replay_version",
            *(args or [str(version.pk)]),
            stdout=StringIO(),
            stderr=StringIO(),
            **options,
        )


def test_the_board_replays_a_proposal_beside_its_change_request(
    client, history, make_member, other_org
):
    organization, end = history
    proposer = make_member(MembershipRole.BOARD, organization, username="proposer")
    reviewer = make_member(MembershipRole.BOARD, organization, username="reviewer")
    board = ReviewBoard.objects.create(organization=organization, quorum=1)
    for user in (proposer, reviewer):
        BoardMember.objects.create(board=board, user=user)
    draft = version_draft_create(
        actor=proposer,
        definition=organization.definitions.get(code="SCR-SLA-BREACH"),
        detector="stage_sla",
        parameters={"max_days": 3},
    )
    request = version_propose(
        actor=proposer, version=draft, effective_from=end + timedelta(days=1), reason="Faster"
    )
    client.force_login(reviewer)
    url = f"/admin/failures/changerequest/{request.pk}/replay/"

    page = client.get(
        url,
        {
            "since": (end - timedelta(days=60)).strftime("%Y-%m-%d %H:%M"),
            "until": end.strftime("%Y-%m-%d %H:%M"),
        },
    )

    assert page.status_code == 200
    assert page.context["result"].replayed.total >= page.context["result"].current.total
    assert 'id="replayed-total"' in page.content.decode()
    bad = client.get(url, {"since": "2026-10-02 00:00", "until": "2026-10-01 00:00"})
    assert bad.status_code == 200 and bad.context["result"] is None
    assert "must end after" in bad.content.decode()

    outsider = make_member(MembershipRole.BOARD, other_org, username="outsider")
    client.force_login(outsider)
    assert (
        client.get(url, {"since": "2026-10-01 00:00", "until": "2026-10-02 00:00"}).status_code
        == 404
    )
