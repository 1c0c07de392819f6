"""Recruitee webhooks: documented events and test requests, signed and answered with 200.

Fixtures in tests/integrations/fixtures/recruitee/ follow Recruitee's documented shape:
`{"id", "attempt_count", "created_at", "event_type", "event_subtype", "payload": {...}}`
and the test request `{"test":true}`.
"""

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from failures.models import Application, RecruitingEvent
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import (
    ConnectionReason,
    ConnectionStage,
    DeliveryState,
    InboundDelivery,
)
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recruitee"
HEADER = "X-Recruitee-Signature"
SECRET = "recruitee-webhook-secret-0123456789"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(secret: str, body: bytes) -> dict[str, str]:
    return {HEADER: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def post(hook, connection, body: bytes, secret: str = SECRET, **kwargs):
    return hook(connection, body, signed(secret, body), **kwargs)


def map_stages(connection) -> None:
    # By id, by name and by Recruitee's own stage category: all three are accepted.
    ConnectionStage.objects.create(connection=connection, ats_stage="8080461", category="sourcing")
    ConnectionStage.objects.create(
        connection=connection, ats_stage="Phone screen", category="screening"
    )
    ConnectionStage.objects.create(connection=connection, ats_stage="hire", category="hired")


@pytest.fixture
def recruitee(vendor_connection):
    connection = vendor_connection("recruitee", SECRET)
    map_stages(connection)
    return connection


def kinds(connection) -> list[str]:
    return list(
        RecruitingEvent.objects.filter(connection=connection)
        .order_by("occurred_at", "pk")
        .values_list("kind", flat=True)
    )


@pytest.mark.django_db
def test_candidate_created_is_answered_200_stored_once_and_becomes_an_application(hook, recruitee):
    body = fixture("candidate_created")

    response = post(hook, recruitee, body, process=False)

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert (delivery.event_type, delivery.dedupe_key) == (
        "candidate_created.career_site",
        "90310001",
    )
    assert HEADER.lower() not in delivery.headers

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED
    event = RecruitingEvent.objects.get()
    assert event.kind == "application.created"
    assert event.event_id == "recruitee:90310001:created"
    application = Application.objects.get()
    assert (application.ats_id, application.candidate.ats_id, application.job.ats_id) == (
        "4410:1192594",
        "4410",
        "1192594",
    )
    assert (application.current_stage, application.stage_category) == ("Applied", "sourcing")
    assert application.source == "career_site"
    stored = json.dumps(event.payload)
    for personal in ("Jane", "example.invalid", "+00 000"):
        assert personal not in stored


@pytest.mark.django_db
def test_stage_changed_takes_the_stage_left_from_the_delivery(hook, recruitee):
    post(hook, recruitee, fixture("candidate_created"))

    post(hook, recruitee, fixture("candidate_moved"))

    moved = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert moved.payload["stage"] == {"name": "Phone screen", "category": "screening"}
    assert moved.payload["details"] == {"previous_stage": "Applied"}  # sent, not derived
    assert moved.occurred_at.isoformat() == "2026-11-03T14:00:00+00:00"
    assert Application.objects.get().stage_category == "screening"


@pytest.mark.django_db
def test_a_move_without_from_stage_derives_it_from_the_mirror(hook, recruitee):
    post(hook, recruitee, fixture("candidate_created"))
    payload = json.loads(fixture("candidate_moved"))
    del payload["payload"]["details"]["from_stage"]

    post(hook, recruitee, json.dumps(payload).encode())

    moved = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert moved.payload["details"] == {
        "previous_stage": "Applied",
        "derived": ["stage.previous"],
    }


@pytest.mark.django_db
def test_a_stage_of_recruitees_hire_category_closes_the_application_as_hired(hook, recruitee):
    post(hook, recruitee, fixture("candidate_created"))
    payload = json.loads(fixture("candidate_moved"))
    payload["payload"]["details"]["to_stage"] = {"id": 8080469, "name": "Hired", "category": "hire"}

    post(hook, recruitee, json.dumps(payload).encode())

    assert kinds(recruitee) == ["application.created", "application.hired"]
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_disqualification_maps_its_reason_id_to_a_withdrawal(hook, recruitee):
    ConnectionReason.objects.create(connection=recruitee, ats_reason="312", outcome="withdrawn")
    post(hook, recruitee, fixture("candidate_created"))

    post(hook, recruitee, fixture("candidate_disqualified"))

    withdrawn = RecruitingEvent.objects.get(kind="application.withdrawn")
    assert withdrawn.payload["details"] == {
        "reason": "Withdrew application",
        "reason_id": "312",
        "outcome": "withdrawn",
    }
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_an_unmapped_disqualification_reason_is_a_rejection_marked_derived(hook, recruitee):
    post(hook, recruitee, fixture("candidate_created"))

    post(hook, recruitee, fixture("candidate_disqualified"))

    rejected = RecruitingEvent.objects.get(kind="application.rejected")
    assert rejected.payload["details"]["derived"] == ["reason.outcome"]


@pytest.mark.django_db
def test_the_unsigned_test_request_is_answered_200_and_stores_nothing(hook, recruitee):
    response = hook(recruitee, fixture("test"), {})

    assert response.status_code == 200
    assert InboundDelivery.objects.count() == 0
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_signed_test_payload_is_stored_as_ignored_and_creates_no_event(hook, recruitee):
    example = json.loads(fixture("candidate_created"))
    example["test"] = True
    body = json.dumps(example).encode()

    response = post(hook, recruitee, body)

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.state) == ("test", DeliveryState.IGNORED)
    assert RecruitingEvent.objects.count() == 0
    assert Application.objects.count() == 0


@pytest.mark.django_db
def test_a_test_payload_with_a_wrong_signature_is_401(hook, recruitee):
    response = post(hook, recruitee, fixture("test"), secret="not-the-secret")

    assert response.status_code == 401


@pytest.mark.django_db
def test_tampered_body_is_401_and_stores_nothing(hook, recruitee):
    body = fixture("candidate_moved")
    headers = signed(SECRET, body)

    response = hook(recruitee, body.replace(b"8080462", b"8080463"), headers)

    assert response.status_code == 401
    assert response.json()["field"] == HEADER
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_missing_signature_on_an_event_is_401(hook, recruitee):
    response = hook(recruitee, fixture("candidate_created"), {})

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_signature_made_with_another_key_is_401(hook, recruitee):
    response = post(hook, recruitee, fixture("candidate_created"), secret="another-secret")

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_second_active_key_is_accepted_during_rotation(hook, vendor_connection):
    connection = vendor_connection("recruitee", "old-secret-0123456789", "new-secret-9876543210")
    map_stages(connection)

    response = post(hook, connection, fixture("candidate_created"), secret="new-secret-9876543210")

    assert response.status_code == 200
    assert InboundDelivery.objects.get().verified_with.endswith("key 'key-2'")
    assert kinds(connection) == ["application.created"]


@pytest.mark.django_db
def test_an_unknown_event_type_is_answered_200_and_stored_as_ignored(hook, recruitee):
    response = post(hook, recruitee, fixture("candidate_deleted"))

    assert response.status_code == 200
    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_event_without_its_id_is_400_naming_it(hook, recruitee):
    payload = json.loads(fixture("candidate_created"))
    del payload["id"]

    response = post(hook, recruitee, json.dumps(payload).encode())

    assert response.status_code == 400
    assert response.json()["field"] == "id"


@pytest.mark.django_db
def test_a_retry_with_a_higher_attempt_count_is_a_duplicate(hook, recruitee):
    body = fixture("candidate_created")
    retry = json.loads(body)
    retry["attempt_count"] = 2

    first = post(hook, recruitee, body)
    again = post(hook, recruitee, json.dumps(retry).encode())

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert kinds(recruitee) == ["application.created"]


@pytest.mark.django_db(transaction=True)
def test_two_identical_deliveries_at_the_same_moment_store_one(vendor_connection):
    connection = vendor_connection("recruitee", SECRET)
    body = fixture("candidate_created")
    headers = signed(SECRET, body)
    statuses = post_at_once(connection, body, headers)

    assert statuses == [200, 200]
    assert InboundDelivery.objects.filter(connection=connection).count() == 1


@pytest.mark.django_db
def test_another_organizations_connection_refuses_a_delivery_signed_for_this_one(
    hook, recruitee, vendor_connection, other_org
):
    theirs = vendor_connection("recruitee", "their-secret-0123456789", organization=other_org)

    response = post(hook, theirs, fixture("candidate_created"))

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_the_same_recruitee_ids_in_two_organizations_stay_apart(
    hook, recruitee, vendor_connection, other_org
):
    theirs = vendor_connection("recruitee", "their-secret-0123456789", organization=other_org)
    map_stages(theirs)

    post(hook, recruitee, fixture("candidate_created"))
    post(hook, theirs, fixture("candidate_created"), secret="their-secret-0123456789")
    post(hook, theirs, fixture("candidate_disqualified"), secret="their-secret-0123456789")

    ours = Application.objects.get(connection=recruitee)
    their = Application.objects.get(connection=theirs)
    assert ours.organization_id != their.organization_id
    assert ours.ats_id == their.ats_id == "4410:1192594"
    assert (ours.status, their.status) == ("active", "rejected")


@pytest.mark.django_db
def test_an_unmapped_stage_fails_the_delivery_and_a_replay_after_mapping_it_succeeds(
    hook, vendor_connection
):
    connection = vendor_connection("recruitee", SECRET)

    post(hook, connection, fixture("candidate_created"))

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith(
        "payload.details.to_stage: Stage '8080461' / 'Applied' / 'apply' is not mapped"
    )
    ConnectionStage.objects.create(connection=connection, ats_stage="apply", category="sourcing")

    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == ("Applied", "sourcing")


@pytest.mark.django_db
def test_a_talent_pool_is_not_a_job(hook, recruitee):
    payload = json.loads(fixture("candidate_created"))
    payload["payload"]["offer"]["kind"] = "talent_pool"

    post(hook, recruitee, json.dumps(payload).encode())

    assert InboundDelivery.objects.get().state == DeliveryState.PROCESSED
    assert Application.objects.count() == 0


@pytest.mark.django_db
def test_requalifying_moves_the_application_back_into_the_pipeline(hook, recruitee):
    post(hook, recruitee, fixture("candidate_created"))
    post(hook, recruitee, fixture("candidate_disqualified"))
    payload = json.loads(fixture("candidate_moved"))
    payload.update(id=90310005, event_subtype="requalified", created_at="2026-11-06T09:00:00Z")
    del payload["payload"]["details"]["from_stage"]

    post(hook, recruitee, json.dumps(payload).encode())

    application = Application.objects.get()
    assert (application.status, application.current_stage) == ("active", "Phone screen")
    assert kinds(recruitee) == [
        "application.created",
        "application.rejected",
        "application.stage_changed",
    ]


@pytest.mark.django_db
def test_a_move_without_to_stage_fails_naming_it(hook, recruitee):
    payload = json.loads(fixture("candidate_moved"))
    del payload["payload"]["details"]["to_stage"]

    post(hook, recruitee, json.dumps(payload).encode())

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error == "payload.details.to_stage: This field is required."
