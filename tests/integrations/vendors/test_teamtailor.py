"""Teamtailor deliveries through the hook: TT-Signature, JSON:API bodies in either casing."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from failures.models import Application, Job, RecruitingEvent
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import ConnectionReason, ConnectionStage, DeliveryState, InboundDelivery
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "teamtailor"
SECRET = "tt-signature-key-0123456789"
OTHER_SECRET = "tt-other-key-9876543210"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tt_signature(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return base64.b64encode(f"t={stamp},v2={digest}".encode()).decode()


@pytest.fixture
def tt(vendor_connection):
    connection = vendor_connection("teamtailor", SECRET)
    for stage_id, name, category in [
        ("901", "Inbox", "screening"),
        ("902", "Interview", "interviewing"),
        ("903", "Hired", "hired"),
    ]:
        ConnectionStage.objects.create(
            connection=connection, ats_stage=stage_id, stage_name=name, category=category
        )
    return connection


@pytest.fixture
def deliver(hook, tt):
    def post(
        payload,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        target=None,
        process: bool = True,
        content_type: str = "application/json",
        headers: dict | None = None,
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = headers or {"TT-Signature": tt_signature(body, secret, timestamp)}
        return hook(target or tt, body, headers, content_type=content_type, process=process)

    return post


def kinds() -> list[str]:
    return list(RecruitingEvent.objects.order_by("pk").values_list("kind", flat=True))


# --- valid deliveries ---------------------------------------------------------------------


@pytest.mark.django_db
def test_job_application_create_is_answered_200_stored_and_recorded(tt, deliver):
    response = deliver(fixture("job_application_create"), process=False)

    assert response.status_code == 200, response.content
    delivery = InboundDelivery.objects.get()
    assert delivery.event_type == "job_application.create"
    assert delivery.dedupe_key == (
        "job_application.create:job-applications:55001:2026-11-02T10:30:00.000+01:00"
    )
    assert "tt-signature" not in delivery.headers

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED, delivery.error
    event = RecruitingEvent.objects.get()
    assert event.kind == "application.created"
    assert event.occurred_at.isoformat() == "2026-11-02T09:30:00+00:00"
    assert "Dear team" not in json.dumps(event.payload)  # the cover letter stays out
    application = Application.objects.get()
    assert (application.ats_id, application.connection) == ("55001", tt)
    assert application.candidate.ats_id == "77001"
    assert application.job.ats_id == "3"
    assert application.source == "LinkedIn"
    assert (application.current_stage, application.stage_category) == ("Inbox", "screening")


@pytest.mark.django_db
def test_snake_case_update_moves_the_stage_and_derives_the_previous_one(deliver):
    deliver(fixture("job_application_create"))

    response = deliver(fixture("job_application_update_snake_case"))

    assert response.status_code == 200
    moved = RecruitingEvent.objects.get(kind="application.stage_changed")
    assert moved.payload["stage"] == {"name": "Interview", "category": "interviewing"}
    assert moved.payload["details"]["previous_stage"] == "Inbox"
    assert moved.occurred_at.isoformat() == "2026-11-04T14:00:00+00:00"
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == (
        "Interview",
        "interviewing",
    )


@pytest.mark.django_db
def test_json_api_content_type_is_accepted(deliver):
    response = deliver(fixture("job_application_create"), content_type="application/vnd.api+json")

    assert response.status_code == 200, response.content
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_update_that_does_not_move_the_application_records_nothing(deliver):
    deliver(fixture("job_application_create"))
    same_stage = fixture("job_application_create")
    same_stage["payload"]["event_name"] = "job_application.update"
    same_stage["payload"]["data"]["attributes"]["updated-at"] = "2026-11-03T08:00:00.000+01:00"

    deliver(same_stage)

    assert kinds() == ["application.created"]
    assert InboundDelivery.objects.get(event_type="job_application.update").state == (
        DeliveryState.PROCESSED
    )


@pytest.mark.django_db
def test_rejection_without_a_reason_mapping_is_the_companys(deliver):
    deliver(fixture("job_application_create"))

    deliver(fixture("job_application_update_rejected"))

    rejected = RecruitingEvent.objects.get(kind="application.rejected")
    assert rejected.payload["details"]["ats_reason_id"] == "4401"
    assert "reason.outcome" in rejected.payload["details"]["derived"]
    assert Application.objects.get().status == "rejected"


@pytest.mark.django_db
def test_a_reason_mapped_to_withdrawn_makes_a_withdrawal(tt, deliver):
    ConnectionReason.objects.create(
        connection=tt, ats_reason="4401", reason_name="Candidate withdrew", outcome="withdrawn"
    )
    deliver(fixture("job_application_create"))

    deliver(fixture("job_application_update_rejected"))

    assert kinds() == ["application.created", "application.withdrawn"]
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_a_move_to_a_hired_stage_is_a_hire(deliver):
    deliver(fixture("job_application_create"))
    hired = fixture("job_application_update_snake_case")
    hired["payload"]["data"]["relationships"]["stage"]["data"]["id"] = "903"

    deliver(hired)

    assert kinds() == ["application.created", "application.hired"]
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_the_documented_job_update_closes_an_archived_job(deliver):
    response = deliver(fixture("job_update"))

    assert response.status_code == 200
    event = RecruitingEvent.objects.get()
    assert event.kind == "job.closed"
    assert event.payload["job"] == {"id": "2", "title": "IT Designer 1"}
    assert Job.objects.get().title == "IT Designer 1"


@pytest.mark.django_db
def test_job_create(deliver):
    deliver(fixture("job_create"))

    assert kinds() == ["job.created"]
    assert Job.objects.get().ats_id == "3"


# --- signatures ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_tampered_body_is_401(deliver):
    body = json.dumps(fixture("job_application_create")).encode()
    header = tt_signature(body)

    response = deliver(body.replace(b"77001", b"77002"), headers={"TT-Signature": header})

    assert response.status_code == 401
    assert response.json()["field"] == "TT-Signature"
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("not base64 at all", id="garbage"),
        pytest.param(base64.b64encode(b"t=1,v1=abc").decode(), id="no-v2"),
    ],
)
def test_missing_or_malformed_signature_is_401(deliver, header):
    response = deliver(
        fixture("job_application_create"),
        headers={"TT-Signature": header} if header else {"X-Other": "1"},
    )

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_wrong_key_is_401(deliver):
    assert deliver(fixture("job_application_create"), secret=OTHER_SECRET).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_second_active_key_is_accepted(vendor_connection, deliver):
    rotating = vendor_connection("teamtailor", SECRET, OTHER_SECRET)

    response = deliver(fixture("job_create"), secret=OTHER_SECRET, target=rotating)

    assert response.status_code == 200
    assert "key-2" in InboundDelivery.objects.get().verified_with


@pytest.mark.django_db
def test_stale_timestamp_is_401(deliver, settings):
    stale = int(time.time()) - settings.FAILTRACK_REPLAY_WINDOW_SECONDS - 60

    response = deliver(fixture("job_application_create"), timestamp=stale)

    assert response.status_code == 401
    assert "Stale" in response.json()["error"]
    assert InboundDelivery.objects.count() == 0


# --- never refused when signed: unknown, odd shapes ---------------------------------------


@pytest.mark.django_db
def test_candidate_update_is_answered_200_stored_as_ignored_and_records_nothing(deliver):
    response = deliver(fixture("candidate_update"))

    assert response.status_code == 200
    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_signed_delivery_without_an_event_name_is_still_accepted(deliver):
    response = deliver({"payload": {"data": {"id": "1"}}})

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.state) == ("unknown", DeliveryState.IGNORED)


# --- exactly once -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeated_delivery_is_a_duplicate(deliver):
    first = deliver(fixture("job_application_create"))
    again = deliver(fixture("job_application_create"))

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_one_delivery(tt):
    body = json.dumps(fixture("job_application_create")).encode()
    header = tt_signature(body)
    statuses = post_at_once(tt, body, {"TT-Signature": header})
    deliveries_process_pending()

    assert statuses == [200, 200]
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


# --- tenancy ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_connection_refuses_the_delivery(
    vendor_connection, other_org, deliver
):
    theirs = vendor_connection("teamtailor", OTHER_SECRET, organization=other_org)

    assert deliver(fixture("job_application_create"), target=theirs).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_identical_ids_in_two_organizations_stay_apart(
    org, other_org, tt, vendor_connection, deliver
):
    theirs = vendor_connection("teamtailor", OTHER_SECRET, organization=other_org)
    ConnectionStage.objects.create(
        connection=theirs, ats_stage="901", stage_name="Nieuw", category="sourcing"
    )

    deliver(fixture("job_application_create"))
    deliver(fixture("job_application_create"), target=theirs, secret=OTHER_SECRET)

    assert Application.objects.get(organization=org).current_stage == "Inbox"
    assert Application.objects.get(organization=other_org).current_stage == "Nieuw"


# --- a mapping fix, then replay -----------------------------------------------------------


@pytest.mark.django_db
def test_unmapped_stage_fails_and_is_processed_after_a_mapping(tt, deliver):
    deliver(fixture("job_application_create"))
    unmapped = fixture("job_application_update_snake_case")
    unmapped["payload"]["data"]["relationships"]["stage"]["data"]["id"] = "999"

    assert deliver(unmapped).status_code == 200

    delivery = InboundDelivery.objects.get(event_type="job_application.update")
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("payload.data.relationships.stage:")
    assert "'999'" in delivery.error
    ConnectionStage.objects.create(
        connection=tt, ats_stage="999", stage_name="Assessment", category="interviewing"
    )

    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert Application.objects.get().current_stage == "Assessment"
