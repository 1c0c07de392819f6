"""The hook answers JSON, whatever the vendor's Accept header asks for."""

import json

from tests.conftest import sign


def test_an_accepted_delivery_is_answered_in_json_even_to_an_html_accept_header(
    client, connection, make_event
):
    body = json.dumps(make_event()).encode()

    response = client.post(
        f"/api/v1/hooks/generic/{connection.pk}/",
        data=body,
        content_type="application/json",
        headers={"X-Failtrack-Signature": sign(connection.secret, body), "Accept": "text/html"},
    )

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == "accepted"


def test_errors_are_json_too_including_the_ones_drf_raises_itself(client, connection):
    unknown = client.post(
        "/api/v1/hooks/generic/00000000-0000-0000-0000-000000000000/",
        data=b"{}",
        content_type="application/json",
        headers={"Accept": "text/html"},
    )
    wrong_method = client.get(
        f"/api/v1/hooks/generic/{connection.pk}/", headers={"Accept": "text/html"}
    )

    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Unknown ATS connection."}
    assert wrong_method.status_code == 405
    assert wrong_method["Content-Type"] == "application/json"
    assert wrong_method.json() == {"error": 'Method "GET" not allowed.'}
