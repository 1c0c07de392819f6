"""Ashby deliveries through the hook: signature, answers, dedupe, mapping, tenancy."""

import copy
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from failures.models import Application, Candidate, Failure, Interview, Job, RecruitingEvent
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import ConnectionReason, ConnectionStage, DeliveryState, InboundDelivery
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ashby"
SECRET = "ashby-secret-token-0123456789"
OTHER_SECRET = "ashby-other-token-9876543210"
APP_ID = "a1b2c3d4-0001-4000-8000-000000000001"
CANDIDATE_ID = "c0ffee00-0001-4000-8000-000000000001"
JOB_ID = "10b00000-0001-4000-8000-000000000001"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def raw(payload: dict | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Ashby-Signature": f"sha256={digest}"}


@pytest.fixture
def ashby(vendor_connection):
    return vendor_connection("ashby", SECRET)


@pytest.fixture
def deliver(hook, ashby):
    """deliver(payload, secret=..., target=..., process=True) -> response, signed for Ashby."""

    def post(payload, *, secret: str = SECRET, target=None, process: bool = True, headers=None):
        body = raw(payload)
        return hook(target or ashby, body, headers or signed(body, secret), process=process)

    return post


def events(kind: str | None = None):
    rows = RecruitingEvent.objects.order_by("occurred_at", "pk")
    return list(rows.filter(kind=kind) if kind else rows)


# --- the documented examples, end to end --------------------------------------------------


@pytest.mark.django_db
def test_application_submit_is_stored_answered_200_and_recorded_without_personal_data(
    ashby, deliver
):
    response = deliver(fixture("applicationSubmit"), process=False)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    delivery = InboundDelivery.objects.get()
    assert (delivery.vendor, delivery.event_type) == ("ashby", "applicationSubmit")
    assert delivery.dedupe_key == "applicationSubmit:75395d87-4044-4dc4-bc29-0cec185e5f06"
    assert "ashby-signature" not in delivery.headers
    assert not any("signature" in name for name in delivery.headers)
    assert delivery.verified_with.startswith("sha256 HMAC of body")

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED, delivery.error
    event = RecruitingEvent.objects.get()
    assert event.event_id == "ashby:75395d87-4044-4dc4-bc29-0cec185e5f06:application.created"
    assert event.kind == "application.created"
    assert event.occurred_at.isoformat() == "2026-11-02T09:30:00+00:00"
    application = Application.objects.get()
    assert (application.ats_id, application.connection) == (APP_ID, ashby)
    assert application.candidate.ats_id == CANDIDATE_ID
    assert application.job.ats_id == JOB_ID
    assert application.job.title == "Backend Engineer"
    assert application.source == "LinkedIn"
    assert (application.current_stage, application.stage_category) == (
        "Application Review",
        "screening",
    )
    stored = json.dumps(event.payload)
    for personal in ("Fixture Candidate", "fixture.candidate@example.com", "555-0100", "Rita"):
        assert personal not in stored
    assert delivery.event_ids == [event.event_id]


@pytest.mark.django_db
def test_stage_change_records_the_move_and_derives_the_previous_stage(deliver):
    deliver(fixture("applicationSubmit"))

    response = deliver(fixture("candidateStageChange"))

    assert response.status_code == 200
    moved = events("application.stage_changed")
    assert len(moved) == 1
    assert moved[0].payload["stage"] == {"name": "Onsite", "category": "interviewing"}
    assert moved[0].payload["details"]["previous_stage"] == "Application Review"
    assert "stage.previous" in moved[0].payload["details"]["derived"]
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == ("Onsite", "interviewing")


@pytest.mark.django_db
def test_related_deliveries_sharing_a_webhook_action_id_record_one_event(deliver):
    deliver(fixture("applicationSubmit"))

    first = deliver(fixture("candidateStageChange"))
    second = deliver(fixture("applicationUpdate"))  # same webhookActionId, other action

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "accepted"  # (action, id) differs: not a duplicate
    assert InboundDelivery.objects.count() == 3
    assert len(events("application.stage_changed")) == 1


@pytest.mark.django_db
def test_application_update_without_a_move_records_nothing(deliver):
    deliver(fixture("applicationSubmit"))
    edit = fixture("applicationSubmit")
    edit["action"] = "applicationUpdate"
    edit["webhookActionId"] = "11111111-0000-4000-8000-00000000e0e0"

    assert deliver(edit).status_code == 200

    delivery = InboundDelivery.objects.get(event_type="applicationUpdate")
    assert delivery.state == DeliveryState.PROCESSED
    assert delivery.events_recorded == 0
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db
def test_move_to_archived_with_rejected_by_org_is_a_rejection(deliver):
    deliver(fixture("applicationSubmit"))

    deliver(fixture("candidateStageChange_archived"))

    rejected = events("application.rejected")
    assert len(rejected) == 1
    details = rejected[0].payload["details"]
    assert details["reason"] == "Too inexperienced"
    assert details["reason_type"] == "RejectedByOrg"
    assert details["outcome_source"] == "archiveReason.reasonType"
    assert rejected[0].occurred_at.isoformat() == "2026-11-07T10:15:00+00:00"
    application = Application.objects.get()
    assert (application.status, application.stage_category) == ("rejected", "closed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reason_type", "kind", "derived"),
    [
        ("RejectedByCandidate", "application.withdrawn", False),
        ("Other", "application.rejected", True),
    ],
)
def test_archive_reason_type_decides_withdrawn_or_rejected(deliver, reason_type, kind, derived):
    deliver(fixture("applicationSubmit"))
    archived = fixture("candidateStageChange_archived")
    archived["data"]["application"]["archiveReason"]["reasonType"] = reason_type

    deliver(archived)

    event = RecruitingEvent.objects.get(kind=kind)
    assert ("reason.outcome" in event.payload["details"].get("derived", [])) is derived


@pytest.mark.django_db
def test_connection_reason_mapping_overrides_the_reason_type(ashby, deliver):
    ConnectionReason.objects.create(
        connection=ashby, ats_reason="a4c40000-0001-4000-8000-000000000001", outcome="withdrawn"
    )
    deliver(fixture("applicationSubmit"))

    deliver(fixture("candidateStageChange_archived"))  # reasonType RejectedByOrg

    assert [e.kind for e in events()] == ["application.created", "application.withdrawn"]
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_hire_and_its_stage_change_record_one_hire(deliver):
    deliver(fixture("applicationSubmit"))
    hire = fixture("candidateHire")
    stage_change = copy.deepcopy(hire)
    stage_change["action"] = "candidateStageChange"
    del stage_change["data"]["offer"]

    assert deliver(hire).status_code == 200
    assert deliver(stage_change).status_code == 200

    hired = events("application.hired")
    assert len(hired) == 1
    assert hired[0].payload["details"]["offer_id"] == "0ffe0000-0001-4000-8000-000000000001"
    assert "salary" not in json.dumps(hired[0].payload)
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_declined_offer_is_recorded_with_ids_derived_from_the_mirror(deliver):
    deliver(fixture("applicationSubmit"))

    deliver(fixture("offerUpdate_declined"))

    kinds = [e.kind for e in events()]
    assert kinds == ["application.created", "offer.approved", "offer.declined"]
    declined = RecruitingEvent.objects.get(kind="offer.declined")
    assert declined.payload["application"] == {"id": APP_ID, "candidate_id": CANDIDATE_ID}
    assert declined.payload["job"] == {"id": JOB_ID}
    assert {"application.candidate_id", "job.id"} <= set(declined.payload["details"]["derived"])
    assert declined.occurred_at.isoformat() == "2026-11-18T08:45:00+00:00"
    assert Failure.objects.filter(definition__code="OFR-DECLINED").count() == 1


@pytest.mark.django_db
def test_interview_scheduled_keeps_the_first_start(deliver):
    deliver(fixture("applicationSubmit"))

    deliver(fixture("interviewScheduleUpdate"))

    interview = Interview.objects.get()
    assert interview.ats_id == "1e5c0000-0001-4000-8000-000000000001"
    assert interview.scheduled_for.isoformat() == "2026-12-03T14:00:00+00:00"
    assert interview.application.ats_id == APP_ID


@pytest.mark.django_db
def test_job_create_records_the_job_and_its_hiring_team_ids(deliver):
    deliver(fixture("jobCreate"))

    job = Job.objects.get()
    assert (job.ats_id, job.title) == ("10b00000-0002-4000-8000-000000000002", "Data Engineer")
    assert job.hiring_manager_ats_id == "05e40000-0004-4000-8000-000000000004"
    assert job.recruiter_ats_id == "05e40000-0001-4000-8000-000000000001"
    assert RecruitingEvent.objects.get().kind == "job.created"


# --- signatures ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_tampered_body_is_401_and_stores_nothing(deliver):
    body = raw(fixture("applicationSubmit"))
    headers = signed(body)
    tampered = body.replace(b"Backend Engineer", b"Backend EngineeR")

    response = deliver(tampered, headers=headers)

    assert response.status_code == 401
    assert response.json()["field"] == "Ashby-Signature"
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("sha256=" + "0" * 64, id="wrong-digest"),
        pytest.param("SIGNED", id="no-prefix"),
    ],
)
def test_wrong_or_missing_signature_is_401(deliver, header):
    body = raw(fixture("applicationSubmit"))

    response = deliver(body, headers={"Ashby-Signature": header} if header else {"X-A": "1"})

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_wrong_key_is_401(deliver):
    assert deliver(fixture("applicationSubmit"), secret=OTHER_SECRET).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_second_active_key_is_accepted(vendor_connection, deliver):
    rotating = vendor_connection("ashby", SECRET, OTHER_SECRET)

    response = deliver(fixture("applicationSubmit"), secret=OTHER_SECRET, target=rotating)

    assert response.status_code == 200
    assert "key-2" in InboundDelivery.objects.get().verified_with


# --- ping, unknown, bad input -------------------------------------------------------------


@pytest.mark.django_db
def test_ping_is_answered_200_and_creates_nothing(deliver):
    response = deliver(fixture("ping"))

    assert response.status_code == 200
    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_unknown_action_is_answered_200_and_stored_as_ignored(deliver):
    response = deliver(fixture("surveySubmit"))

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.state) == ("surveySubmit", DeliveryState.IGNORED)
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_missing_action_is_400_naming_it(deliver):
    payload = fixture("applicationSubmit")
    del payload["action"]

    response = deliver(payload)

    assert response.status_code == 400
    assert response.json()["field"] == "action"
    assert InboundDelivery.objects.count() == 0


# --- exactly once -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retry_is_a_duplicate_with_one_delivery_and_one_event(deliver):
    first = deliver(fixture("applicationSubmit"))
    retry = deliver(fixture("applicationSubmit"))

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_one_delivery(ashby):
    body = raw(fixture("applicationSubmit"))
    statuses = post_at_once(ashby, body, signed(body))
    deliveries_process_pending()

    assert statuses == [200, 200]
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1
    assert Application.objects.count() == 1


# --- tenancy ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_connection_refuses_this_organizations_delivery(
    vendor_connection, other_org, deliver
):
    theirs = vendor_connection("ashby", OTHER_SECRET, organization=other_org)

    response = deliver(fixture("applicationSubmit"), target=theirs)  # signed with our secret

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0
    assert Application.objects.count() == 0


@pytest.mark.django_db
def test_identical_ashby_ids_in_two_organizations_stay_apart(
    org, other_org, vendor_connection, deliver
):
    ours = vendor_connection("ashby", SECRET)
    theirs = vendor_connection("ashby", OTHER_SECRET, organization=other_org)

    deliver(fixture("applicationSubmit"), target=ours)
    deliver(fixture("applicationSubmit"), target=theirs, secret=OTHER_SECRET)
    deliver(fixture("candidateStageChange"), target=theirs, secret=OTHER_SECRET)

    assert Application.objects.filter(organization=org).get().current_stage == (
        "Application Review"
    )
    assert Application.objects.filter(organization=other_org).get().current_stage == "Onsite"
    assert Candidate.objects.filter(ats_id=CANDIDATE_ID).count() == 2
    assert RecruitingEvent.objects.filter(organization=org).count() == 1
    assert RecruitingEvent.objects.filter(organization=other_org).count() == 2


# --- a mapping fix, then replay -----------------------------------------------------------


@pytest.mark.django_db
def test_unmapped_stage_fails_with_its_name_and_is_processed_after_a_mapping(ashby, deliver):
    deliver(fixture("applicationSubmit"))
    take_home = fixture("candidateStageChange")
    take_home["data"]["application"]["currentInterviewStage"].update(
        {"id": "5a9e0000-0004-4000-8000-000000000004", "title": "Take Home"}
    )

    assert deliver(take_home).status_code == 200  # accepted: the vendor must not retry

    delivery = InboundDelivery.objects.get(event_type="candidateStageChange")
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("data.application.currentInterviewStage:")
    assert "'Take Home'" in delivery.error
    ConnectionStage.objects.create(
        connection=ashby,
        ats_stage="5a9e0000-0004-4000-8000-000000000004",
        category="interviewing",
    )

    assert delivery_replay(delivery) == DeliveryState.PROCESSED

    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == (
        "Take Home",
        "interviewing",
    )


@pytest.mark.django_db
def test_offer_for_an_unknown_application_fails_and_replays_once_it_is_known(deliver):
    deliver(fixture("offerUpdate_declined"))
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("data.offer.applicationId:")

    deliver(fixture("applicationSubmit"))

    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert RecruitingEvent.objects.filter(kind="offer.declined").count() == 1


@pytest.mark.django_db
def test_repeated_offer_updates_with_the_same_decision_record_it_once(deliver):
    deliver(fixture("applicationSubmit"))
    again = fixture("offerUpdate_declined")
    again["webhookActionId"] = "bc4f5062-0009-4000-8000-000000000009"  # a later edit

    deliver(fixture("offerUpdate_declined"))
    deliver(again)

    assert InboundDelivery.objects.filter(event_type="offerUpdate").count() == 2
    assert RecruitingEvent.objects.filter(kind="offer.declined").count() == 1
    assert RecruitingEvent.objects.filter(kind="offer.approved").count() == 1
    assert Failure.objects.filter(definition__code="OFR-DECLINED").count() == 1
