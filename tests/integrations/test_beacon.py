"""Beacons from ATS pages: token in the body, origin checked, one canonical event each."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from failures.choices import MembershipRole
from failures.models import Application, RecruitingEvent
from integrations import beacon as beacon_module
from integrations.beacon import tracking_keys_forget
from integrations.ingest import deliveries_process_pending
from integrations.models import DeliveryState, InboundDelivery, TrackingKey
from integrations.services import origin_normalize, tracking_key_create, tracking_key_revoke
from tests.factories import ApplicationFactory, AtsConnectionFactory, JobFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://ats.example.com"
URL = "/api/v1/beacon/"


@pytest.fixture(autouse=True)
def _fresh_keys():
    tracking_keys_forget()
    yield
    tracking_keys_forget()


@pytest.fixture
def tracking_key(connection):
    key, token = tracking_key_create(
        actor=None, connection=connection, allowed_origins=[ORIGIN], label="careers"
    )
    return key, token


def beacon_body(token: str, **overrides) -> dict:
    body = {
        "token": token,
        "id": "7f3c2a9e-view-0001",
        "kind": "application.viewed",
        "application_id": "app-1",
        "job_id": "job-1",
        "actor": {"id": "user-42", "role": "recruiter"},
        "duration_ms": 5300,
    }
    body.update(overrides)
    return body


@pytest.fixture
def send(client):
    """send(body, origin=..., content_type=...) posts like navigator.sendBeacon does."""

    def post(body, *, origin: str | None = ORIGIN, content_type: str = "text/plain;charset=UTF-8"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Origin": origin} if origin is not None else {}
        return client.post(URL, data=raw, content_type=content_type, headers=headers)

    return post


# --- Accepted --------------------------------------------------------------------------------


def test_a_valid_beacon_is_stored_then_recorded_in_the_key_organization(
    send, tracking_key, connection, org
):
    key, token = tracking_key

    response = send(beacon_body(token))

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    delivery = InboundDelivery.objects.get()
    assert delivery.connection == connection and delivery.organization == org
    assert token.encode() not in bytes(delivery.body)  # the token is never stored
    assert delivery.headers == {"origin": ORIGIN, "content-type": "text/plain"}

    deliveries_process_pending()

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED
    event = RecruitingEvent.objects.get()
    assert event.organization == org and event.connection == connection
    assert event.kind == "application.viewed"
    assert event.event_id == "beacon:7f3c2a9e-view-0001"
    assert event.payload["actor"] == {"id": "user-42", "role": "recruiter"}
    assert event.payload["details"]["application_id"] == "app-1"
    assert event.payload["details"]["duration_ms"] == 5300
    assert event.payload["details"]["tracking_key"] == key.token_prefix
    assert "token" not in json.dumps(event.payload).replace("tracking_key", "")


def test_a_beacon_on_a_vendor_connection_is_recorded_there(send, org):
    # Beacons carry canonical events: the generic mapping records them whatever the vendor
    greenhouse = AtsConnectionFactory(organization=org, vendor="greenhouse")
    _, token = tracking_key_create(actor=None, connection=greenhouse, allowed_origins=[ORIGIN])

    response = send(beacon_body(token))
    deliveries_process_pending()

    assert response.status_code == 202
    event = RecruitingEvent.objects.get()
    assert event.connection == greenhouse and event.kind == "application.viewed"


def test_application_json_is_accepted_too(send, tracking_key):
    _, token = tracking_key

    response = send(beacon_body(token), content_type="application/json")

    assert response.status_code == 202


def test_the_same_view_sent_twice_is_recorded_once(send, tracking_key):
    _, token = tracking_key

    first = send(beacon_body(token))
    second = send(beacon_body(token))
    deliveries_process_pending()

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["status"] == "duplicate"
    assert InboundDelivery.objects.count() == 1
    assert RecruitingEvent.objects.count() == 1


def test_a_view_is_not_a_recruiter_action(send, tracking_key, connection):
    # Given an application the mirror knows, last touched by a recruiter long ago
    long_ago = timezone.now() - timedelta(days=9)
    application = ApplicationFactory(
        job=JobFactory(organization=connection.organization, connection=connection),
        ats_id="app-1",
        last_recruiter_action_at=long_ago,
        last_event_at=long_ago,
    )
    before = (application.last_recruiter_action_at, application.last_event_at)
    _, token = tracking_key

    # When a recruiter views it (and does not advance it)
    send(beacon_body(token))
    deliveries_process_pending()

    # Then the view is logged, but the inactivity and drop-off clocks keep running
    application.refresh_from_db()
    assert RecruitingEvent.objects.filter(kind="application.viewed").count() == 1
    assert (application.last_recruiter_action_at, application.last_event_at) == before
    assert application.transitions.count() == 0


# --- Refused: token ----------------------------------------------------------------------------


def test_a_missing_token_is_401(send):
    body = beacon_body("x")
    del body["token"]

    response = send(body)

    assert response.status_code == 401
    assert response.json()["field"] == "token"
    assert InboundDelivery.objects.count() == 0


def test_an_unknown_token_is_401(send, tracking_key):
    response = send(beacon_body("ftk_not-a-real-token"))

    assert response.status_code == 401
    assert response.json() == {"error": "Unknown tracking key.", "field": "token"}
    assert InboundDelivery.objects.count() == 0


def test_a_revoked_key_is_403(send, tracking_key):
    key, token = tracking_key
    assert send(beacon_body(token, id="before-revoke-1")).status_code == 202

    tracking_key_revoke(actor=None, key=key)
    response = send(beacon_body(token, id="after-revoke-1"))

    assert response.status_code == 403
    assert response.json()["field"] == "token"
    assert InboundDelivery.objects.count() == 1


def test_a_key_of_an_inactive_connection_is_403(send, tracking_key, connection):
    _, token = tracking_key
    connection.is_active = False
    connection.save(update_fields=["is_active"])

    response = send(beacon_body(token))

    assert response.status_code == 403
    assert InboundDelivery.objects.count() == 0


# --- Refused: origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://ats.example.com",  # same host, other scheme
        "https://ats.example.com:8443",  # other port
        "https://ats.example.com.evil.net",
        "null",  # sandboxed frames and file:// pages
    ],
)
def test_another_origin_is_403(send, tracking_key, origin):
    _, token = tracking_key

    response = send(beacon_body(token), origin=origin)

    assert response.status_code == 403
    assert response.json()["field"] == "Origin"
    assert "Access-Control-Allow-Origin" not in response
    assert InboundDelivery.objects.count() == 0


def test_a_missing_origin_is_403(send, tracking_key):
    _, token = tracking_key

    response = send(beacon_body(token), origin=None)

    assert response.status_code == 403
    assert response.json()["field"] == "Origin"
    assert InboundDelivery.objects.count() == 0


def test_preflight_is_answered_for_configured_origins_only(client, tracking_key):
    allowed = client.options(
        URL, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    refused = client.options(
        URL, headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
    )

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    assert allowed["Access-Control-Allow-Headers"] == "Content-Type"
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


# --- Refused: size, type, shape -----------------------------------------------------------------


def test_an_oversize_beacon_is_413(send, tracking_key):
    _, token = tracking_key
    body = json.dumps(beacon_body(token)).encode()
    padded = body[:-1] + b', "pad": "' + b"x" * beacon_module.MAX_BYTES + b'"}'

    response = send(padded)

    assert response.status_code == 413
    assert InboundDelivery.objects.count() == 0


def test_another_content_type_is_415(send, tracking_key):
    _, token = tracking_key

    response = send(beacon_body(token), content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


def test_malformed_json_is_400_naming_the_body(send, tracking_key):
    response = send(b'{"token": "ftk_', content_type="text/plain")

    assert response.status_code == 400
    assert response.json()["field"] == "body"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"application_id": ""}, "application_id"),
        ({"application_id": None}, "application_id"),
        ({"application_id": "app\x07"}, "application_id"),
        ({"kind": "application.hired"}, "kind"),
        ({"id": "short"}, "id"),
        ({"id": "has spaces in it"}, "id"),
        ({"actor": {"id": "user-42", "role": "ceo"}}, "actor.role"),
        ({"actor": {"role": "recruiter"}}, "actor.id"),
        ({"actor": "user-42"}, "actor"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"duration_ms": "long"}, "duration_ms"),
        ({"candidate_name": "Jane Doe"}, "candidate_name"),
        ({"actor": {"id": "u", "role": "recruiter", "email": "a@b.c"}}, "actor.email"),
    ],
)
def test_a_bad_field_is_400_naming_it(send, tracking_key, override, field):
    _, token = tracking_key

    response = send(beacon_body(token, **override))

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert InboundDelivery.objects.count() == 0


def test_lone_surrogates_are_refused_not_a_crash(send, tracking_key):
    _, token = tracking_key
    valid = json.dumps(beacon_body(token))[:-1]

    in_token = send(b'{"token": "ftk_\\ud800"}')
    in_a_name = send(valid.encode() + b', "x\\udc00": 1}')
    in_a_value = send(valid.replace('"app-1"', '"app-\\ud800"').encode() + b"}")

    assert in_token.status_code == 401
    assert (in_a_name.status_code, in_a_name.json()["field"]) == (400, "x\\udc00")
    assert (in_a_value.status_code, in_a_value.json()["field"]) == (400, "application_id")
    assert InboundDelivery.objects.count() == 0


def test_a_json_array_is_400(send, tracking_key):
    response = send(b"[]")

    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_too_many_beacons_for_one_key_are_429(send, tracking_key, monkeypatch):
    _, token = tracking_key
    monkeypatch.setattr(beacon_module, "RATE_PER_MINUTE", 3)

    codes = [send(beacon_body(token, id=f"rate-limit-{n:04d}")).status_code for n in range(5)]

    assert codes == [202, 202, 202, 429, 429]
    assert InboundDelivery.objects.count() == 3


# --- Tenants ------------------------------------------------------------------------------------


def test_another_organization_key_cannot_write_into_this_organization(
    send, tracking_key, org, other_org
):
    # Given the other organization's key, configured for its own ATS origin
    other_connection = AtsConnectionFactory(organization=other_org)
    _, other_token = tracking_key_create(
        actor=None, connection=other_connection, allowed_origins=["https://globex-ats.example"]
    )

    # When a page on *our* ATS origin sends a beacon with it
    refused = send(beacon_body(other_token, id="cross-tenant-1"))
    # and when its own page does
    accepted = send(
        beacon_body(other_token, id="cross-tenant-2"), origin="https://globex-ats.example"
    )
    deliveries_process_pending()

    # Then only the other organization ever gets the event
    assert refused.status_code == 403
    assert accepted.status_code == 202
    assert RecruitingEvent.objects.filter(organization=org).count() == 0
    assert list(RecruitingEvent.objects.values_list("organization", flat=True)) == [other_org.pk]
    assert Application.objects.filter(organization=org).count() == 0


# --- Keys: service, command ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://ATS.Example.com/", "https://ats.example.com"),
        ("https://ats.example.com:443", "https://ats.example.com"),
        ("https://ats.example.com:8443", "https://ats.example.com:8443"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
    ],
)
def test_origins_are_stored_as_browsers_send_them(given, stored):
    assert origin_normalize(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "ats.example.com",
        "https://ats.example.com/careers",
        "https://ats.example.com?x=1",
        "http://ats.example.com",  # plain http only for loopback
        "ftp://ats.example.com",
        "https://user@ats.example.com",
        "",
    ],
)
def test_what_is_not_an_origin_is_refused(given):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        origin_normalize(given)


def test_the_command_prints_the_token_once_and_stores_only_its_hash(connection, capsys):
    call_command(
        "tracking_key_create",
        "--connection",
        str(connection.pk),
        "--origin",
        "https://ats.example.com/",
        "--origin",
        "https://ats2.example.com",
    )

    out = capsys.readouterr().out
    token = next(line.split("token: ")[1] for line in out.splitlines() if "token: " in line)
    key = TrackingKey.objects.get()
    assert key.token_sha256 == TrackingKey.digest(token)
    assert token.startswith(key.token_prefix)
    assert key.allowed_origins == ["https://ats.example.com", "https://ats2.example.com"]
    assert key.connection == connection
    assert reverse("integrations:beacon") in out
    stored = json.dumps(list(TrackingKey.objects.values()), default=str)
    history = json.dumps(list(TrackingKey.history.values()), default=str)
    assert token not in stored and token not in history


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--connection", "not-a-uuid", "--origin", ORIGIN], "UUID"),
        (
            ["--connection", "00000000-0000-0000-0000-000000000000", "--origin", ORIGIN],
            "No ATS connection",
        ),
    ],
)
def test_the_command_refuses_a_bad_connection(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("tracking_key_create", *args)


def test_the_command_refuses_a_bad_origin(connection):
    with pytest.raises(CommandError, match="no path"):
        call_command(
            "tracking_key_create",
            "--connection",
            str(connection.pk),
            "--origin",
            "https://ats.example.com/jobs",
        )


# --- Admin --------------------------------------------------------------------------------------


ADMIN_ADD = "/admin/integrations/trackingkey/add/"
ADMIN_LIST = "/admin/integrations/trackingkey/"


def test_admin_shows_a_new_key_token_once_and_never_again(client, org, connection, make_member):
    it_ops = make_member(MembershipRole.IT_OPS, org, username="it-ops")
    client.force_login(it_ops)

    response = client.post(
        ADMIN_ADD,
        {
            "connection": str(connection.pk),
            "label": "careers site",
            "origins": "https://ATS.example.com/\nhttps://ats2.example.com",
            "is_active": "on",
        },
        follow=True,
    )

    assert response.status_code == 200
    key = TrackingKey.objects.get()
    shown = [str(m) for m in response.context["messages"] if "<code>" in str(m)]
    assert len(shown) == 1
    token = shown[0].split("<code>")[1].split("</code>")[0]
    assert TrackingKey.digest(token) == key.token_sha256
    assert key.allowed_origins == ["https://ats.example.com", "https://ats2.example.com"]
    assert key.history.get().history_user == it_ops
    change = client.get(f"{ADMIN_LIST}{key.pk}/change/").content.decode()
    listing = client.get(ADMIN_LIST).content.decode()
    assert key.token_prefix in listing
    assert token not in change and token not in listing


def test_admin_refuses_an_origin_with_a_path(client, org, connection, make_member):
    client.force_login(make_member(MembershipRole.IT_OPS, org, username="it-ops"))

    response = client.post(
        ADMIN_ADD,
        {"connection": str(connection.pk), "label": "x", "origins": "https://ats.example.com/a"},
    )

    assert response.status_code == 200
    assert "no path" in response.content.decode()
    assert TrackingKey.objects.count() == 0


def test_admin_revocation_takes_effect_at_once(client, send, org, tracking_key, make_member):
    key, token = tracking_key
    assert send(beacon_body(token, id="before-admin-revoke")).status_code == 202
    client.force_login(make_member(MembershipRole.IT_OPS, org, username="it-ops"))

    client.post(
        f"{ADMIN_LIST}{key.pk}/change/",
        {"label": key.label, "origins": ORIGIN},  # "is_active" unticked
    )

    key.refresh_from_db()
    assert key.is_active is False
    assert send(beacon_body(token, id="after-admin-revoke")).status_code == 403


def test_admin_shows_and_offers_only_the_user_organizations(
    client, org, other_org, tracking_key, make_member
):
    other_connection = AtsConnectionFactory(organization=other_org, name="Globex ATS")
    other_key, _ = tracking_key_create(
        actor=None, connection=other_connection, allowed_origins=["https://globex.example"]
    )
    client.force_login(make_member(MembershipRole.IT_OPS, org, username="it-ops"))

    listing = client.get(ADMIN_LIST).content.decode()
    add_page = client.get(ADMIN_ADD).content.decode()
    other_page = client.get(f"{ADMIN_LIST}{other_key.pk}/change/")

    assert tracking_key[0].token_prefix in listing
    assert other_key.token_prefix not in listing
    assert "Globex ATS" not in add_page
    assert other_page.status_code in (302, 404)


def test_roles_without_the_permission_cannot_open_tracking_keys(client, org, make_member):
    client.force_login(make_member(MembershipRole.TA_OPS, org, username="ta-ops"))

    assert client.get(ADMIN_LIST).status_code == 403
