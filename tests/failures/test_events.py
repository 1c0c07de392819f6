"""event_parse: every validation rule of the canonical event, with the field it names."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from failures.events import (
    MAX_CLOCK_SKEW,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    ApplicationRef,
    CanonicalEvent,
    EventInvalid,
    JobRef,
    StageRef,
    event_parse,
    json_text_plain,
)

BASE: dict[str, Any] = {
    "id": "evt-1",
    "kind": "application.stage_changed",
    "occurred_at": "2026-03-02T09:30:00Z",
    "application": {
        "id": "app-9",
        "candidate_id": "cand-4",
        "source": "LinkedIn",
        "applied_at": "2026-02-20T08:00:00Z",
    },
    "job": {
        "id": "job-7",
        "title": "Backend Engineer",
        "team": "Platform",
        "region": "EMEA",
        "department": "Engineering",
        "job_family": "Engineering",
        "is_strategic": False,
    },
    "stage": {"name": "Phone Screen", "category": "screening"},
    "actor": {"id": "u-1", "role": "recruiter"},
    "details": {"note": "anything"},
}

_MISSING = object()


def event(**changes: Any) -> dict[str, Any]:
    """A deep copy of BASE; keys may be dotted ('job.id'); _MISSING deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        if value is _MISSING:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return data


def invalid(data: Any) -> EventInvalid:
    with pytest.raises(EventInvalid) as caught:
        event_parse(data)
    return caught.value


def iso(value: datetime) -> str:
    return value.isoformat()


# --- A valid event -------------------------------------------------------------------------


def test_a_complete_event_parses_into_typed_parts():
    parsed = event_parse(event())

    assert isinstance(parsed, CanonicalEvent)
    assert parsed.id == "evt-1"
    assert parsed.kind == "application.stage_changed"
    assert parsed.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert parsed.application == ApplicationRef(
        id="app-9",
        candidate_id="cand-4",
        source="LinkedIn",
        applied_at=datetime(2026, 2, 20, 8, 0, tzinfo=UTC),
    )
    assert parsed.job == JobRef(
        id="job-7",
        title="Backend Engineer",
        team="Platform",
        region="EMEA",
        department="Engineering",
        job_family="Engineering",
        is_strategic=False,
    )
    assert parsed.stage == StageRef(name="Phone Screen", category="screening")
    assert parsed.actor_id == "u-1"
    assert parsed.actor_role == "recruiter"
    assert parsed.details == {"note": "anything"}
    assert parsed.raw == event()


def test_strings_are_stripped_and_integer_ids_become_strings():
    parsed = event_parse(
        event(id=12345, application__id="  app-9  ", job__id=7, stage__name=" Phone Screen ")
    )

    assert parsed.id == "12345"
    assert parsed.application.id == "app-9"
    assert parsed.job.id == "7"
    assert parsed.stage.name == "Phone Screen"


def test_optional_parts_may_be_absent():
    parsed = event_parse(
        event(
            application__source=_MISSING,
            application__applied_at=_MISSING,
            job__title=_MISSING,
            job__team=_MISSING,
            job__region=_MISSING,
            job__department=_MISSING,
            job__job_family=_MISSING,
            job__is_strategic=_MISSING,
            stage__category=_MISSING,
            actor=_MISSING,
            details=_MISSING,
        )
    )

    assert parsed.application.source is None
    assert parsed.application.applied_at is None
    assert parsed.job == JobRef(id="job-7")
    assert parsed.stage == StageRef(name="Phone Screen", category=None)
    assert parsed.actor_id == ""
    assert parsed.actor_role == ""
    assert parsed.details == {}


def test_empty_strings_count_as_absent_for_optional_fields():
    parsed = event_parse(event(application__source="", stage__category="", actor__role=""))

    assert parsed.application.source is None
    assert parsed.stage.category is None
    assert parsed.actor_role == ""


def test_a_kind_that_is_not_about_an_application_needs_no_application_job_or_stage():
    parsed = event_parse(
        {"id": "evt-2", "kind": "job.updated", "occurred_at": "2026-03-02T09:30:00Z"}
    )

    assert parsed.application is None
    assert parsed.job is None
    assert parsed.stage is None


def test_a_job_only_event_keeps_its_job():
    parsed = event_parse(
        {
            "id": "evt-3",
            "kind": "job.updated",
            "occurred_at": "2026-03-02T09:30:00Z",
            "job": {"id": "job-7", "is_strategic": True},
        }
    )

    assert parsed.job == JobRef(id="job-7", is_strategic=True)


def test_timestamps_with_an_offset_are_accepted_and_kept_aware():
    parsed = event_parse(event(occurred_at="2026-03-02T11:30:00+02:00"))

    assert parsed.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_a_timestamp_within_the_clock_skew_is_accepted():
    soon = timezone.now() + MAX_CLOCK_SKEW - timedelta(minutes=5)

    assert event_parse(event(occurred_at=iso(soon))).occurred_at == soon


# --- The body ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], [BASE], "evt", 42, None, True])
def test_the_body_must_be_an_object(body):
    error = invalid(body)

    assert error.field == "body"


# --- id ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [_MISSING, None, "", "   "])
def test_id_is_required(value):
    error = invalid(event(id=value))

    assert error.field == "id"
    assert "required" in error.message


@pytest.mark.parametrize("value", [True, 1.5, ["evt-1"], {"v": "evt-1"}])
def test_id_must_be_a_string(value):
    assert invalid(event(id=value)).field == "id"


def test_id_length_limit():
    assert event_parse(event(id="e" * MAX_ID_LENGTH)).id == "e" * MAX_ID_LENGTH

    error = invalid(event(id="e" * (MAX_ID_LENGTH + 1)))

    assert error.field == "id"
    assert str(MAX_ID_LENGTH) in error.message


# --- kind ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [_MISSING, None, ""])
def test_kind_is_required(value):
    assert invalid(event(kind=value)).field == "kind"


@pytest.mark.parametrize(
    "value",
    [
        "offer",
        "Offer.Declined",
        "offer.",
        ".declined",
        "offer declined",
        "offer..declined",
        "1offer.declined",
        "offer-declined",
        "offer.declined!",
    ],
)
def test_kind_must_look_like_noun_verb(value):
    assert invalid(event(kind=value)).field == "kind"


def test_kind_length_limit():
    assert invalid(event(kind="a." + "b" * 80)).field == "kind"


# --- occurred_at ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [_MISSING, None, ""])
def test_occurred_at_is_required(value):
    assert invalid(event(occurred_at=value)).field == "occurred_at"


@pytest.mark.parametrize("value", [1767225600, 1.5, ["2026-03-02T09:30:00Z"], True])
def test_occurred_at_must_be_a_string(value):
    assert invalid(event(occurred_at=value)).field == "occurred_at"


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-02T09:30:00Z", "2026-02-30T09:30:00Z", "2026-03-02T25:00Z"]
)
def test_occurred_at_must_be_iso_8601(value):
    assert invalid(event(occurred_at=value)).field == "occurred_at"


@pytest.mark.parametrize("value", ["2026-03-02T09:30:00", "2026-03-02 09:30", "2026-03-02"])
def test_occurred_at_must_carry_a_time_zone(value):
    error = invalid(event(occurred_at=value))

    assert error.field == "occurred_at"


def test_occurred_at_beyond_the_clock_skew_is_refused():
    later = timezone.now() + MAX_CLOCK_SKEW + timedelta(minutes=5)

    error = invalid(event(occurred_at=iso(later)))

    assert error.field == "occurred_at"
    assert "future" in error.message


# --- application ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "application.created",
        "application.stage_changed",
        "application.rejected",
        "application.withdrawn",
        "application.hired",
        "offer.extended",
        "offer.accepted",
        "offer.declined",
    ],
)
def test_application_kinds_require_an_application(kind):
    error = invalid(event(kind=kind, application=_MISSING))

    assert error.field == "application"


@pytest.mark.parametrize("value", ["app-9", ["app-9"], 9])
def test_application_must_be_an_object(value):
    assert invalid(event(application=value)).field == "application"


@pytest.mark.parametrize("key", ["id", "candidate_id"])
@pytest.mark.parametrize("value", [_MISSING, None, "", "  "])
def test_application_ids_are_required(key, value):
    error = invalid(event(**{f"application__{key}": value}))

    assert error.field == f"application.{key}"


@pytest.mark.parametrize("key", ["id", "candidate_id"])
def test_application_id_length_limits(key):
    ok = event_parse(event(**{f"application__{key}": "a" * MAX_ID_LENGTH}))
    assert getattr(ok.application, key) == "a" * MAX_ID_LENGTH

    error = invalid(event(**{f"application__{key}": "a" * (MAX_ID_LENGTH + 1)}))

    assert error.field == f"application.{key}"


def test_application_source_length_limit():
    assert invalid(event(application__source="s" * (MAX_TEXT_LENGTH + 1))).field == (
        "application.source"
    )


@pytest.mark.parametrize("value", ["2026-02-20T08:00:00", "soon", 20260220])
def test_application_applied_at_is_validated_like_a_timestamp(value):
    assert invalid(event(application__applied_at=value)).field == "application.applied_at"


def test_application_applied_at_may_not_be_in_the_future():
    later = timezone.now() + timedelta(days=2)

    assert invalid(event(application__applied_at=iso(later))).field == "application.applied_at"


# --- job -----------------------------------------------------------------------------------


def test_an_application_needs_a_job():
    assert invalid(event(job=_MISSING)).field == "job"


def test_job_must_be_an_object():
    assert invalid(event(job="job-7")).field == "job"


@pytest.mark.parametrize("value", [_MISSING, None, ""])
def test_job_id_is_required(value):
    assert invalid(event(job__id=value)).field == "job.id"


def test_job_id_length_limit():
    assert invalid(event(job__id="j" * (MAX_ID_LENGTH + 1))).field == "job.id"


@pytest.mark.parametrize(
    "key, limit",
    [
        ("title", MAX_TEXT_LENGTH),
        ("team", 120),
        ("region", 40),
        ("department", MAX_TEXT_LENGTH),
        ("job_family", MAX_TEXT_LENGTH),
    ],
)
def test_job_text_limits(key, limit):
    assert getattr(event_parse(event(**{f"job__{key}": "x" * limit})).job, key) == "x" * limit

    error = invalid(event(**{f"job__{key}": "x" * (limit + 1)}))

    assert error.field == f"job.{key}"


@pytest.mark.parametrize("value", ["true", 1, 0, "yes"])
def test_job_is_strategic_must_be_a_boolean(value):
    assert invalid(event(job__is_strategic=value)).field == "job.is_strategic"


@pytest.mark.parametrize("key", ["title", "team"])
def test_job_text_must_be_a_string(key):
    assert invalid(event(**{f"job__{key}": {"name": "x"}})).field == f"job.{key}"


# --- stage ---------------------------------------------------------------------------------


def test_a_stage_change_needs_a_stage():
    assert invalid(event(stage=_MISSING)).field == "stage"


def test_other_application_kinds_do_not_need_a_stage():
    parsed = event_parse(event(kind="application.rejected", stage=_MISSING))

    assert parsed.stage is None


def test_stage_must_be_an_object():
    assert invalid(event(stage="Phone Screen")).field == "stage"


@pytest.mark.parametrize("value", [_MISSING, None, ""])
def test_stage_name_is_required(value):
    assert invalid(event(stage__name=value)).field == "stage.name"


def test_stage_name_length_limit():
    assert invalid(event(stage__name="s" * 201)).field == "stage.name"


@pytest.mark.parametrize("value", ["Screening", "phone_screen", "rejected", "x" * 21])
def test_stage_category_must_be_a_known_category(value):
    assert invalid(event(stage__category=value)).field == "stage.category"


@pytest.mark.parametrize(
    "value", ["sourcing", "screening", "interviewing", "offer", "onboarding", "hired", "closed"]
)
def test_every_known_stage_category_is_accepted(value):
    assert event_parse(event(stage__category=value)).stage.category == value


# --- actor and details ---------------------------------------------------------------------


def test_actor_must_be_an_object():
    assert invalid(event(actor="u-1")).field == "actor"


def test_actor_limits():
    assert invalid(event(actor__id="u" * (MAX_ID_LENGTH + 1))).field == "actor.id"
    assert invalid(event(actor__role="r" * 61)).field == "actor.role"


@pytest.mark.parametrize("value", ["Compensation", ["Compensation"], 3])
def test_details_must_be_an_object(value):
    assert invalid(event(details=value)).field == "details"


# --- Control characters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, field",
    [
        ("id", "id"),
        ("application__id", "application.id"),
        ("application__candidate_id", "application.candidate_id"),
        ("application__source", "application.source"),
        ("job__id", "job.id"),
        ("job__title", "job.title"),
        ("stage__name", "stage.name"),
        ("actor__id", "actor.id"),
    ],
)
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x1f"])
def test_control_characters_are_refused_in_every_text_field(path, field, char):
    error = invalid(event(**{path: f"abc{char}def"}))

    assert error.field == field
    assert "Control" in error.message


@pytest.mark.parametrize("char", ["\n", "\t", "\r"])
def test_inner_line_breaks_and_tabs_are_control_characters(char):
    assert invalid(event(stage__name=f"Phone{char}Screen")).field == "stage.name"


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9b"])
def test_del_and_c1_control_characters_are_refused_too(char):
    # DEL and the C1 block (NEL, CSI, ...) are control characters (Unicode category Cc);
    # NEL breaks lines in log viewers and CSI starts terminal escape sequences.
    error = invalid(event(application__id=f"app{char}9"))

    assert error.field == "application.id"


def test_ordinary_unicode_text_is_accepted():
    parsed = event_parse(event(job__title="Ingénieure logiciel — 東京", stage__name="Écran"))

    assert parsed.job.title == "Ingénieure logiciel — 東京"
    assert parsed.stage.name == "Écran"


# --- Which error comes first ---------------------------------------------------------------


def test_the_first_bad_field_in_document_order_is_named():
    error = invalid(event(id="", kind="bad", application__id=""))

    assert error.field == "id"


def test_error_string_names_the_field():
    error = invalid(event(job__id=""))

    assert str(error).startswith("job.id: ")


def test_text_that_is_not_valid_unicode_is_refused():
    # A lone surrogate cannot be encoded as UTF-8, so it can never be stored.
    error = invalid(event(application__id="app-\ud800"))

    assert error.field == "application.id"


def test_job_people_and_dates_are_parsed():
    parsed = event_parse(
        event(
            job__hiring_manager_id="hm-1",
            job__recruiter_id=" rec-2 ",
            job__opened_at="2026-01-05T09:00:00Z",
            job__closed_at="2026-03-01T17:00:00+01:00",
        )
    )

    assert parsed.job.hiring_manager_ats_id == "hm-1"
    assert parsed.job.recruiter_ats_id == "rec-2"
    assert parsed.job.opened_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert parsed.job.closed_at == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("key", ["hiring_manager_id", "recruiter_id"])
def test_job_people_ids_are_limited_like_ids(key):
    error = invalid(event(**{f"job__{key}": "p" * (MAX_ID_LENGTH + 1)}))

    assert error.field == f"job.{key}"


@pytest.mark.parametrize("key", ["opened_at", "closed_at"])
@pytest.mark.parametrize("value", ["2026-01-05T09:00:00", "soon", 20260105])
def test_job_dates_are_validated_like_timestamps(key, value):
    assert invalid(event(**{f"job__{key}": value})).field == f"job.{key}"


# --- Plain text: the checks a bulk import may skip -------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\n", "\t", "\x1b", "\x7f", "\x85", "\ud800"])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_text_that_can_hold_a_control_character_is_never_plain(char, ensure_ascii):
    body = copy.deepcopy(BASE)
    body["job"]["title"] = f"Backend{char}Engineer"
    text = json.dumps(body, ensure_ascii=ensure_ascii)

    assert not json_text_plain(text)
    assert not json_text_plain(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(EventInvalid) as caught:
        event_parse(json.loads(text), plain=json_text_plain(text))
    assert caught.value.field == "job.title"


def test_text_nested_deep_enough_to_matter_is_never_plain():
    deep = copy.deepcopy(BASE)
    inner: dict = deep.setdefault("details", {})
    for _ in range(40):
        inner["x"] = {}
        inner = inner["x"]
    text = json.dumps(deep)

    assert not json_text_plain(text)
    with pytest.raises(EventInvalid, match="Nested deeper"):
        event_parse(json.loads(text), plain=json_text_plain(text))


def test_a_plain_event_parses_the_same_with_or_without_the_skipped_checks():
    text = json.dumps(BASE)

    assert json_text_plain(text) and json_text_plain(text.encode())
    assert event_parse(json.loads(text), plain=True) == event_parse(json.loads(text))
