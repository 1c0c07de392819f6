"""SmartRecruiters callbacks through the hook: handshake, v1 signatures, 202, ids-only bodies."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.utils.datastructures import CaseInsensitiveMapping

from failures.models import Application, ConnectionSecret, Failure, RecruitingEvent
from integrations.ats.base import Inbound, SigningKey
from integrations.ats.smartrecruiters import SmartRecruitersAdapter
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import ConnectionStage, DeliveryState, InboundDelivery
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "smartrecruiters"
SECRET = "sr-subscription-secret-0123456789"
OTHER_SECRET = "sr-other-secret-9876543210"
JOB_ID = "743999600000001"
CANDIDATE_ID = "3f2a9c10-0001-4000-8000-000000000001"
APP_ID = f"{CANDIDATE_ID}:{JOB_ID}"
SIGNED = ("event-id", "event-name", "event-version", "link")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def v1(secret: str, timestamp: str, body: bytes, headers: dict) -> str:
    parts = [timestamp.encode(), body, *(headers.get(h, "").encode() for h in SIGNED)]
    return hmac.new(secret.encode(), b".".join(parts), hashlib.sha256).hexdigest()


def signed(
    name: str,
    *,
    secrets: tuple[str, ...] = (SECRET,),
    timestamp: int | None = None,
    body: dict | bytes | None = None,
    **overrides: str,
) -> tuple[bytes, dict[str, str]]:
    """A fixture's body and headers, signed now (or at `timestamp`) with each secret."""
    data = fixture(name)
    raw = body if isinstance(body, bytes) else json.dumps(body or data["body"]).encode()
    headers = {**data["headers"], **overrides}
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    segments = ";".join(f"v1={v1(secret, stamp, raw, headers)}" for secret in secrets)
    return raw, {
        **headers,
        "smartrecruiters-timestamp": stamp,
        "smartrecruiters-signature": segments,
    }


@pytest.fixture
def sr(vendor_connection):
    return vendor_connection("smartrecruiters", SECRET)


@pytest.fixture
def deliver(hook, sr):
    def post(name: str, *, target=None, process: bool = True, **kwargs):
        body, headers = signed(name, **kwargs)
        return hook(target or sr, body, headers, process=process)

    return post


def kinds() -> list[str]:
    return list(RecruitingEvent.objects.order_by("pk").values_list("kind", flat=True))


# --- activation handshake -----------------------------------------------------------------


@pytest.mark.django_db
def test_activation_handshake_echoes_x_hook_secret_with_200_and_stores_nothing(sr, hook):
    secrets_before = ConnectionSecret.objects.count()

    response = hook(sr, {}, {"X-Hook-Secret": "4jn8fs9011jj8"})

    assert response.status_code == 200
    assert response["X-Hook-Secret"] == "4jn8fs9011jj8"
    assert InboundDelivery.objects.count() == 0
    assert RecruitingEvent.objects.count() == 0
    assert ConnectionSecret.objects.count() == secrets_before  # not a signing key


@pytest.mark.django_db
def test_handshake_with_an_unusable_secret_is_400(sr, hook):
    response = hook(sr, {}, {"X-Hook-Secret": "x" * 501})

    assert response.status_code == 400
    assert response.json()["field"] == "X-Hook-Secret"


# --- the documented signature example -----------------------------------------------------


def test_the_documented_v1_example_verifies_and_a_day_later_is_stale():
    example = fixture("signature_example")
    inbound = Inbound(
        headers=CaseInsensitiveMapping(example["headers"]),
        body=example["body"].encode(),
        payload=json.loads(example["body"]),
        received_at=datetime.now(UTC),
    )
    keys = [SigningKey(label="primary", value=example["secret"])]
    adapter = SmartRecruitersAdapter()

    at_the_time = adapter.verify(inbound, keys, datetime.fromtimestamp(1574080897 + 60, UTC))
    a_day_later = adapter.verify(inbound, keys, datetime.fromtimestamp(1574080897 + 86400, UTC))

    assert at_the_time.ok, at_the_time.reason
    assert not a_day_later.ok
    assert "Stale" in a_day_later.reason


@pytest.mark.django_db
def test_the_documented_example_goes_through_the_hook_with_202(vendor_connection, hook, settings):
    settings.FAILTRACK_REPLAY_WINDOW_SECONDS = 10**10  # the example was signed in 2019
    example = fixture("signature_example")
    connection = vendor_connection("smartrecruiters", example["secret"])

    response = hook(connection, example["body"].encode(), example["headers"])

    assert response.status_code == 202, response.content
    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.dedupe_key) == ("application.created", "123")
    assert delivery.state == DeliveryState.PROCESSED, delivery.error
    assert Application.objects.get().ats_id == "cid:jid"  # snake_case ids accepted too


# --- valid deliveries ---------------------------------------------------------------------


@pytest.mark.django_db
def test_application_created_is_answered_202_stored_without_credentials_and_recorded(sr, deliver):
    response = deliver("application_created", process=False)

    assert response.status_code == 202, response.content
    delivery = InboundDelivery.objects.get()
    assert delivery.dedupe_key == "0d1f5e2a-0001-4c3b-9a00-000000000001"
    assert "smartrecruiters-signature" not in delivery.headers
    assert delivery.headers["event-name"] == "application.created"
    assert delivery.headers["link"].startswith("<https://api.smartrecruiters.com/")

    deliveries_process_pending()

    event = RecruitingEvent.objects.get()
    assert (
        event.event_id == "smartrecruiters:0d1f5e2a-0001-4c3b-9a00-000000000001:application.created"
    )
    assert event.payload["details"]["derived"] == ["occurred_at"]
    application = Application.objects.get()
    assert (application.ats_id, application.connection) == (APP_ID, sr)
    assert application.candidate.ats_id == CANDIDATE_ID
    assert application.job.ats_id == JOB_ID


@pytest.mark.django_db
def test_status_update_moves_the_application_and_derives_the_previous_stage(deliver):
    deliver("application_created")
    deliver(
        "application_status_updated",
        body={"jobId": JOB_ID, "candidateId": CANDIDATE_ID, "status": "NEW"},
        **{"event-id": "0d1f5e2a-00aa-4c3b-9a00-0000000000aa"},
    )

    deliver("application_status_updated")

    moved = RecruitingEvent.objects.filter(kind="application.stage_changed").order_by("pk")
    assert [e.payload["stage"] for e in moved] == [
        {"name": "NEW", "category": "screening"},
        {"name": "INTERVIEW / Onsite", "category": "interviewing"},
    ]
    assert "stage.category" in moved[0].payload["details"]["derived"]  # status default
    assert moved[1].payload["details"]["previous_stage"] == "NEW"
    assert "stage.previous" in moved[1].payload["details"]["derived"]
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == (
        "INTERVIEW / Onsite",
        "interviewing",
    )


@pytest.mark.django_db
def test_rejected_status_closes_the_application(deliver):
    deliver("application_created")

    deliver("application_status_updated_rejected")

    assert kinds() == ["application.created", "application.rejected"]
    assert Application.objects.get().status == "rejected"


@pytest.mark.django_db
def test_declined_offer_is_an_offer_declined_failure(deliver):
    deliver("application_created")

    deliver("offer_updated")

    assert kinds() == ["application.created", "offer.declined"]
    declined = RecruitingEvent.objects.get(kind="offer.declined")
    assert declined.payload["details"]["offer_id"] == "0ff3a000-0001-4000-8000-000000000001"
    assert Failure.objects.filter(definition__code="OFR-DECLINED").count() == 1


@pytest.mark.django_db
def test_job_created(deliver):
    deliver("job_created")

    event = RecruitingEvent.objects.get()
    assert (event.kind, event.payload["job"]) == ("job.created", {"id": "743999600000002"})


# --- signatures ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_tampered_body_is_401(sr, hook):
    body, headers = signed("application_created")

    response = hook(sr, body.replace(b"7439996", b"7439997"), headers)

    assert response.status_code == 401
    assert response.json()["field"] == "smartrecruiters-signature"
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_a_changed_signed_header_is_401(sr, hook):
    body, headers = signed("application_created")
    headers["event-name"] = "job.created"

    assert hook(sr, body, headers).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_wrong_key_is_401(deliver):
    assert deliver("application_created", secrets=(OTHER_SECRET,)).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_any_verifying_segment_and_a_second_active_key_are_accepted(vendor_connection, deliver):
    rotating = vendor_connection("smartrecruiters", SECRET, OTHER_SECRET)

    response = deliver(
        "application_created", target=rotating, secrets=("not-our-key-at-all", OTHER_SECRET)
    )

    assert response.status_code == 202, response.content
    assert "key-2" in InboundDelivery.objects.get().verified_with


@pytest.mark.django_db
def test_stale_timestamp_is_401_even_with_a_valid_signature(deliver, settings):
    stale = int(time.time()) - settings.FAILTRACK_REPLAY_WINDOW_SECONDS - 60

    response = deliver("application_created", timestamp=stale)

    assert response.status_code == 401
    assert "Stale" in response.json()["error"]
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_missing_timestamp_or_signature_is_401(sr, hook):
    body, headers = signed("application_created")
    no_timestamp = {k: v for k, v in headers.items() if k != "smartrecruiters-timestamp"}
    no_signature = {k: v for k, v in headers.items() if k != "smartrecruiters-signature"}

    assert hook(sr, body, no_timestamp).status_code == 401
    assert hook(sr, body, no_signature).status_code == 401


# --- unknown, bad input, exactly once -----------------------------------------------------


@pytest.mark.django_db
def test_unknown_event_is_answered_202_and_stored_as_ignored(deliver):
    response = deliver("candidate_updated")

    assert response.status_code == 202
    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert RecruitingEvent.objects.count() == 0


@pytest.mark.django_db
def test_missing_event_id_is_400_naming_the_header(sr, hook):
    body, headers = signed("application_created")
    del headers["event-id"]

    response = hook(sr, body, headers)

    assert response.status_code == 400
    assert response.json()["field"] == "event-id"


@pytest.mark.django_db
def test_a_retry_is_a_duplicate_answered_202(deliver):
    first = deliver("application_created")
    retry = deliver("application_created")

    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_one_delivery(sr):
    body, headers = signed("application_created")
    statuses = post_at_once(sr, body, headers)
    deliveries_process_pending()

    assert statuses == [202, 202]
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


# --- tenancy ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_connection_refuses_the_delivery(
    vendor_connection, other_org, deliver
):
    theirs = vendor_connection("smartrecruiters", OTHER_SECRET, organization=other_org)

    assert deliver("application_created", target=theirs).status_code == 401
    assert InboundDelivery.objects.count() == 0


@pytest.mark.django_db
def test_identical_ids_in_two_organizations_stay_apart(org, other_org, vendor_connection, deliver):
    ours = vendor_connection("smartrecruiters", SECRET)
    theirs = vendor_connection("smartrecruiters", OTHER_SECRET, organization=other_org)

    deliver("application_created", target=ours)
    deliver("application_created", target=theirs, secrets=(OTHER_SECRET,))
    deliver("application_status_updated_rejected", target=theirs, secrets=(OTHER_SECRET,))

    assert Application.objects.get(organization=org).status == "active"
    assert Application.objects.get(organization=other_org).status == "rejected"


# --- failures and replay ------------------------------------------------------------------


@pytest.mark.django_db
def test_status_update_without_a_status_fails_naming_it(deliver):
    deliver(
        "application_status_updated",
        body={"jobId": JOB_ID, "candidateId": CANDIDATE_ID},
    )

    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.error.startswith("status:")


@pytest.mark.django_db
def test_unmapped_status_fails_and_is_processed_after_a_mapping(sr, deliver):
    deliver(
        "application_status_updated",
        body={"jobId": JOB_ID, "candidateId": CANDIDATE_ID, "status": "ON_HOLD"},
    )
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "'ON_HOLD' is not mapped" in delivery.error

    ConnectionStage.objects.create(connection=sr, ats_stage="ON_HOLD", category="screening")

    assert delivery_replay(delivery) == DeliveryState.PROCESSED
    assert Application.objects.get().current_stage == "ON_HOLD"


@pytest.mark.django_db
def test_a_later_callback_repeating_an_offers_status_records_it_once(deliver):
    deliver("application_created")

    deliver("offer_updated")
    deliver("offer_updated", **{"event-id": "0d1f5e2a-0044-4c3b-9a00-000000000044"})

    assert InboundDelivery.objects.filter(event_type="offer.updated").count() == 2
    assert RecruitingEvent.objects.filter(kind="offer.declined").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["", "text/plain", "application/json"])
def test_activation_with_an_empty_body_or_any_content_type_is_echoed(
    client, vendor_connection, content_type
):
    connection = vendor_connection("smartrecruiters", "sr-subscription-key-1")

    response = client.post(
        f"/api/v1/hooks/smartrecruiters/{connection.pk}/",
        data=b"",
        content_type=content_type,
        headers={"X-Hook-Secret": "activation-secret-42"},
    )

    assert response.status_code == 200
    assert response.headers["X-Hook-Secret"] == "activation-secret-42"
    assert not InboundDelivery.objects.exists()
