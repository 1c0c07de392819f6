"""POST /api/v1/hooks/greenhouse/<id>/: Greenhouse's documented deliveries, answered with 200."""

import hashlib
import hmac
import itertools
import json
from pathlib import Path

import pytest
from django.utils import timezone

from failures.models import (
    Application,
    Candidate,
    Interview,
    Job,
    RecruitingEvent,
    StageTransition,
)
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import (
    ConnectionReason,
    ConnectionStage,
    DeliveryKey,
    DeliveryState,
    InboundDelivery,
)
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "greenhouse"
SECRET = "greenhouse-secret-0123456789abcdef"
OTHER_SECRET = "greenhouse-other-secret-fedcba9876543210"
APP_ID = "71980812"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def signature(secret: str, body: bytes) -> str:
    """Greenhouse's header value: the algorithm, one space, the hex digest."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: str | dict | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return (FIXTURES / f"{payload}.json").read_bytes()
    return json.dumps(payload).encode()


@pytest.fixture
def greenhouse(vendor_connection):
    return vendor_connection("greenhouse", SECRET)


@pytest.fixture
def deliver(hook, greenhouse):
    """deliver(fixture name | dict | bytes, event_id=..., secret=..., ...) -> response."""
    ids = itertools.count(1)

    def send(
        payload: str | dict | bytes,
        *,
        event_id: str | None = None,
        secret: str = SECRET,
        connection=None,
        process: bool = True,
        headers: dict[str, str] | None = None,
    ):
        body = body_of(payload)
        sent = {
            "Signature": signature(secret, body),
            "Greenhouse-Event-ID": event_id or f"gh-evt-{next(ids)}",
            "User-Agent": "Greenhouse",
        }
        sent.update(headers or {})
        return hook(connection or greenhouse, body, sent, process=process)

    return send


def only_event() -> RecruitingEvent:
    return RecruitingEvent.objects.get()


def events_of(kind: str) -> list[RecruitingEvent]:
    return list(RecruitingEvent.objects.filter(kind=kind).order_by("occurred_at", "pk"))


# --- A valid delivery from the documented example ------------------------------------------


@pytest.mark.django_db
def test_new_application_is_answered_200_stored_once_and_mirrored(org, greenhouse, deliver):
    response = deliver("new_candidate_application", event_id="gh-evt-created", process=False)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    delivery = InboundDelivery.objects.get()
    assert delivery.connection == greenhouse
    assert delivery.organization == org
    assert (delivery.vendor, delivery.event_type) == ("greenhouse", "new_candidate_application")
    assert delivery.dedupe_key == "gh-evt-created"
    assert bytes(delivery.body) == body_of("new_candidate_application")
    assert "signature" not in delivery.headers
    assert delivery.headers["greenhouse-event-id"] == "gh-evt-created"
    assert delivery.verified_with == "sha256 HMAC of body, key 'primary'"

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED, delivery.error
    event = only_event()
    assert event.event_id == "greenhouse:gh-evt-created"
    assert event.kind == "application.created"
    assert event.occurred_at.isoformat() == "2026-11-20T09:00:00+00:00"
    application = Application.objects.get()
    assert (application.organization, application.connection) == (org, greenhouse)
    assert application.ats_id == APP_ID
    assert application.candidate.ats_id == "60304594"
    assert application.source == "LinkedIn (Prospecting)"
    assert (application.current_stage, application.stage_category) == (
        "Application Review",
        "screening",
    )
    job = Job.objects.get()
    assert (job.ats_id, job.title, job.department) == ("274075", "Data Scientist", "Data Science")
    assert (job.hiring_manager_ats_id, job.recruiter_ats_id) == ("92913", "92121")
    assert application.job == job


@pytest.mark.django_db
def test_no_candidate_personal_data_reaches_the_event_log(greenhouse, deliver):
    deliver("new_candidate_application")
    deliver("hire_candidate")

    stored = json.dumps([e.payload for e in RecruitingEvent.objects.all()])
    assert RecruitingEvent.objects.count() == 2
    for personal in ("Testy", "Candidate", "example.com", "555-0100", "Example Street", "resume"):
        assert personal not in stored


@pytest.mark.django_db
def test_stage_change_takes_the_previous_stage_from_the_mirror(greenhouse, deliver):
    deliver("new_candidate_application")

    response = deliver("candidate_stage_change", event_id="gh-evt-stage")

    assert response.status_code == 200
    event = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert event.event_id == "greenhouse:gh-evt-stage"
    assert event.occurred_at.isoformat() == "2026-11-23T10:15:00+00:00"
    assert event.payload["stage"] == {"name": "Onsite", "category": "interviewing"}
    assert event.payload["details"]["previous_stage"] == {
        "name": "Application Review",
        "category": "screening",
    }
    assert event.payload["details"]["derived"] == ["stage.previous"]
    transition = StageTransition.objects.get(event=event)
    assert (transition.from_stage, transition.to_stage) == ("Application Review", "Onsite")
    assert Application.objects.get().stage_category == "interviewing"


@pytest.mark.django_db
def test_stage_change_of_an_unknown_application_derives_nothing(greenhouse, deliver):
    deliver("candidate_stage_change")

    event = only_event()
    assert "previous_stage" not in event.payload["details"]
    assert "derived" not in event.payload["details"]
    assert Application.objects.get().current_stage == "Onsite"


@pytest.mark.django_db
def test_rejection_by_the_company_closes_the_application_as_rejected(greenhouse, deliver):
    deliver("new_candidate_application")

    deliver("reject_candidate")

    event = RecruitingEvent.objects.get(kind="application.rejected")
    assert event.occurred_at.isoformat() == "2026-11-25T16:00:00+00:00"
    assert event.payload["details"]["reason"] == "Too Junior"
    assert event.payload["details"]["rejection_reason"]["type"] == "We rejected them"
    application = Application.objects.get()
    assert (application.status, application.stage_category) == ("rejected", "closed")


@pytest.mark.django_db
def test_they_rejected_us_is_a_withdrawal(greenhouse, deliver):
    deliver("new_candidate_application")

    deliver("reject_candidate_withdrawn")

    assert not events_of("application.rejected")
    event = RecruitingEvent.objects.get(kind="application.withdrawn")
    assert event.payload["details"]["outcome_from"] == "rejection reason type"
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_the_connections_reason_mapping_wins_over_the_reason_type(greenhouse, deliver):
    ConnectionReason.objects.create(
        connection=greenhouse, ats_reason="14", reason_name="Too Junior", outcome="withdrawn"
    )

    deliver("reject_candidate")  # type "We rejected them", but reason 14 is mapped

    event = only_event()
    assert event.kind == "application.withdrawn"
    assert event.payload["details"]["outcome_from"] == "connection reason mapping"


@pytest.mark.django_db
def test_a_reason_mapped_as_offer_declined_closes_the_application_as_withdrawn(greenhouse, deliver):
    ConnectionReason.objects.create(
        connection=greenhouse, ats_reason="Too Junior", outcome="declined"
    )

    deliver("reject_candidate")

    # The decline itself arrives as offer_updated (Rejected); no second offer.declined here.
    assert [e.kind for e in RecruitingEvent.objects.all()] == ["application.withdrawn"]


@pytest.mark.django_db
def test_unreject_moves_the_application_back_into_the_pipeline(greenhouse, deliver):
    deliver("new_candidate_application")
    deliver("reject_candidate")

    deliver("unreject_candidate")

    reopened = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert reopened.payload["details"]["reopened"] is True
    application = Application.objects.get()
    assert (application.status, application.current_stage) == ("active", "Onsite")
    assert application.closed_at is None


@pytest.mark.django_db
def test_hire_closes_the_application_as_hired_when_the_offer_was_accepted(greenhouse, deliver):
    deliver("new_candidate_application")

    deliver("hire_candidate")

    event = RecruitingEvent.objects.get(kind="application.hired")
    assert event.occurred_at.isoformat() == "2026-11-26T12:00:00+00:00"
    assert event.payload["details"]["offer_id"] == "506409"
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_a_rejected_offer_is_an_offer_decline_with_the_candidate_from_the_mirror(
    greenhouse, deliver
):
    deliver("new_candidate_application")

    deliver("offer_updated")

    event = RecruitingEvent.objects.get(kind="offer.declined")
    assert event.event_id == "greenhouse:offer:506409:v2:offer.declined"
    assert event.occurred_at.isoformat() == "2026-11-26T12:00:00+00:00"
    assert event.payload["application"] == {"id": APP_ID, "candidate_id": "60304594"}
    assert event.payload["details"]["derived"] == ["application.candidate_id"]


@pytest.mark.django_db
def test_the_same_offer_state_told_twice_is_one_event(greenhouse, deliver):
    deliver("new_candidate_application")

    deliver("offer_updated")
    deliver("offer_updated")  # another delivery id, same offer version and status

    assert InboundDelivery.objects.filter(event_type="offer_updated").count() == 2
    assert len(events_of("offer.declined")) == 1


@pytest.mark.django_db
def test_a_deprecated_offer_version_records_nothing(greenhouse, deliver):
    payload = fixture("offer_updated")
    payload["payload"]["offer_status"] = "Deprecated"

    assert deliver(payload).status_code == 200

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_an_offer_of_an_unknown_application_fails_and_replays_once_it_is_known(greenhouse, deliver):
    deliver("offer_updated")

    failed = InboundDelivery.objects.get()
    assert failed.state == DeliveryState.FAILED
    assert failed.error.startswith("payload.application_id: Application 71980812 is not known")

    deliver("new_candidate_application")
    assert delivery_replay(failed) == DeliveryState.PROCESSED
    assert len(events_of("offer.declined")) == 1


@pytest.mark.django_db
def test_job_created_and_closed_keep_the_job_mirror(greenhouse, deliver):
    deliver("job_created")
    job = Job.objects.get()
    assert (job.ats_id, job.title, job.closed_at) == ("274075", "Data Scientist", None)

    deliver("job_updated")

    assert [e.kind for e in RecruitingEvent.objects.order_by("pk")] == ["job.created", "job.closed"]
    job.refresh_from_db()
    assert job.closed_at.isoformat() == "2026-11-27T17:00:00+00:00"


@pytest.mark.django_db
def test_offer_lifecycle_sent_approved_and_drafts(greenhouse, deliver):
    deliver("new_candidate_application")
    draft = fixture("offer_created")
    draft["payload"]["sent_on"] = None

    deliver(draft)  # a draft is no extended offer
    deliver("offer_approved")
    deliver("offer_created")  # the same version, now sent

    approved, extended = events_of("offer.approved"), events_of("offer.extended")
    assert [e.event_id for e in approved + extended] == [
        "greenhouse:offer:506408:v1:offer.approved",
        "greenhouse:offer:506408:v1:offer.extended",
    ]
    assert extended[0].payload["details"]["sent_on"] == "2026-11-24"
    assert "occurred_at" in extended[0].payload["details"]["derived"]
    assert Application.objects.get().offer_approved_at is not None


@pytest.mark.django_db
def test_a_job_update_that_is_not_a_closure_is_a_job_update(greenhouse, deliver):
    payload = fixture("job_updated")
    payload["payload"]["job"].update(status="open", closed_at=None, name="Senior Data Scientist")

    deliver(payload)

    event = only_event()
    assert event.kind == "job.updated"
    assert event.payload["details"]["derived"] == ["occurred_at"]
    assert Job.objects.get().title == "Senior Data Scientist"


@pytest.mark.django_db
def test_a_deleted_interview_the_mirror_knows_is_cancelled(greenhouse, deliver):
    deliver("new_candidate_application")
    interview = Interview.objects.create(
        application=Application.objects.get(),
        ats_id="31087450",
        scheduled_at=timezone.now(),
    )

    deliver("interview_deleted")

    event = RecruitingEvent.objects.get(kind="interview.cancelled")
    assert event.payload["application"] == {"id": APP_ID, "candidate_id": "60304594"}
    assert event.payload["interview"] == {"id": "31087450"}
    assert event.payload["details"]["derived"] == [
        "application.candidate_id",
        "application.id",
        "job.id",
        "occurred_at",
    ]
    interview.refresh_from_db()
    assert interview.cancelled_at is not None


@pytest.mark.django_db
def test_a_deleted_interview_nobody_told_us_about_records_nothing(greenhouse, deliver):
    deliver("interview_deleted")

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_a_prospect_on_no_job_records_nothing(greenhouse, deliver):
    assert deliver("new_prospect_application").status_code == 200

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_a_prospect_on_a_job_is_created_without_a_stage(greenhouse, deliver):
    payload = fixture("new_prospect_application")
    payload["payload"]["application"]["jobs"] = fixture("new_candidate_application")["payload"][
        "application"
    ]["jobs"]

    deliver(payload)

    event = only_event()
    assert (event.kind, event.payload["details"]["prospect"]) == ("application.created", True)
    assert "stage" not in event.payload
    assert Application.objects.get().current_stage == ""


@pytest.mark.django_db
def test_unhire_reopens_like_unreject(greenhouse, deliver):
    deliver("new_candidate_application")
    deliver("hire_candidate")
    payload = fixture("unreject_candidate")
    payload["action"] = "unhire_candidate"
    payload["payload"]["application"]["last_activity_at"] = "2026-11-27T09:00:00Z"  # after

    deliver(payload)

    application = Application.objects.get()
    assert (application.status, application.current_stage) == ("active", "Onsite")


# --- Signatures -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tampered_body_is_401_and_nothing_is_stored(greenhouse, hook):
    body = body_of("new_candidate_application")
    tampered = body.replace(b'"Data Scientist"', b'"Chief Scientist"', 1)
    assert tampered != body

    response = hook(
        greenhouse,
        tampered,
        {"Signature": signature(SECRET, body), "Greenhouse-Event-ID": "gh-evt-1"},
    )

    assert response.status_code == 401
    assert response.json()["field"] == "Signature"
    assert not InboundDelivery.objects.exists()
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_a_wrong_key_is_401(greenhouse, deliver):
    response = deliver("new_candidate_application", secret=OTHER_SECRET)

    assert response.status_code == 401
    assert not InboundDelivery.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "sha256={digest}",  # the common format is not Greenhouse's
        "{digest}",  # no algorithm
        "sha1 {digest}",
        "sha256 ",
    ],
)
@pytest.mark.django_db
def test_a_signature_header_not_in_greenhouses_format_is_401(greenhouse, hook, header):
    body = body_of("new_candidate_application")
    digest = signature(SECRET, body).split(" ", 1)[1]

    response = hook(
        greenhouse,
        body,
        {"Signature": header.format(digest=digest), "Greenhouse-Event-ID": "gh-evt-1"},
    )

    assert response.status_code == 401
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_an_uppercase_hex_digest_is_accepted(greenhouse, hook):
    body = body_of("new_candidate_application")
    digest = signature(SECRET, body).split(" ", 1)[1].upper()

    response = hook(greenhouse, body, {"Signature": f"sha256 {digest}", "Greenhouse-Event-ID": "x"})

    assert response.status_code == 200


@pytest.mark.django_db
def test_a_second_active_key_is_accepted_during_rotation(vendor_connection, deliver):
    rotating = vendor_connection("greenhouse", SECRET, OTHER_SECRET)

    old = deliver("new_candidate_application", connection=rotating, secret=SECRET)
    new = deliver("candidate_stage_change", connection=rotating, secret=OTHER_SECRET)

    assert (old.status_code, new.status_code) == (200, 200)
    labels = sorted(InboundDelivery.objects.values_list("verified_with", flat=True))
    assert labels == ["sha256 HMAC of body, key 'key-2'", "sha256 HMAC of body, key 'primary'"]


# --- Ping, unknown events, bad envelopes ----------------------------------------------------


@pytest.mark.django_db
def test_ping_is_answered_200_and_creates_nothing(greenhouse, deliver):
    response = deliver("ping")

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_ping_without_an_event_id_is_still_200(greenhouse, hook):
    body = body_of("ping")

    response = hook(greenhouse, body, {"Signature": signature(SECRET, body)})

    assert response.status_code == 200
    assert InboundDelivery.objects.get().dedupe_key.startswith("ping:")


@pytest.mark.django_db
def test_an_unknown_action_is_200_and_stored_as_ignored(greenhouse, deliver):
    response = deliver({"action": "brand_new_action", "payload": {"thing": {"id": 1}}})

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.state) == ("brand_new_action", DeliveryState.IGNORED)
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_a_documented_but_unmapped_action_is_ignored(greenhouse, deliver):
    payload = {"action": "delete_candidate", "payload": {"person": {"id": 37031511}}}

    assert deliver(payload).status_code == 200

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        (b"[]", {}, "body"),
        (json.dumps({"payload": {}}).encode(), {}, "action"),
        (
            json.dumps({"action": "reject_candidate", "payload": []}).encode(),
            {},
            "payload",
        ),
        (body_of("new_candidate_application"), {"Greenhouse-Event-ID": ""}, "Greenhouse-Event-ID"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_envelope_is_400_naming_the_field(greenhouse, hook, body, headers, field):
    sent = {"Signature": signature(SECRET, body), "Greenhouse-Event-ID": "gh-evt-1", **headers}
    if not sent["Greenhouse-Event-ID"]:
        del sent["Greenhouse-Event-ID"]

    response = hook(greenhouse, body, sent)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert not InboundDelivery.objects.exists()


# --- Exactly once ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_redelivery_with_the_same_event_id_is_one_delivery_and_one_event(greenhouse, deliver):
    first = deliver("new_candidate_application", event_id="gh-evt-same")
    second = deliver("new_candidate_application", event_id="gh-evt-same")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1
    assert StageTransition.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_deliveries_store_one(org, vendor_connection):
    greenhouse = vendor_connection("greenhouse", SECRET)
    body = body_of("new_candidate_application")
    headers = {"Signature": signature(SECRET, body), "Greenhouse-Event-ID": "gh-evt-race"}
    statuses = post_at_once(greenhouse, body, headers)

    assert statuses == [200, 200]
    assert InboundDelivery.objects.count() == 1
    assert DeliveryKey.objects.filter(dedupe_key="gh-evt-race").count() == 1

    deliveries_process_pending()
    assert RecruitingEvent.objects.count() == 1


# --- Tenants --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_connection_refuses_a_delivery_signed_for_ours(
    other_org, vendor_connection, deliver
):
    theirs = vendor_connection("greenhouse", OTHER_SECRET, organization=other_org)

    response = deliver("new_candidate_application", connection=theirs, secret=SECRET)

    assert response.status_code == 401
    assert not InboundDelivery.objects.exists()
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_identical_greenhouse_ids_in_two_organizations_stay_apart(
    org, other_org, greenhouse, vendor_connection, deliver
):
    theirs = vendor_connection("greenhouse", OTHER_SECRET, organization=other_org)

    deliver("new_candidate_application", event_id="gh-evt-1")
    deliver(
        "new_candidate_application", event_id="gh-evt-1", connection=theirs, secret=OTHER_SECRET
    )
    deliver("reject_candidate", event_id="gh-evt-2")  # ours only

    ours = Application.objects.get(organization=org)
    other = Application.objects.get(organization=other_org)
    assert ours.ats_id == other.ats_id == APP_ID
    assert (ours.status, other.status) == ("rejected", "active")
    assert ours.candidate != other.candidate
    assert other.candidate.organization == other_org
    assert other.job.organization == other_org
    assert Candidate.objects.count() == Job.objects.count() == 2
    assert InboundDelivery.objects.filter(organization=other_org).count() == 1


# --- Mapping failures -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unmapped_stage_fails_clearly_and_is_processed_after_the_mapping(greenhouse, deliver):
    payload = fixture("candidate_stage_change")
    payload["payload"]["application"]["current_stage"]["name"] = "Take-home Test"

    assert deliver(payload).status_code == 200  # accepted: the failure is ours to fix

    failed = InboundDelivery.objects.get()
    assert failed.state == DeliveryState.FAILED
    assert failed.error.startswith(
        "payload.application.current_stage.name: Stage 'Take-home Test' is not mapped"
    )
    assert not RecruitingEvent.objects.exists()

    ConnectionStage.objects.create(
        connection=greenhouse, ats_stage="take-home test", category="interviewing"
    )
    assert delivery_replay(failed) == DeliveryState.PROCESSED

    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == (
        "Take-home Test",
        "interviewing",
    )


@pytest.mark.django_db
def test_a_stage_mapped_by_greenhouse_stage_id_is_accepted(greenhouse, deliver):
    payload = fixture("candidate_stage_change")
    payload["payload"]["application"]["current_stage"]["name"] = "Panel"
    ConnectionStage.objects.create(connection=greenhouse, ats_stage="2944105", category="offer")

    deliver(payload)

    assert Application.objects.get().stage_category == "offer"
    assert only_event().payload["stage"] == {"name": "Panel", "category": "offer"}
