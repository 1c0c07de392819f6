"""POST /api/v1/hooks/generic/<connection-id>/batch/: signed JSON lines imported at once."""

import json
import logging
import uuid

import pytest
from django.test import Client

from failures.models import Application, AtsConnection, Job, RecruitingEvent
from integrations import batch
from tests.conftest import sign
from tests.factories import AtsConnectionFactory

NDJSON = "application/x-ndjson"
SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def client() -> Client:
    """Answers a crash with a 500 (as the ATS would see it) instead of raising it."""
    return Client(raise_request_exception=False)


@pytest.fixture
def post_batch(client):
    """post_batch(connection, body, secret=..., content_type=..., signature=...) -> response."""

    def post(
        connection: AtsConnection,
        body: bytes,
        *,
        secret: str = SECRET,
        content_type: str = NDJSON,
        signature: str | None = None,
        url: str | None = None,
    ):
        header = signature if signature is not None else sign(secret, body)
        return client.post(
            url or f"/api/v1/hooks/generic/{connection.pk}/batch/",
            data=body,
            content_type=content_type,
            headers={"X-Failtrack-Signature": header},
            # The test client leaves the content type out of an empty body; a sender does not.
            CONTENT_TYPE=content_type,
        )

    return post


def ndjson(*events) -> bytes:
    return b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in events)


@pytest.mark.django_db
def test_a_batch_is_imported_and_answered_with_counts_and_line_errors(
    post_batch, connection, make_event
):
    body = ndjson(
        make_event(id="b-1"),
        make_event(id="b-2", kind="application.rejected", stage=None),
        b"{broken",
        make_event(id="b-1"),
        make_event(id="b-4", occurred_at="not a time"),
    )

    response = post_batch(connection, body)

    assert response.status_code == 200
    answer = response.json()
    assert {k: answer[k] for k in ("lines", "imported", "duplicates", "invalid")} == {
        "lines": 5,
        "imported": 2,
        "duplicates": 1,
        "invalid": 2,
    }
    assert [(e["line"], e["field"]) for e in answer["errors"]] == [
        (3, "body"),
        (5, "occurred_at"),
    ]
    assert answer["errors_truncated"] is False
    assert Application.objects.get(connection=connection).status == "rejected"
    assert RecruitingEvent.objects.filter(connection=connection).count() == 2


@pytest.mark.django_db
def test_sending_the_same_batch_again_records_nothing_new(post_batch, connection, make_event):
    body = ndjson(make_event(id="b-1"), make_event(id="b-2"))
    post_batch(connection, body)

    again = post_batch(connection, body).json()

    assert (again["imported"], again["duplicates"]) == (0, 2)
    assert RecruitingEvent.objects.count() == 2


@pytest.mark.django_db
def test_events_the_webhook_recorded_are_duplicates_in_a_batch(
    post_batch, post_event, connection, make_event
):
    event = make_event(id="live-1")
    assert post_event(event).status_code == 202

    answer = post_batch(connection, ndjson(event, make_event(id="new-1"))).json()

    assert (answer["imported"], answer["duplicates"]) == (1, 1)


# --- Signatures ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    ["", "sha256=", "sha256=" + "0" * 64, "md5=abc", "deadbeef"],
    ids=["missing", "empty", "wrong", "other-scheme", "no-prefix"],
)
def test_a_bad_signature_is_refused_and_nothing_is_written(
    post_batch, connection, make_event, signature
):
    response = post_batch(connection, ndjson(make_event()), signature=signature)

    assert response.status_code == 401
    assert response.json()["field"] == "X-Failtrack-Signature"
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_a_tampered_body_is_refused(post_batch, connection, make_event):
    body = ndjson(make_event(id="b-1"))
    signature = sign(SECRET, body)

    response = post_batch(connection, body.replace(b"b-1", b"b-2"), signature=signature)

    assert response.status_code == 401
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_every_active_connection_key_verifies_but_not_a_key_for_one_event_type(
    post_batch, vendor_connection, make_event
):
    from failures.models import ConnectionSecret
    from integrations.credentials import credentials_forget

    connection = vendor_connection("generic", "first-secret-0123", "second-secret-0123")
    limited = ConnectionSecret(
        connection=connection, label="kind-only", event_type="offer.declined"
    )
    limited.set_value("limited-secret-0123")
    limited.save()
    credentials_forget()

    first = post_batch(connection, ndjson(make_event(id="a")), secret="first-secret-0123")
    second = post_batch(connection, ndjson(make_event(id="b")), secret="second-secret-0123")
    assert (first.status_code, second.status_code) == (200, 200)
    refused = post_batch(connection, ndjson(make_event(id="c")), secret="limited-secret-0123")
    assert refused.status_code == 401


@pytest.mark.django_db
def test_another_connections_secret_is_refused(post_batch, connection, other_org, make_event):
    other = AtsConnectionFactory(organization=other_org, secret="other-secret-0123456789")

    response = post_batch(connection, ndjson(make_event()), secret="other-secret-0123456789")

    assert response.status_code == 401
    assert not RecruitingEvent.objects.filter(connection__in=[connection, other]).exists()


# --- 404, 415, 413, 400 -------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_inactive_or_non_generic_connections_are_404(
    post_batch, connection, vendor_connection, make_event
):
    body = ndjson(make_event())
    for url in (
        f"/api/v1/hooks/generic/{uuid.uuid4()}/batch/",
        "/api/v1/hooks/generic/not-a-uuid/batch/",
    ):
        assert post_batch(connection, body, url=url).status_code == 404
    greenhouse = vendor_connection("greenhouse", SECRET)
    assert post_batch(greenhouse, body).status_code == 404
    AtsConnection.objects.filter(pk=connection.pk).update(is_active=False)
    from integrations.credentials import credentials_forget

    credentials_forget()
    response = post_batch(connection, body)
    assert response.status_code == 404
    assert response.json() == {"error": "Unknown ATS connection."}
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_other_content_types_are_415(post_batch, connection, make_event, content_type):
    response = post_batch(connection, ndjson(make_event()), content_type=content_type)

    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_before_anything_is_read(
    post_batch, connection, make_event, monkeypatch
):
    monkeypatch.setattr(batch, "MAX_BYTES", 1000)
    body = ndjson(*(make_event(id=f"e{i}") for i in range(5)))
    assert len(body) > 1000

    response = post_batch(connection, body)

    assert response.status_code == 413
    assert not RecruitingEvent.objects.exists()


@pytest.mark.django_db
def test_a_body_longer_than_its_content_length_claims_is_cut_at_the_limit(
    connection, make_event, monkeypatch
):
    """A lying Content-Length cannot make the view read more than the limit."""
    from django.test import RequestFactory

    monkeypatch.setattr(batch, "MAX_BYTES", 1000)
    body = ndjson(*(make_event(id=f"e{i}") for i in range(5)))
    request = RequestFactory().post(
        f"/api/v1/hooks/generic/{connection.pk}/batch/",
        data=body,
        content_type=NDJSON,
        headers={"X-Failtrack-Signature": sign(SECRET, body)},
    )
    request.META["CONTENT_LENGTH"] = "10"
    request._stream = __import__("io").BytesIO(body)

    response = batch.EventBatchView.as_view()(request, connection_id=str(connection.pk))

    assert response.status_code == 413


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"", b"\n\n  \n"], ids=["empty", "blank-lines"])
def test_an_empty_body_is_400(post_batch, connection, body):
    response = post_batch(connection, body)

    assert response.status_code == 400
    assert response.json()["field"] == "body"


# --- Hostile lines ------------------------------------------------------------------------


@pytest.mark.django_db
def test_hostile_lines_are_refused_one_by_one(post_batch, connection, make_event, settings):
    settings.FAILTRACK_WEBHOOK_MAX_BYTES = 4000
    body = ndjson(
        make_event(id="ok-1"),
        b'{"id": "nul\\u0000", "kind": "application.created"}',
        b"\x00\x00\x00",
        b"[" * 3000 + b"]" * 3000,
        json.dumps(make_event(id="huge", details={"pad": "x" * 10_000})).encode(),
        make_event(id="types", application={"id": ["app"]}),
        make_event(id="types-2", job={"seniority": "senior"}),
        b"\xc3\x28",
        make_event(id="ok-2", occurred_at="2026-11-03T09:00:00Z"),
    )

    response = post_batch(connection, body)

    assert response.status_code == 200
    answer = response.json()
    assert answer["imported"] == 2
    assert [(e["line"], e["field"]) for e in answer["errors"]] == [
        (2, "id"),
        (3, "body"),
        (4, "body"),
        (5, "body"),
        (6, "application.id"),
        (7, "job.seniority"),
        (8, "body"),
    ]


# --- Tenancy and logs ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_never_writes_into_another_organization(
    post_batch, post_event, connection, other_org, make_event
):
    """The other tenant has the very same ATS ids; its rows stay as they were."""
    theirs = AtsConnectionFactory(organization=other_org, secret="their-secret-0123456789")
    post_event(make_event(id="t-1"), target=theirs, secret="their-secret-0123456789")
    before = list(Application.objects.filter(connection=theirs).values())

    body = ndjson(
        make_event(id="t-1"), make_event(id="t-2", kind="application.withdrawn", stage=None)
    )
    answer = post_batch(connection, body).json()

    assert answer["imported"] == 2
    assert list(Application.objects.filter(connection=theirs).values()) == before
    assert set(
        Job.objects.filter(connection=connection).values_list("organization", flat=True)
    ) == {connection.organization_id}
    assert Application.objects.get(connection=connection).status == "withdrawn"


@pytest.mark.django_db
def test_logs_name_neither_the_secret_nor_candidates(post_batch, connection, make_event, caplog):
    caplog.set_level(logging.DEBUG)
    post_batch(connection, ndjson(make_event(id="b-1")))
    post_batch(connection, ndjson(make_event(id="b-2")), secret="wrong-secret-0123456")

    text = caplog.text
    assert SECRET not in text
    assert "cand-4" not in text
    assert "batch imported" in text and "batch signature refused" in text


@pytest.mark.django_db
def test_the_endpoint_is_in_the_openapi_schema(client):
    response = client.get("/api/schema/", headers={"Accept": "application/json"})

    operation = response.json()["paths"]["/api/v1/hooks/generic/{connection_id}/batch/"]["post"]
    assert "application/x-ndjson" in operation["requestBody"]["content"]
    assert {"200", "401", "413", "415"} <= set(operation["responses"])
