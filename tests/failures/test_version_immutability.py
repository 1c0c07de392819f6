"""Approved definition versions never change: not by save, update, delete, nor the admin."""

import json
from datetime import timedelta

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from failures import governance
from failures.choices import MembershipRole, VersionStatus
from failures.models import DefinitionVersion, ImmutableVersionError
from tests.failures.governance_support import (
    Board,
    board_build,
    definition_of,
    draft_sla,
    propose,
    version_of,
)

pytestmark = pytest.mark.django_db

APPROVED_V1 = {
    "number": 1,
    "detector": "stage_sla",
    "parameters": {"max_days": 7},
    "status": VersionStatus.APPROVED,
    "retired_at": None,
}


def snapshot(version: DefinitionVersion) -> dict:
    """Every stored column of a version, read fresh from the database."""
    fresh = DefinitionVersion.objects.get(pk=version.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields}


@pytest.fixture
def v1(org) -> DefinitionVersion:
    """org's approved SCR-SLA-BREACH v1 {max_days: 7}, in force for a year."""
    version = version_of(org, 1)
    assert {k: getattr(version, k) for k in APPROVED_V1} == APPROVED_V1
    return version


@pytest.fixture
def board(org, make_member) -> Board:
    return board_build(org, make_member, voters=2, quorum=2)


@pytest.fixture
def retired(v1, board) -> DefinitionVersion:
    return governance.version_retire(actor=board.proposer, version=v1, reason="Superseded.")


# --- Instance save() -----------------------------------------------------------------------------


CHANGES = {
    "parameters": {"max_days": 99},
    "detector": "offer_declined",
    "effective_from": timezone.now() + timedelta(days=1),
    "number": 9,
    "change_summary": "Quietly edited",
    "compliance_note": "Quietly edited",
    "approved_at": timezone.now(),
}


@pytest.mark.parametrize(("field", "value"), CHANGES.items(), ids=CHANGES)
def test_saving_a_changed_field_of_an_approved_version_is_refused(v1, field, value):
    before = snapshot(v1)
    setattr(v1, field, value)

    with pytest.raises(ImmutableVersionError):
        v1.save()

    assert snapshot(v1) == before


def test_saving_a_changed_field_with_update_fields_is_refused(v1):
    before = snapshot(v1)
    v1.parameters = {"max_days": 1}

    with pytest.raises(ImmutableVersionError):
        v1.save(update_fields=["parameters"])

    assert snapshot(v1) == before


def test_an_in_place_edit_of_the_parameters_dict_is_refused(v1):
    before = snapshot(v1)
    v1.parameters["max_days"] = 30

    with pytest.raises(ImmutableVersionError):
        v1.save()

    assert snapshot(v1) == before


@pytest.mark.parametrize("status", [VersionStatus.DRAFT, VersionStatus.PROPOSED])
def test_an_approved_version_cannot_go_back_to_draft_or_proposed(v1, status):
    """Retirement is the only change left to an approved version.

    A version sent back to draft could be edited and approved again under the same number,
    so failures it already recorded would name a rule that changed under them.
    """
    before = snapshot(v1)
    v1.status = status

    with pytest.raises(ImmutableVersionError):
        v1.save()

    assert snapshot(v1) == before


def test_retiring_an_approved_version_is_allowed(v1):
    v1.status = VersionStatus.RETIRED
    v1.retired_at = timezone.now()

    v1.save()

    stored = snapshot(v1)
    assert stored["status"] == VersionStatus.RETIRED
    assert stored["retired_at"] == v1.retired_at
    assert stored["parameters"]["max_days"] == 7


# --- QuerySet.update() ------------------------------------------------------------------------


def test_queryset_update_of_an_approved_versions_parameters_is_refused(v1):
    before = snapshot(v1)

    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=v1.pk).update(parameters={"max_days": 99})

    assert snapshot(v1) == before


def test_update_through_the_definitions_related_manager_is_refused(org, v1):
    before = snapshot(v1)

    with pytest.raises(ImmutableVersionError):
        definition_of(org).versions.update(parameters={"max_days": 99})

    assert snapshot(v1) == before


def test_update_of_a_mix_of_draft_and_approved_versions_changes_neither(org, v1, board):
    draft = draft_sla(board.proposer, org, max_days=10)
    before = snapshot(v1), snapshot(draft)

    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk__in=[v1.pk, draft.pk]).update(
            parameters={"max_days": 99}
        )

    assert (snapshot(v1), snapshot(draft)) == before


def test_bulk_update_of_an_approved_version_is_refused(v1):
    before = snapshot(v1)
    v1.parameters = {"max_days": 99}

    with pytest.raises(ImmutableVersionError), transaction.atomic():
        DefinitionVersion.objects.bulk_update([v1], ["parameters"])

    assert snapshot(v1) == before


@pytest.mark.parametrize("status", [VersionStatus.DRAFT, VersionStatus.PROPOSED])
def test_queryset_update_cannot_send_an_approved_version_back(v1, status):
    before = snapshot(v1)

    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=v1.pk).update(status=status)

    assert snapshot(v1) == before


def test_queryset_update_may_retire_an_approved_version(v1):
    now = timezone.now()

    DefinitionVersion.objects.filter(pk=v1.pk).update(status=VersionStatus.RETIRED, retired_at=now)

    stored = snapshot(v1)
    assert (stored["status"], stored["retired_at"]) == (VersionStatus.RETIRED, now)


def test_queryset_update_of_a_draft_is_allowed(org, board):
    draft = draft_sla(board.proposer, org, max_days=10)

    DefinitionVersion.objects.filter(pk=draft.pk).update(parameters={"max_days": 11})

    assert snapshot(draft)["parameters"]["max_days"] == 11


# --- delete() -----------------------------------------------------------------------------------


def test_deleting_an_approved_version_is_refused(v1):
    before = snapshot(v1)

    with pytest.raises(ImmutableVersionError):
        v1.delete()
    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=v1.pk).delete()

    assert snapshot(v1) == before


def test_deleting_a_mix_of_draft_and_approved_versions_deletes_neither(org, v1, board):
    draft = draft_sla(board.proposer, org)

    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk__in=[v1.pk, draft.pk]).delete()

    assert DefinitionVersion.objects.filter(pk__in=[v1.pk, draft.pk]).count() == 2


def test_delete_judges_the_stored_status_not_the_callers_copy(v1):
    """save() compares with the stored row; delete() must too, or a copy whose status was
    changed in memory (or loaded before approval) deletes an approved version."""
    v1.status = VersionStatus.DRAFT  # in memory only

    with pytest.raises(ImmutableVersionError):
        v1.delete()

    assert DefinitionVersion.objects.filter(pk=v1.pk, status=VersionStatus.APPROVED).exists()


def test_a_proposed_version_cannot_be_deleted(org, board):
    draft = draft_sla(board.proposer, org)
    propose(board.proposer, draft)
    draft.refresh_from_db()

    with pytest.raises(ImmutableVersionError):
        draft.delete()
    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=draft.pk).delete()

    assert snapshot(draft)["status"] == VersionStatus.PROPOSED


def test_a_draft_can_be_deleted(org, board):
    first = draft_sla(board.proposer, org)
    second = draft_sla(board.proposer, org)

    first.delete()
    DefinitionVersion.objects.filter(pk=second.pk).delete()

    assert not DefinitionVersion.objects.filter(pk__in=[first.pk, second.pk]).exists()


# --- Retired versions ----------------------------------------------------------------------------


RETIRED_CHANGES = {
    "status": VersionStatus.APPROVED,
    "retired_at": None,
    "parameters": {"max_days": 99},
    "change_summary": "Rewritten after the fact",
}


@pytest.mark.parametrize(("field", "value"), RETIRED_CHANGES.items(), ids=RETIRED_CHANGES)
def test_a_retired_version_cannot_be_saved_with_any_change(retired, field, value):
    before = snapshot(retired)
    setattr(retired, field, value)

    with pytest.raises(ImmutableVersionError):
        retired.save()

    assert snapshot(retired) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"parameters": {"max_days": 99}},
        {"status": VersionStatus.APPROVED},
        {"status": VersionStatus.APPROVED, "retired_at": None},
        {"retired_at": None},
    ],
    ids=["parameters", "un-retire", "un-retire-and-clear-date", "clear-date"],
)
def test_a_retired_version_cannot_be_changed_by_queryset_update(retired, changes):
    before = snapshot(retired)

    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=retired.pk).update(**changes)

    assert snapshot(retired) == before


def test_a_retired_version_cannot_be_deleted(retired):
    with pytest.raises(ImmutableVersionError):
        retired.delete()
    with pytest.raises(ImmutableVersionError):
        DefinitionVersion.objects.filter(pk=retired.pk).delete()

    assert snapshot(retired)["status"] == VersionStatus.RETIRED


# --- The admin ---------------------------------------------------------------------------------


def _change_url(version) -> str:
    return reverse("admin:failures_definitionversion_change", args=[version.pk])


ADD_URL = "/admin/failures/definitionversion/add/"


@pytest.fixture
def board_client(client, board):
    client.force_login(board.proposer)
    return client


def _form(client, url: str, org, **overrides) -> dict:
    """The admin form at `url` as the page offers it, filled in as a board member would.

    Fields the test does not care about keep the values the page shows, so the posted form
    is complete whatever optional fields the version form grows.
    """
    page = client.get(url)
    assert page.status_code == 200, f"GET {url} answered {page.status_code}"
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        data[name] = "" if value is None else value
        if isinstance(field, forms.JSONField) and not isinstance(value, str):
            data[name] = json.dumps(value)
    data.update(
        {
            "definition": definition_of(org).pk,
            "detector": "stage_sla",
            "parameters": json.dumps({"max_days": 10}),
            "change_summary": "Ten days.",
        }
    )
    data.update(overrides)
    return {name: value for name, value in data.items() if name in form.fields}


def test_the_admin_shows_an_approved_version_read_only(board_client, v1):
    response = board_client.get(_change_url(v1))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="_save"' not in content
    assert 'name="_continue"' not in content
    assert 'name="parameters"' not in content
    assert "max_days" in content  # shown, just not editable


def test_a_post_to_an_approved_versions_change_page_changes_nothing(board_client, org, v1):
    before = snapshot(v1)

    response = board_client.post(
        _change_url(v1), _form(board_client, ADD_URL, org, parameters=json.dumps({"max_days": 99}))
    )

    assert response.status_code == 403
    assert snapshot(v1) == before


def test_a_proposed_version_is_read_only_in_the_admin(board_client, org, board):
    draft = draft_sla(board.proposer, org, max_days=10)
    propose(board.proposer, draft)
    before = snapshot(draft)

    data = _form(board_client, ADD_URL, org, parameters='{"max_days": 1}')
    page = board_client.get(_change_url(draft))
    response = board_client.post(_change_url(draft), data)

    assert 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    assert snapshot(draft) == before


def test_the_admin_edits_a_draft_through_the_service(board_client, org, board):
    # Given a draft by the proposer, edited by another board member in the admin
    draft = draft_sla(board.proposer, org, max_days=10)
    editor = board.voters[0]
    board_client.force_login(editor)

    page = board_client.get(_change_url(draft))
    assert 'name="_save"' in page.content.decode()
    assert 'name="parameters"' in page.content.decode()

    response = board_client.post(
        _change_url(draft),
        _form(
            board_client,
            _change_url(draft),
            org,
            parameters=json.dumps({"max_days": 12}),
            change_summary="Twelve.",
        ),
    )

    assert response.status_code == 302
    stored = snapshot(draft)
    assert stored["parameters"]["max_days"] == 12
    assert stored["change_summary"] == "Twelve."
    assert stored["status"] == VersionStatus.DRAFT
    latest = draft.history.order_by("-history_id").first()
    assert (latest.history_user, latest.history_change_reason) == (editor, "Draft edited")


def test_the_admin_refuses_bad_parameters_on_a_draft_naming_them(board_client, org, board):
    draft = draft_sla(board.proposer, org, max_days=10)

    response = board_client.post(
        _change_url(draft),
        _form(board_client, _change_url(draft), org, parameters=json.dumps({"max_days": 0})),
    )

    assert response.status_code == 200
    assert "max_days" in " ".join(response.context["adminform"].form.errors.get("parameters", []))
    assert snapshot(draft)["parameters"]["max_days"] == 10


@pytest.mark.parametrize("target", ["approved", "draft"])
def test_reverting_a_version_through_history_is_refused(board_client, org, board, v1, target):
    # Given a version and one of its history rows
    version = v1 if target == "approved" else draft_sla(board.proposer, org, max_days=10)
    record = version.history.order_by("history_id").first()
    before = snapshot(version)

    # When the board member posts the "revert to this version" form with other values
    response = board_client.post(
        reverse(
            "admin:failures_definitionversion_simple_history",
            args=[version.pk, record.history_id],
        ),
        _form(board_client, ADD_URL, org, parameters=json.dumps({"max_days": 99})),
    )

    # Then it is refused and nothing changes
    assert response.status_code == 403
    assert snapshot(version) == before


def test_deleting_an_approved_version_in_the_admin_is_refused(board_client, v1):
    url = reverse("admin:failures_definitionversion_delete", args=[v1.pk])

    page = board_client.get(url)
    response = board_client.post(url, {"post": "yes"})

    assert page.status_code == 403
    assert response.status_code == 403
    assert DefinitionVersion.objects.filter(pk=v1.pk).exists()


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"max_days": 0}, "max_days"),
        ({"max_days": "7"}, "max_days"),
        ({"max_days": 7, "grace_days": 2}, "grace_days"),
        ({}, "max_days"),
    ],
    ids=["zero", "string", "unknown", "missing"],
)
def test_adding_a_version_with_bad_parameters_shows_an_error_naming_the_parameter(
    board_client, org, parameters, named
):
    response = board_client.post(
        ADD_URL, _form(board_client, ADD_URL, org, parameters=json.dumps(parameters))
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert named in " ".join(errors.get("parameters", []))
    assert named in response.content.decode()
    assert definition_of(org).versions.count() == 1


def test_adding_a_valid_version_creates_the_next_draft_through_the_service(
    board_client, org, board
):
    response = board_client.post(ADD_URL, _form(board_client, ADD_URL, org))

    assert response.status_code == 302
    created = definition_of(org).versions.get(number=2)
    assert created.status == VersionStatus.DRAFT
    assert created.parameters["max_days"] == 10
    assert created.created_by == board.proposer
    assert created.effective_from is None and created.approved_at is None
    record = created.history.get()
    assert (record.history_user, record.history_change_reason) == (board.proposer, "Draft created")


def test_adding_a_version_to_another_organizations_definition_is_refused(
    board_client, org, other_org
):
    foreign = definition_of(other_org)

    response = board_client.post(ADD_URL, _form(board_client, ADD_URL, org, definition=foreign.pk))

    assert response.status_code == 200
    assert "definition" in response.context["adminform"].form.errors
    assert foreign.versions.count() == 1


def test_a_role_without_change_permission_sees_versions_read_only(
    board_client, org, make_member, v1
):
    # Given a TA operations member, who works in the admin but may only view versions
    ta_ops = make_member(MembershipRole.TA_OPS, org, username="acme-ops")
    assert get_user_model().objects.get(pk=ta_ops.pk).is_staff
    data = _form(board_client, ADD_URL, org)
    client = Client()
    client.force_login(ta_ops)
    before = snapshot(v1)

    # When they open v1 and post the add form
    page = client.get(_change_url(v1))
    added = client.post(ADD_URL, data)

    # Then v1 is shown without a save button and nothing is added
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert added.status_code == 403
    assert definition_of(org).versions.count() == 1
    assert snapshot(v1) == before
