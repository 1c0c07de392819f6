"""Workable webhooks: the documented candidate events, signed and answered as Workable expects.

Fixtures in tests/integrations/fixtures/workable/ follow Workable's documented payload:
`{"id", "event_type", "fired_at", "resource_type", "data": <candidate>}`.
"""

import base64
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workable"
HEADER = "X-Workable-Signature"
TOKEN = "workable-account-token-0123456789"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(secret: str, body: bytes) -> dict[str, str]:
    return {HEADER: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


@pytest.fixture
def workable(vendor_connection):
    """A Workable connection whose pipeline stages are mapped."""
    connection = vendor_connection("workable", TOKEN)
    for stage, category in [
        ("Applied", "sourcing"),
        ("Phone Screen", "screening"),
        ("Hired", "hired"),
    ]:
        ConnectionStage.objects.create(connection=connection, ats_stage=stage, category=category)
    return connection


def post(hook, connection, body: bytes, secret: str = TOKEN, **kwargs):
    return hook(connection, body, signed(secret, body), **kwargs)


def kinds(connection) -> list[str]:
    return list(
        RecruitingEvent.objects.filter(connection=connection)
        .order_by("occurred_at", "pk")
        .values_list("kind", flat=True)
    )


@pytest.mark.django_db
def test_candidate_created_is_answered_200_stored_once_and_becomes_an_application(hook, workable):
    body = fixture("candidate_created")

    response = post(hook, workable, body, process=False)

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert delivery.event_type == "candidate_created"
    assert HEADER.lower() not in delivery.headers
    assert delivery.verified_with == "hex HMAC-SHA256 of body, key 'primary'"

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED
    event = RecruitingEvent.objects.get()
    assert event.kind == "application.created"
    assert event.occurred_at.isoformat() == "2026-11-02T09:30:00+00:00"
    application = Application.objects.get()
    assert (application.ats_id, application.candidate.ats_id, application.job.ats_id) == (
        "ce4da98",
        "ce4da98",
        "GROOV005",
    )
    assert application.job.title == "Backend Engineer"
    assert (application.current_stage, application.stage_category) == ("Applied", "sourcing")
    assert application.source == "linkedin.com"
    # Candidate data is minimised to the ATS id: nothing personal reaches the event log.
    stored = json.dumps(event.payload)
    for personal in ("Jane", "Example Street", "example.invalid", "+00 000"):
        assert personal not in stored


@pytest.mark.django_db
def test_candidate_moved_derives_the_stage_left_from_the_mirror(hook, workable):
    post(hook, workable, fixture("candidate_created"))

    response = post(hook, workable, fixture("candidate_moved"))

    assert response.status_code == 200
    moved = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert moved.payload["stage"] == {"name": "Phone Screen", "category": "screening"}
    assert moved.payload["details"] == {
        "previous_stage": "Applied",
        "derived": ["stage.previous"],
    }
    assert moved.occurred_at.isoformat() == "2026-11-03T14:00:07+00:00"  # fired_at
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == (
        "Phone Screen",
        "screening",
    )


@pytest.mark.django_db
def test_a_move_into_a_hired_stage_closes_the_application_as_hired(hook, workable):
    post(hook, workable, fixture("candidate_created"))
    payload = json.loads(fixture("candidate_moved"))
    payload["data"]["stage"] = "Hired"

    post(hook, workable, json.dumps(payload).encode())

    assert kinds(workable) == ["application.created", "application.hired"]
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_disqualification_with_a_reason_mapped_to_withdrawn_is_a_withdrawal(hook, workable):
    ConnectionReason.objects.create(
        connection=workable, ats_reason="accepted another offer", outcome="withdrawn"
    )
    post(hook, workable, fixture("candidate_created"))

    post(hook, workable, fixture("candidate_disqualified"))

    withdrawn = RecruitingEvent.objects.get(kind="application.withdrawn")
    assert withdrawn.payload["details"] == {
        "reason": "Accepted another offer",
        "outcome": "withdrawn",
    }
    assert withdrawn.occurred_at.isoformat() == "2026-11-05T10:15:00+00:00"  # disqualified_at
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_an_unmapped_disqualification_reason_is_a_rejection_marked_derived(hook, workable):
    post(hook, workable, fixture("candidate_created"))

    post(hook, workable, fixture("candidate_disqualified"))

    rejected = RecruitingEvent.objects.get(kind="application.rejected")
    assert rejected.payload["details"]["derived"] == ["reason.outcome"]
    assert Application.objects.get().status == "rejected"


@pytest.mark.django_db
def test_tampered_body_is_401_and_stores_nothing(hook, workable):
    body = fixture("candidate_created")
    headers = signed(TOKEN, body)

    response = hook(workable, body.replace(b"GROOV005", b"GROOV006"), headers)

    assert response.status_code == 401
    assert response.json()["field"] == HEADER
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, {HEADER: ""}, {HEADER: "not-a-signature"}])
def test_missing_or_malformed_signature_is_401(hook, workable, headers):
    response = hook(workable, fixture("candidate_created"), headers)

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_signature_made_with_another_key_is_401(hook, workable):
    response = post(hook, workable, fixture("candidate_created"), secret="someone-elses-token")

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_second_active_key_is_accepted_during_rotation(hook, vendor_connection):
    connection = vendor_connection("workable", "old-token-0123456789", "new-token-9876543210")
    ConnectionStage.objects.create(connection=connection, ats_stage="Applied", category="sourcing")

    response = post(hook, connection, fixture("candidate_created"), secret="old-token-0123456789")

    assert response.status_code == 200
    assert InboundDelivery.objects.get().verified_with.endswith("key 'primary'")
    assert kinds(connection) == ["application.created"]


@pytest.mark.django_db
def test_the_base64_form_of_the_same_digest_is_accepted(hook, workable):
    body = fixture("candidate_created")
    digest = hmac.new(TOKEN.encode(), body, hashlib.sha256).digest()

    response = hook(workable, body, {HEADER: base64.b64encode(digest).decode()})
    wrong = hmac.new(b"other", body, hashlib.sha256).digest()
    refused = hook(workable, body, {HEADER: base64.b64encode(wrong).decode()})

    assert response.status_code == 200
    assert refused.status_code == 401


@pytest.mark.django_db
def test_an_unknown_event_type_is_answered_200_and_stored_as_ignored(hook, workable):
    response = post(hook, workable, fixture("employee_created"))

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.IGNORED
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_missing_event_type_is_400_naming_it(hook, workable):
    body = json.dumps({"id": "x", "data": {"id": "1"}}).encode()

    response = post(hook, workable, body)

    assert response.status_code == 400
    assert response.json()["field"] == "event_type"


@pytest.mark.django_db
def test_a_replayed_delivery_is_one_delivery_and_one_set_of_events(hook, workable):
    body = fixture("candidate_created")

    first = post(hook, workable, body)
    again = post(hook, workable, body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert kinds(workable) == ["application.created"]


@pytest.mark.django_db
def test_processing_a_delivery_again_records_nothing_twice(hook, workable):
    post(hook, workable, fixture("candidate_created"))
    delivery = InboundDelivery.objects.get()
    InboundDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.FAILED)

    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert kinds(workable) == ["application.created"]


@pytest.mark.django_db(transaction=True)
def test_two_identical_deliveries_at_the_same_moment_store_one(vendor_connection):
    connection = vendor_connection("workable", TOKEN)
    body = fixture("candidate_created")
    headers = signed(TOKEN, body)
    statuses = post_at_once(connection, body, headers)

    assert statuses == [200, 200]
    assert InboundDelivery.objects.filter(connection=connection).count() == 1


@pytest.mark.django_db
def test_another_organizations_connection_refuses_a_delivery_signed_for_this_one(
    hook, workable, vendor_connection, other_org
):
    theirs = vendor_connection("workable", "their-token-0123456789", organization=other_org)

    response = post(hook, theirs, fixture("candidate_created"))

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_the_same_workable_ids_in_two_organizations_stay_apart(
    hook, workable, vendor_connection, other_org
):
    theirs = vendor_connection("workable", "their-token-0123456789", organization=other_org)
    ConnectionStage.objects.create(connection=theirs, ats_stage="Applied", category="sourcing")
    ConnectionStage.objects.create(connection=theirs, ats_stage="Phone Screen", category="offer")
    body = fixture("candidate_created")

    post(hook, workable, body)
    post(hook, theirs, body, secret="their-token-0123456789")
    post(hook, theirs, fixture("candidate_moved"), secret="their-token-0123456789")

    ours = Application.objects.get(connection=workable)
    their = Application.objects.get(connection=theirs)
    assert ours.organization_id != their.organization_id
    assert ours.ats_id == their.ats_id == "ce4da98"
    assert (ours.current_stage, their.current_stage) == ("Applied", "Phone Screen")
    assert their.stage_category == "offer"  # their mapping, not ours


@pytest.mark.django_db
def test_an_unmapped_stage_fails_the_delivery_and_a_replay_after_mapping_it_succeeds(
    hook, vendor_connection
):
    connection = vendor_connection("workable", TOKEN)

    response = post(hook, connection, fixture("candidate_created"))

    assert response.status_code == 200  # accepted: the failure is ours to fix, not Workable's
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("data.stage: Stage 'Applied' is not mapped")
    assert RecruitingEvent.objects.count() == 0

    ConnectionStage.objects.create(connection=connection, ats_stage="applied", category="sourcing")
    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert kinds(connection) == ["application.created"]


@pytest.mark.django_db
def test_a_candidate_event_without_a_job_fails_naming_the_field(hook, workable):
    payload = json.loads(fixture("candidate_created"))
    del payload["data"]["job"]

    post(hook, workable, json.dumps(payload).encode())

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error == "data.job.shortcode: This field is required."
