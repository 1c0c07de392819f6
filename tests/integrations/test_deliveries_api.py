"""GET /api/v1/deliveries/: scoped to the caller's organizations, filterable, never the body;
POST …/replay/ for those allowed to change deliveries."""

import pytest
from rest_framework.test import APIClient

from failures.models import StageMapping
from integrations.models import DeliveryState, InboundDelivery
from tests.conftest import ALL_ROLES
from tests.factories import AtsConnectionFactory

URL = "/api/v1/deliveries/"

pytestmark = pytest.mark.django_db

READERS = {"ta_ops", "it_ops"}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def deliveries(org, other_org, connection, post_event, make_event):
    """Two deliveries of `org` (one processed, one failed) and one of `other_org`."""
    post_event(make_event("application.created"))
    post_event(make_event(stage={"name": "Take-home Test", "category": None}))
    foreign = AtsConnectionFactory(organization=other_org, secret="other-secret-123456")
    post_event(make_event("application.created"), target=foreign)
    return {
        "processed": InboundDelivery.objects.get(connection=connection, state="processed"),
        "failed": InboundDelivery.objects.get(connection=connection, state="failed"),
        "foreign": InboundDelivery.objects.get(connection=foreign),
    }


def test_anonymous_callers_get_401(deliveries):
    assert APIClient().get(URL).status_code in (401, 403)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_operations_roles_read_deliveries(role, org, deliveries, make_member):
    response = _client(make_member(role, org)).get(URL)

    if role in READERS:
        assert response.status_code == 200
        assert {row["id"] for row in response.json()["results"]} == {
            deliveries["processed"].pk,
            deliveries["failed"].pk,
        }
    else:
        assert response.status_code == 403


def test_rows_carry_state_and_error_but_never_the_body(org, deliveries, make_member):
    response = _client(make_member("it_ops", org)).get(f"{URL}{deliveries['failed'].pk}/")

    row = response.json()
    assert row["state"] == "failed"
    assert row["error"].startswith("mapped event invalid, stage.category:")
    assert row["body_bytes"] == len(deliveries["failed"].body)
    assert "body" not in row
    assert "x-failtrack-signature" not in row["headers"]


def test_another_organizations_delivery_is_404(org, deliveries, make_member):
    client = _client(make_member("it_ops", org))

    assert client.get(f"{URL}{deliveries['foreign'].pk}/").status_code == 404
    assert client.post(f"{URL}{deliveries['foreign'].pk}/replay/").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=failed", {"failed"}),
        ("state=processed", {"processed"}),
        ("vendor=generic", {"failed", "processed"}),
        ("vendor=lever", set()),
        ("event_type=application.created", {"processed"}),
    ],
)
def test_filters(query, expected, org, deliveries, make_member):
    response = _client(make_member("ta_ops", org)).get(f"{URL}?{query}")

    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {deliveries[name].pk for name in expected}


def test_filter_by_connection(org, connection, deliveries, make_member):
    client = _client(make_member("ta_ops", org))

    mine = client.get(f"{URL}?connection={connection.pk}").json()["results"]
    theirs = client.get(f"{URL}?connection={deliveries['foreign'].connection_id}").json()

    assert len(mine) == 2
    assert theirs["results"] == []


@pytest.mark.parametrize("query", ["state=exploded", "connection=not-a-uuid", "vendor=../../"])
def test_bad_filters_are_400_naming_the_field(query, org, deliveries, make_member):
    response = _client(make_member("ta_ops", org)).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["fields"]


def test_replay_after_fixing_the_mapping(org, deliveries, make_member):
    StageMapping.objects.create(organization=org, stage_name="Take-home Test", category="screening")
    failed = deliveries["failed"]

    response = _client(make_member("it_ops", org)).post(f"{URL}{failed.pk}/replay/")

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "processed"
    failed.refresh_from_db()
    assert failed.state == DeliveryState.PROCESSED


def test_replaying_a_processed_delivery_is_409(org, deliveries, make_member):
    response = _client(make_member("it_ops", org)).post(
        f"{URL}{deliveries['processed'].pk}/replay/"
    )

    assert response.status_code == 409
    assert "processed" in response.json()["error"]


def test_the_api_is_read_only_otherwise(org, deliveries, make_member):
    client = _client(make_member("it_ops", org))
    pk = deliveries["failed"].pk

    assert client.delete(f"{URL}{pk}/").status_code in (403, 405)
    assert client.patch(f"{URL}{pk}/", {"state": "processed"}, format="json").status_code == 405
    assert client.post(URL, {}, format="json").status_code == 405
    assert InboundDelivery.objects.get(pk=pk).state == DeliveryState.FAILED


@pytest.mark.parametrize("value", ["2308-03-19T20:25:55.94+19:49", "0001-01-01T00:00:00+01:00"])
def test_time_filters_take_any_offset_without_a_server_error(value, org, deliveries, make_member):
    from urllib.parse import quote

    response = _client(make_member("ta_ops", org)).get(f"{URL}?received_before={quote(value)}")

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "received_before" in response.json()["fields"]
