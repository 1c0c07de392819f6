"""Retrospective replay: equals what recording produced, writes nothing, compares versions."""

from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone

from failures.choices import MembershipRole, VersionStatus
from failures.governance import version_draft_create, version_propose
from failures.models import BoardMember, DefinitionVersion, Failure, ReviewBoard
from failures.replay import version_replay
from failures.services import detection_scan
from failures.simulation import simulate

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """A simulated organization with 150 applications, detected up to `end`."""
    end = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    result = simulate(seed=7, applications=150, organizations=1, until=end)
    detection_scan(now=end)
    return result.organizations[0].organization, end


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("failures").get_models()
    }


def _recorded(definition, start, end) -> set[tuple[str, str]]:
    return set(
        Failure.objects.filter(
            definition=definition, occurred_at__gte=start, occurred_at__lt=end
        ).values_list("application__ats_id", "dedupe_key")
    )


@pytest.mark.parametrize("code", ["SCR-SLA-BREACH", "OFR-DECLINED"])
def test_replaying_the_version_in_force_equals_what_was_recorded(history, code):
    organization, end = history
    start = end - timedelta(days=151)  # the whole simulated history
    version = organization.definitions.get(code=code).versions.get(number=1)
    recorded = _recorded(version.definition, start, end)
    assert recorded, "the simulated history should contain such failures"

    result = version_replay(version=version, start=start, end=end)

    assert result.replayed.keys == recorded
    assert result.current.keys == recorded
    assert result.only_replayed == set() and result.only_current == set()
    assert result.replayed.total == len(recorded)
    assert sum(result.replayed.by_team.values()) == len(recorded)


def test_a_replay_writes_nothing(history):
    organization, end = history
    version = organization.definitions.get(code="SCR-SLA-BREACH").versions.get(number=1)
    before = _row_counts()

    version_replay(version=version, start=end - timedelta(days=60), end=end)

    assert _row_counts() == before


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
    assert result.replayed.total > result.current.total
    assert result.only_current == set()  # a 3-day limit flags every 7-day breach, and more
    assert len(result.only_replayed) == result.replayed.total - result.current.total
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
