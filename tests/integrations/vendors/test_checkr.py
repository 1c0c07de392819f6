"""Checkr webhooks: candidates linked to the ATS's applications, reports as check events.

Fixtures in tests/integrations/fixtures/checkr/ follow Checkr's documented event shape
`{"id", "object": "event", "type", "created_at", "webhook_url", "data": {"object": ...}}`
with include_object on. The organization's ATS (here a generic connection) has already
recorded application `app-9` (candidate `cand-4`, job `job-7`); the Checkr candidate's
`custom_id` names it.
"""

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from failures.models import Application, IntegrationError, RecruitingEvent
from failures.services import event_record
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import DeliveryState, InboundDelivery
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkr"
HEADER = "X-Checkr-Signature"
API_KEY = "checkr-secret-api-key-0123456789"
CHECKR_CANDIDATE = "e44aa283528e6fde7d542194"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(secret: str, body: bytes) -> dict[str, str]:
    return {HEADER: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def post(hook, connection, name_or_body, secret: str = API_KEY, **kwargs):
    body = name_or_body if isinstance(name_or_body, bytes) else fixture(name_or_body)
    return hook(connection, body, signed(secret, body), **kwargs)


@pytest.fixture
def ats_application(connection, make_event):
    """The application the organization's ATS recorded: app-9, job-7."""
    event_record(connection=connection, payload=make_event("application.created"))
    return Application.objects.get(connection=connection, ats_id="app-9")


@pytest.fixture
def checkr(vendor_connection, ats_application):
    return vendor_connection("checkr", API_KEY)


def events(connection) -> list[tuple[str, str]]:
    """Canonical events Checkr's deliveries produced (recorded on the ATS's connection)."""
    return [
        (row.kind, row.payload["details"].get("status", ""))
        for row in RecruitingEvent.objects.filter(
            organization=connection.organization, payload__details__system="checkr"
        ).order_by("occurred_at", "event_id")
    ]


@pytest.mark.django_db
def test_candidate_created_links_the_checkr_candidate_to_the_ats_application(hook, checkr):
    body = fixture("candidate_created")

    response = post(hook, checkr, body, process=False)

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert bytes(delivery.body) == body
    assert (delivery.event_type, delivery.dedupe_key) == (
        "candidate.created",
        "6a1f0c2e4b0a1b2c3d4e5f60",
    )
    assert HEADER.lower() not in delivery.headers

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED
    started = RecruitingEvent.objects.get(payload__details__system="checkr")
    assert started.kind == "background_check.started"
    # Recorded on the ATS connection that owns the application: one application, not two.
    assert started.connection.vendor == "generic"
    assert Application.objects.filter(ats_id="app-9").count() == 1
    # The ATS's ids (from the mirror), and the Checkr candidate that links them.
    assert started.payload["application"] == {"id": "app-9", "candidate_id": "cand-4"}
    assert started.payload["job"] == {"id": "job-7"}
    assert started.payload["details"] == {
        "system": "checkr",
        "checkr_candidate_id": CHECKR_CANDIDATE,
        "step": "ordered",
        "derived": ["application.candidate_id", "job.id"],
    }
    stored = json.dumps(started.payload)
    for personal in ("Jane", "example.invalid", "1970-01-22", "XXX-XX", "+00 000"):
        assert personal not in stored


@pytest.mark.django_db
def test_a_suspended_report_is_an_integration_error_and_resuming_recovers_it(hook, checkr):
    for name in ("candidate_created", "report_created", "report_suspended"):
        assert post(hook, checkr, name).status_code == 200

    error = IntegrationError.objects.get()
    assert (error.system, error.application.ats_id, error.recovered_at) == ("checkr", "app-9", None)
    assert error.occurred_at.isoformat() == "2026-11-05T11:00:00+00:00"

    post(hook, checkr, "report_resumed")

    error.refresh_from_db()
    assert error.recovered_at.isoformat() == "2026-11-06T08:00:00+00:00"
    assert events(checkr) == [
        ("background_check.started", ""),
        ("background_check.started", "pending"),
        ("background_check.suspended", "suspended"),
        ("integration.error", "suspended"),
        ("integration.recovered", "pending"),
    ]
    error_event = RecruitingEvent.objects.get(kind="integration.error")
    assert error_event.payload["details"] == {
        "system": "checkr",
        "checkr_candidate_id": CHECKR_CANDIDATE,
        "report_id": "4722c07dd9a10c3985ae432a",
        "status": "suspended",
        "derived": ["application.id", "job.id"],
    }


@pytest.mark.django_db
def test_a_completed_report_after_an_error_also_recovers_it(hook, checkr):
    for name in ("candidate_created", "report_suspended", "report_completed"):
        post(hook, checkr, name)

    completed = RecruitingEvent.objects.get(kind="background_check.completed")
    assert completed.payload["details"]["result"] == "clear"
    assert completed.payload["details"]["adjudication"] == "engaged"
    assert IntegrationError.objects.get().recovered_at is not None
    assert RecruitingEvent.objects.filter(kind="integration.recovered").count() == 1


@pytest.mark.django_db
def test_a_completed_report_without_an_earlier_error_records_no_recovery(hook, checkr):
    for name in ("candidate_created", "report_created", "report_completed"):
        post(hook, checkr, name)

    assert [kind for kind, _ in events(checkr)] == [
        "background_check.started",
        "background_check.started",
        "background_check.completed",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name,kind",
    [
        ("report_disputed", "background_check.disputed"),
        ("report_canceled", "background_check.failed"),
    ],
)
def test_disputed_and_canceled_reports_are_check_events_and_integration_errors(
    hook, checkr, name, kind
):
    post(hook, checkr, "candidate_created")

    post(hook, checkr, name)

    assert [k for k, _ in events(checkr)][1:] == [kind, "integration.error"]
    assert IntegrationError.objects.filter(system="checkr").count() == 1


@pytest.mark.django_db
def test_a_report_of_an_unlinked_candidate_fails_and_is_replayed_once_linked(hook, checkr):
    response = post(hook, checkr, "report_suspended")

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith(
        f"data.object.candidate_id: Checkr candidate '{CHECKR_CANDIDATE}' is not linked"
    )
    assert IntegrationError.objects.count() == 0

    post(hook, checkr, "candidate_created")
    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert IntegrationError.objects.get().application.ats_id == "app-9"


@pytest.mark.django_db
def test_a_second_checkr_candidate_for_the_same_application_links_too(hook, checkr):
    post(hook, checkr, "candidate_created")
    recheck = json.loads(fixture("candidate_created"))
    recheck["id"] = "6a1f0c2e4b0a1b2c3d4e5f70"
    recheck["data"]["object"]["id"] = "f55bb394639f7e0f8e653205"
    report = json.loads(fixture("report_suspended"))
    report["data"]["object"]["candidate_id"] = "f55bb394639f7e0f8e653205"

    post(hook, checkr, json.dumps(recheck).encode())
    post(hook, checkr, json.dumps(report).encode())

    assert set(InboundDelivery.objects.values_list("state", flat=True)) == {"processed"}
    assert IntegrationError.objects.get().application.ats_id == "app-9"
    # One application: Checkr's events are recorded on the ATS connection that owns it.
    application = Application.objects.get(ats_id="app-9")
    assert application.connection.vendor != "checkr"
    assert set(application.events.values_list("kind", flat=True)) >= {
        "background_check.started",
        "integration.error",
    }


@pytest.mark.django_db
def test_a_candidate_without_custom_id_cannot_be_linked(hook, checkr):
    payload = json.loads(fixture("candidate_created"))
    del payload["data"]["object"]["custom_id"]

    post(hook, checkr, json.dumps(payload).encode())

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("data.object.custom_id: The Checkr candidate carries no")


@pytest.mark.django_db
def test_a_candidate_of_an_application_the_ats_has_not_sent_yet_waits_for_a_replay(
    hook, vendor_connection, connection, make_event
):
    checkr = vendor_connection("checkr", API_KEY)

    post(hook, checkr, "candidate_created")

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "No application 'app-9'" in delivery.error

    event_record(connection=connection, payload=make_event("application.created"))
    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    started = RecruitingEvent.objects.get(payload__details__system="checkr")
    assert started.payload["job"] == {"id": "job-7"}


@pytest.mark.django_db
def test_tampered_body_is_401_and_stores_nothing(hook, checkr):
    body = fixture("report_completed")
    headers = signed(API_KEY, body)

    response = hook(checkr, body.replace(b'"clear"', b'"consider"'), headers)

    assert response.status_code == 401
    assert response.json()["field"] == HEADER
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, {HEADER: "sha256=abc"}])
def test_missing_or_malformed_signature_is_401(hook, checkr, headers):
    response = hook(checkr, fixture("candidate_created"), headers)

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_signature_made_with_another_key_is_401(hook, checkr):
    response = post(hook, checkr, "candidate_created", secret="another-api-key")

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_second_active_key_is_accepted_during_rotation(hook, vendor_connection, ats_application):
    checkr = vendor_connection("checkr", "old-api-key-0123456789", "new-api-key-9876543210")

    response = post(hook, checkr, "candidate_created", secret="new-api-key-9876543210")

    assert response.status_code == 200
    assert InboundDelivery.objects.get().state == DeliveryState.PROCESSED


@pytest.mark.django_db
def test_basic_auth_credentials_of_the_webhook_url_are_not_stored(hook, checkr):
    body = fixture("candidate_created")

    hook(checkr, body, {**signed(API_KEY, body), "Authorization": "Basic dXNlcjpwYXNz"})

    assert "authorization" not in InboundDelivery.objects.get().headers


@pytest.mark.django_db
def test_an_unknown_event_type_is_answered_200_and_stored_as_ignored(hook, checkr):
    response = post(hook, checkr, "invitation_completed")

    assert response.status_code == 200
    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.filter(payload__details__system="checkr").exists()


@pytest.mark.django_db
def test_an_event_without_its_type_is_400_naming_it(hook, checkr):
    payload = json.loads(fixture("candidate_created"))
    del payload["type"]

    response = post(hook, checkr, json.dumps(payload).encode())

    assert response.status_code == 400
    assert response.json()["field"] == "type"


@pytest.mark.django_db
def test_a_redelivered_event_is_one_delivery_and_one_set_of_events(hook, checkr):
    post(hook, checkr, "candidate_created")

    first = post(hook, checkr, "report_suspended")
    again = post(hook, checkr, "report_suspended")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 2
    assert IntegrationError.objects.count() == 1
    assert RecruitingEvent.objects.filter(payload__details__system="checkr").count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_identical_deliveries_at_the_same_moment_store_one(vendor_connection):
    checkr = vendor_connection("checkr", API_KEY)
    body = fixture("report_completed")
    headers = signed(API_KEY, body)
    statuses = post_at_once(checkr, body, headers)

    assert statuses == [200, 200]
    assert InboundDelivery.objects.filter(connection=checkr).count() == 1


@pytest.mark.django_db
def test_another_organizations_connection_refuses_a_delivery_signed_for_this_one(
    hook, checkr, vendor_connection, other_org
):
    theirs = vendor_connection("checkr", "their-api-key-0123456789", organization=other_org)

    response = post(hook, theirs, "candidate_created")

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_link_never_reaches_another_organizations_applications(
    hook, checkr, vendor_connection, other_org
):
    theirs = vendor_connection("checkr", "their-api-key-0123456789", organization=other_org)

    post(hook, theirs, "candidate_created", secret="their-api-key-0123456789")
    post(hook, checkr, "candidate_created")

    failed = InboundDelivery.objects.get(connection=theirs)
    assert failed.state == DeliveryState.FAILED
    assert "No application 'app-9'" in failed.error
    assert not Application.objects.filter(organization=other_org).exists()
    assert InboundDelivery.objects.get(connection=checkr).state == DeliveryState.PROCESSED
