"""POST /api/v1/hooks/lever/<id>/: Lever's documented deliveries, signed in the body."""

import copy
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path

import pytest
from django.conf import settings

from failures.models import (
    Application,
    Candidate,
    ConnectionSecret,
    Job,
    RecruitingEvent,
    StageTransition,
)
from integrations.ats.lever import PLACEHOLDER_JOB_ID
from integrations.credentials import credentials_forget
from integrations.ingest import deliveries_process_pending, delivery_replay
from integrations.models import (
    ConnectionReason,
    ConnectionStage,
    DeliveryKey,
    DeliveryState,
    InboundDelivery,
)
from tests.integrations.vendors.races import post_at_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lever"
SECRET = "lever-signature-token-0123456789abcdef"
OTHER_SECRET = "lever-other-signature-token-fedcba98765"
OPPORTUNITY = "3410c8b9-5c31-4bab-b7e9-9f710206d647"
CONTACT = "05c248f9-ccb1-435f-bab5-0ec608aec263"
TO_STAGE = "7c2690d8-6308-4ed9-ae2a-cbfe7db26593"
FROM_STAGE = "992f01a9-ee19-41d2-ae79-1040701b195c"
REASON = "63dd55b2-a99f-4e7b-985f-22c7bf80ab42"

_tokens = itertools.count(1)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def now_ms() -> int:
    return int(time.time() * 1000)


def lever_signature(secret: str, token: str, triggered_at: object) -> str:
    plain = f"{token}{triggered_at}".encode()
    return hmac.new(secret.encode(), plain, hashlib.sha256).hexdigest()


def signed(
    payload: str | dict,
    *,
    secret: str = SECRET,
    token: str | None = None,
    triggered_at: int | None = None,
) -> bytes:
    """The fixture re-signed as Lever would send it now: a fresh 48-character token."""
    body = copy.deepcopy(fixture(payload) if isinstance(payload, str) else payload)
    body["token"] = token or f"{next(_tokens):048x}"
    body["triggeredAt"] = now_ms() if triggered_at is None else triggered_at
    for key in ("toArchived", "fromArchived"):
        if isinstance(body.get("data", {}).get(key), dict):  # archived as it was sent
            body["data"][key]["archivedAt"] = body["triggeredAt"]
    body["signature"] = lever_signature(secret, body["token"], body["triggeredAt"])
    return json.dumps(body).encode()


@pytest.fixture
def lever(vendor_connection):
    connection = vendor_connection("lever", SECRET)
    ConnectionStage.objects.create(
        connection=connection, ats_stage=TO_STAGE, stage_name="On-site", category="interviewing"
    )
    ConnectionStage.objects.create(
        connection=connection, ats_stage=FROM_STAGE, stage_name="Phone screen", category="screening"
    )
    return connection


@pytest.fixture
def deliver(hook, lever):
    """deliver(fixture name | dict | signed bytes, secret=..., connection=...) -> response."""

    def send(payload: str | dict | bytes, *, connection=None, process: bool = True, **signing):
        body = payload if isinstance(payload, bytes) else signed(payload, **signing)
        return hook(connection or lever, body, {"User-Agent": "Lever-Webhooks"}, process=process)

    return send


def events(kind: str | None = None) -> list[RecruitingEvent]:
    rows = RecruitingEvent.objects.order_by("pk")
    return list(rows.filter(kind=kind) if kind else rows)


# --- A valid delivery from the documented example ------------------------------------------


@pytest.mark.django_db
def test_documented_stage_change_is_answered_200_stored_once_and_mapped(org, lever, deliver):
    body = signed("candidate_stage_change")
    token = json.loads(body)["token"]

    response = deliver(body, process=False)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    delivery = InboundDelivery.objects.get()
    assert (delivery.connection, delivery.organization) == (lever, org)
    assert (delivery.vendor, delivery.event_type) == ("lever", "candidateStageChange")
    assert delivery.dedupe_key == token
    assert bytes(delivery.body) == body
    assert not any("signature" in name for name in delivery.headers)
    assert delivery.verified_with == "HMAC of token + triggeredAt, key 'primary'"

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED, delivery.error
    (event,) = events()
    assert event.event_id == f"lever:{token}"
    assert event.kind == "application.stage_changed"
    assert abs(event.occurred_at.timestamp() * 1000 - json.loads(body)["triggeredAt"]) < 1
    assert event.payload["stage"] == {"name": "On-site", "category": "interviewing"}
    assert event.payload["details"]["previous_stage"] == {
        "id": FROM_STAGE,
        "name": "Phone screen",
        "category": "screening",
    }
    assert event.payload["details"]["derived"] == ["job.id"]
    application = Application.objects.get()
    assert application.ats_id == OPPORTUNITY
    assert application.candidate.ats_id == CONTACT
    assert (application.current_stage, application.stage_category) == ("On-site", "interviewing")
    assert application.job.ats_id == PLACEHOLDER_JOB_ID


@pytest.mark.django_db
def test_a_known_opportunity_keeps_its_job_from_the_mirror(lever, deliver):
    created = fixture("application_created")
    created["data"]["postingId"] = "posting-42"
    deliver(created)
    assert Application.objects.get().job.ats_id == "posting-42"

    deliver("candidate_stage_change")  # Lever sends no posting here

    assert Job.objects.count() == 1
    stage_change = events("application.stage_changed")[0]
    assert stage_change.payload["job"] == {"id": "posting-42"}
    assert stage_change.payload["details"]["derived"] == ["job.id"]
    assert Application.objects.get().current_stage == "On-site"


@pytest.mark.django_db
def test_an_application_without_a_posting_gets_the_connections_placeholder_job(lever, deliver):
    assert deliver("application_created").status_code == 200

    (event,) = events("application.created")
    assert event.payload["job"]["id"] == PLACEHOLDER_JOB_ID
    assert event.payload["details"]["derived"] == ["job.id"]
    assert event.payload["details"]["lever_application_id"] == (
        "6ffe4153-60bb-4e30-bfbe-bd9b9775879c"
    )
    application = Application.objects.get()
    assert (application.job.ats_id, application.job.connection) == (PLACEHOLDER_JOB_ID, lever)
    assert application.current_stage == ""


@pytest.mark.django_db
def test_without_a_contact_id_the_deprecated_candidate_id_names_the_candidate(lever, deliver):
    payload = fixture("candidate_hired")
    del payload["data"]["contactId"]

    deliver(payload)

    assert Application.objects.get().candidate.ats_id == payload["data"]["candidateId"]


@pytest.mark.django_db
def test_a_known_opportunity_keeps_its_candidate(lever, deliver):
    deliver("candidate_stage_change")
    payload = fixture("candidate_hired")
    payload["data"]["contactId"] = "another-contact"

    deliver(payload)

    (hired,) = events("application.hired")
    assert hired.payload["application"]["candidate_id"] == CONTACT
    assert "application.candidate_id" in hired.payload["details"]["derived"]
    assert Candidate.objects.count() == 1


@pytest.mark.django_db
def test_an_archive_reason_mapped_as_withdrawn_is_a_withdrawal(lever, deliver):
    ConnectionReason.objects.create(
        connection=lever, ats_reason=REASON, reason_name="Withdrew", outcome="withdrawn"
    )
    deliver("candidate_stage_change")

    body = signed("candidate_archive_change")
    archived_at = json.loads(body)["data"]["toArchived"]["archivedAt"]

    deliver(body)

    (event,) = events("application.withdrawn")
    assert event.occurred_at.timestamp() * 1000 == pytest.approx(archived_at)
    assert event.payload["details"]["archive_reason_id"] == REASON
    assert event.payload["details"]["reason"] == "Withdrew"
    assert "reason.outcome" not in event.payload["details"]["derived"]
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_an_unmapped_archive_reason_defaults_to_rejected_and_says_so(lever, deliver):
    deliver("candidate_stage_change")

    deliver("candidate_archive_change")

    (event,) = events("application.rejected")
    assert event.payload["details"]["outcome"] == "rejected"
    assert "reason.outcome" in event.payload["details"]["derived"]
    assert Application.objects.get().status == "rejected"


@pytest.mark.django_db
def test_an_archived_at_later_than_the_signed_triggered_at_is_not_believed(lever, deliver):
    body = json.loads(signed("candidate_archive_change"))
    body["data"]["toArchived"]["archivedAt"] = 10**18  # unsigned, absurd

    assert deliver(json.dumps(body).encode()).status_code == 200

    (event,) = events("application.rejected")
    assert event.occurred_at.timestamp() * 1000 == pytest.approx(body["triggeredAt"])


@pytest.mark.django_db
def test_an_archive_reason_mapped_as_declined_is_an_offer_decline_and_a_withdrawal(lever, deliver):
    ConnectionReason.objects.create(
        connection=lever, ats_reason=REASON, reason_name="Declined offer", outcome="declined"
    )
    deliver("candidate_stage_change")
    body = signed("candidate_archive_change")
    token = json.loads(body)["token"]

    deliver(body)

    declined, withdrawn = events("offer.declined"), events("application.withdrawn")
    assert [e.event_id for e in declined + withdrawn] == [
        f"lever:{token}:offer.declined",
        f"lever:{token}:application.withdrawn",
    ]
    assert declined[0].payload["details"]["reason"] == "Declined offer"
    assert Application.objects.get().status == "withdrawn"


@pytest.mark.django_db
def test_unarchiving_reopens_into_the_last_pipeline_stage(lever, deliver):
    deliver("candidate_stage_change")
    deliver("candidate_archive_change")

    deliver("candidate_unarchived")

    reopened = events("application.stage_changed")[-1]
    assert reopened.payload["details"]["reopened"] is True
    assert "stage.name" in reopened.payload["details"]["derived"]
    application = Application.objects.get()
    assert (application.status, application.current_stage) == ("active", "On-site")
    assert application.closed_at is None


@pytest.mark.django_db
def test_unarchiving_an_unknown_opportunity_records_nothing(lever, deliver):
    assert deliver("candidate_unarchived").status_code == 200

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_candidate_hired_closes_the_application_as_hired(lever, deliver):
    deliver("candidate_stage_change")

    deliver("candidate_hired")

    assert len(events("application.hired")) == 1
    assert Application.objects.get().status == "hired"


@pytest.mark.django_db
def test_candidate_deleted_is_stored_and_ignored(lever, deliver):
    assert deliver("candidate_deleted").status_code == 200

    assert InboundDelivery.objects.get().state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_the_settings_pages_test_delivery_is_200_and_creates_nothing(lever, deliver):
    response = deliver("test_delivery")

    assert response.status_code == 200
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.IGNORED
    assert not RecruitingEvent.objects.exists()
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_an_unknown_event_type_is_200_and_stored_as_ignored(lever, deliver):
    payload = fixture("candidate_hired")
    payload["event"] = "somethingNew"

    assert deliver(payload).status_code == 200

    delivery = InboundDelivery.objects.get()
    assert (delivery.event_type, delivery.state) == ("somethingNew", DeliveryState.IGNORED)


# --- Signatures, the replay window and one-time tokens --------------------------------------


@pytest.mark.parametrize(
    "field",
    ["token", "triggeredAt", "signature"],
)
@pytest.mark.django_db
def test_a_tampered_signed_field_is_401(lever, deliver, field):
    body = json.loads(signed("candidate_stage_change"))
    if field == "triggeredAt":
        body[field] += 1
    else:
        body[field] = body[field][:-1] + ("0" if body[field][-1] != "0" else "1")

    response = deliver(json.dumps(body).encode())

    assert response.status_code == 401
    assert response.json()["field"] == "signature"
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_a_missing_signature_is_401(lever, deliver):
    body = json.loads(signed("candidate_stage_change"))
    del body["signature"]

    assert deliver(json.dumps(body).encode()).status_code == 401
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_a_wrong_key_is_401(lever, deliver):
    assert deliver("candidate_stage_change", secret=OTHER_SECRET).status_code == 401
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_a_second_active_key_is_accepted(vendor_connection, deliver):
    rotating = vendor_connection("lever", SECRET, OTHER_SECRET)

    response = deliver("candidate_hired", connection=rotating, secret=OTHER_SECRET)

    assert response.status_code == 200
    assert InboundDelivery.objects.get().verified_with.endswith("key 'key-2'")


@pytest.mark.parametrize("offset_seconds", [-1, +1])
@pytest.mark.django_db
def test_a_triggered_at_outside_the_replay_window_is_401(lever, deliver, offset_seconds):
    window = settings.FAILTRACK_REPLAY_WINDOW_SECONDS
    triggered_at = now_ms() + offset_seconds * (window + 60) * 1000

    response = deliver("candidate_stage_change", triggered_at=triggered_at)

    assert response.status_code == 401
    assert "Stale triggeredAt" in response.json()["error"]
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_a_triggered_at_inside_the_replay_window_is_accepted(lever, deliver):
    window = settings.FAILTRACK_REPLAY_WINDOW_SECONDS
    triggered_at = now_ms() - (window - 30) * 1000

    assert deliver("candidate_stage_change", triggered_at=triggered_at).status_code == 200


@pytest.mark.django_db
def test_the_same_token_and_body_again_is_a_duplicate(lever, deliver):
    body = signed("candidate_stage_change")

    first, second = deliver(body), deliver(body)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_used_token_with_another_body_is_401_and_changes_nothing(lever, deliver):
    original = signed("candidate_stage_change")
    deliver(original)
    # Lever does not sign `data`: a replay could swap it under the captured signature.
    replay = json.loads(original)
    replay["data"]["toStageId"] = FROM_STAGE

    response = deliver(json.dumps(replay).encode())

    assert response.status_code == 401
    assert response.json()["error"] == "Signature token already used."
    assert InboundDelivery.objects.count() == 1
    assert bytes(InboundDelivery.objects.get().body) == original
    assert Application.objects.get().current_stage == "On-site"


@pytest.mark.django_db
def test_each_event_type_verifies_with_its_own_signature_token(vendor_connection, deliver):
    per_type = vendor_connection("lever")
    per_type.secrets.update(is_active=False)  # no key for every event type
    for label, event_type, value in [
        ("stage change", "candidateStageChange", SECRET),
        ("hired", "candidateHired", OTHER_SECRET),
    ]:
        row = ConnectionSecret(connection=per_type, label=label, event_type=event_type)
        row.set_value(value)
        row.save()
    credentials_forget()
    ConnectionStage.objects.create(connection=per_type, ats_stage=TO_STAGE, category="interviewing")

    right = deliver("candidate_stage_change", connection=per_type, secret=SECRET)
    crossed = deliver("candidate_stage_change", connection=per_type, secret=OTHER_SECRET)
    hired = deliver("candidate_hired", connection=per_type, secret=OTHER_SECRET)
    hired_crossed = deliver("candidate_hired", connection=per_type, secret=SECRET)

    assert [r.status_code for r in (right, crossed, hired, hired_crossed)] == [200, 401, 200, 401]
    assert sorted(InboundDelivery.objects.values_list("verified_with", flat=True)) == [
        "HMAC of token + triggeredAt, key 'hired'",
        "HMAC of token + triggeredAt, key 'stage change'",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"token": None}, "token"),
        ({"event": ""}, "event"),
        ({"triggeredAt": "yesterday"}, "triggeredAt"),
        ({"data": ["not", "an", "object"]}, "data"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_envelope_is_400_naming_the_field(lever, deliver, change, field):
    body = json.loads(signed("candidate_stage_change"))
    body.update(change)

    response = deliver(json.dumps(body).encode())

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert not InboundDelivery.objects.exists()


# --- Concurrency and tenants ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_deliveries_store_one(org, vendor_connection):
    lever = vendor_connection("lever", SECRET)
    ConnectionStage.objects.create(connection=lever, ats_stage=TO_STAGE, category="interviewing")
    body = signed("candidate_stage_change")
    statuses = post_at_once(lever, body)

    assert statuses == [200, 200]
    assert InboundDelivery.objects.count() == 1
    assert DeliveryKey.objects.filter(dedupe_key=json.loads(body)["token"]).count() == 1
    deliveries_process_pending()
    assert RecruitingEvent.objects.count() == 1
    assert StageTransition.objects.count() == 1


@pytest.mark.django_db
def test_another_organizations_connection_refuses_a_delivery_signed_for_ours(
    other_org, vendor_connection, deliver
):
    theirs = vendor_connection("lever", OTHER_SECRET, organization=other_org)

    response = deliver("candidate_hired", connection=theirs, secret=SECRET)

    assert response.status_code == 401
    assert not InboundDelivery.objects.exists()


@pytest.mark.django_db
def test_identical_lever_ids_in_two_organizations_stay_apart(
    org, other_org, lever, vendor_connection, deliver
):
    theirs = vendor_connection("lever", OTHER_SECRET, organization=other_org)
    ConnectionStage.objects.create(connection=theirs, ats_stage=TO_STAGE, category="screening")

    deliver("candidate_stage_change")
    deliver("candidate_stage_change", connection=theirs, secret=OTHER_SECRET)
    deliver("candidate_hired")  # ours only

    ours = Application.objects.get(organization=org)
    other = Application.objects.get(organization=other_org)
    assert ours.ats_id == other.ats_id == OPPORTUNITY
    assert (ours.status, other.status) == ("hired", "active")
    # Each connection's own stage mapping applied.
    assert other.stage_category == "screening"
    assert other.candidate.organization == other_org
    assert other.job.organization == other_org
    assert other.job.connection == theirs
    assert Candidate.objects.count() == Job.objects.count() == 2


# --- Mapping failures -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unmapped_stage_id_fails_clearly_and_is_processed_after_the_mapping(lever, deliver):
    payload = fixture("candidate_stage_change")
    payload["data"]["toStageId"] = "lead-new"

    assert deliver(payload).status_code == 200

    failed = InboundDelivery.objects.get()
    assert failed.state == DeliveryState.FAILED
    assert failed.error.startswith("data.toStageId: Lever stage 'lead-new' is not mapped")
    assert not RecruitingEvent.objects.exists()

    ConnectionStage.objects.create(
        connection=lever, ats_stage="lead-new", stage_name="New lead", category="sourcing"
    )
    assert delivery_replay(failed) == DeliveryState.PROCESSED
    application = Application.objects.get()
    assert (application.current_stage, application.stage_category) == ("New lead", "sourcing")
