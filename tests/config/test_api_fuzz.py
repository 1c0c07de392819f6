"""schemathesis against our own OpenAPI schema: no input, valid or not, makes a 5xx.

Every operation of the schema is called in-process through the WSGI app, anonymously and as
an authenticated member, with data that fits the schema and data that does not. Path ids of
connections and beacon tokens are swapped for real ones, so the fuzzing reaches the parsing
and validation behind authentication instead of stopping at 401/404.

Bounded to run in well under a minute; FAILTRACK_FUZZ_EXAMPLES raises the number of
examples per operation for a deeper run (derandomized, so a run is reproducible).
"""

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from failures.choices import AtsVendor, MembershipRole
from integrations.beacon import tracking_keys_forget
from integrations.services import tracking_key_create
from tests.factories import ApplicationFactory, AtsConnectionFactory, FailureFactory, JobFactory

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FAILTRACK_FUZZ_EXAMPLES", "12"))
ORIGIN = "https://ats.example.com"

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """Bulk import bodies (JSON lines) are documented as a string; send it as it is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI app closes "old" database connections around each request; inside a test's
    transaction that would close the test's own connection (Django's test client avoids it
    the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(org, make_member):
    """One connection per vendor, a tracking key, a failure and an IT-ops member's token."""
    connections = {
        vendor: AtsConnectionFactory(
            organization=org, vendor=vendor, secret=f"fuzz-{vendor}-secret"
        )
        for vendor in AtsVendor.values
    }
    _, token = tracking_key_create(
        actor=None,
        connection=connections[AtsVendor.GENERIC],
        allowed_origins=[ORIGIN],
    )
    job = JobFactory(organization=org, connection=connections[AtsVendor.GENERIC])
    FailureFactory(application=ApplicationFactory(job=job))
    member = make_member(MembershipRole.IT_OPS, org, username="fuzzer")
    tracking_keys_forget()
    return {
        "connections": connections,
        "beacon_token": token,
        "api_token": Token.objects.create(user=member).key,
    }


def _reach_deeper(case, world) -> dict[str, str]:
    """Point generated requests at real rows; returns the extra headers to send."""
    headers: dict[str, str] = {}
    parameters = case.path_parameters or {}
    if "connection_id" in parameters:
        vendor = parameters.get("vendor", AtsVendor.GENERIC)
        if vendor in world["connections"]:
            parameters["connection_id"] = str(world["connections"][vendor].pk)
    if case.operation.path.endswith("/beacon/"):
        headers["Origin"] = ORIGIN
        if isinstance(case.body, dict):
            case.body["token"] = world["beacon_token"]
    return headers


@schema.parametrize()
@FUZZ
def test_no_server_error_anonymously(case, world):
    headers = _reach_deeper(case, world)

    case.call_and_validate(headers=headers, checks=[not_a_server_error])


@schema.parametrize()
@FUZZ
def test_no_server_error_authenticated(case, world):
    headers = _reach_deeper(case, world)
    headers["Authorization"] = f"Token {world['api_token']}"

    case.call_and_validate(headers=headers, checks=[not_a_server_error])


# --- What earlier runs found ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "status"),
    [
        ("0765-12-02T17:29:27.56+18:42", 200),  # an offset PostgreSQL refuses: was a 500
        ("2026-01-01T00:00:00-23:59", 200),
        ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
    ],
)
def test_failure_time_filters_take_any_offset_python_accepts(world, client, after, status):
    response = client.get(
        "/api/v1/failures/",
        {"occurred_after": after},
        HTTP_AUTHORIZATION=f"Token {world['api_token']}",
    )

    assert response.status_code == status
    if status == 400:
        assert "occurred_after" in response.json()["fields"]
