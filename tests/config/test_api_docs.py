"""The API docs: Swagger UI from our own static files, over a schema with no warnings."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_docs_page_loads_swagger_ui_from_our_static_files_only(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert 'url: "/api/schema/"' in html
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references, "the page should load Swagger UI's files"
    for reference in references:
        assert reference.startswith("/static/"), f"{reference} is not one of our static files"
        assert finders.find(reference.removeprefix("/static/")), f"{reference} does not exist"
    assert not re.search(r"https?://", html), "no absolute URL (CDN or other host) in the page"


def test_the_schema_validates_without_a_single_warning(tmp_path: Path):
    target = tmp_path / "schema.yaml"

    # --fail-on-warn turns every drf-spectacular warning (an endpoint it cannot describe)
    # into an error; --validate checks the result against the OpenAPI 3 specification.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.read_text().startswith("openapi: 3")


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_an_id_a_summary_and_documented_answers(schema):
    ids = []
    for name, operation in _operations(schema):
        ids.append(operation["operationId"])
        assert operation.get("summary") or operation.get("description"), name
        statuses = set(operation["responses"])
        assert any(code.startswith("2") for code in statuses), f"{name}: no success answer"
        assert statuses - {"200", "201", "202", "204"}, f"{name}: no error answer documented"
        for code, answer in operation["responses"].items():
            assert answer.get("description") or answer.get("content"), f"{name} {code}"
    assert len(ids) == len(set(ids)), "operation ids must be unique"


def test_read_endpoints_declare_their_authentication(schema):
    for name, operation in _operations(schema):
        if name.startswith("GET "):
            schemes = {key for item in operation.get("security", []) for key in item}
            assert {"tokenAuth", "cookieAuth"} <= schemes, name
            assert "401" in operation["responses"] or "403" in operation["responses"], name


def test_the_beacon_is_documented_with_its_body_and_no_api_authentication(schema):
    operation = schema["paths"]["/api/v1/beacon/"]["post"]

    assert operation["operationId"] == "beacon_receive"
    assert "security" not in operation or operation["security"] in ([], [{}])
    body = operation["requestBody"]["content"]
    assert set(body) == {"text/plain", "application/json"}
    beacon = schema["components"]["schemas"]["Beacon"]
    assert {"token", "id", "kind", "application_id", "actor"} <= set(beacon["required"])
    assert {"202", "401", "403", "413"} <= set(operation["responses"])
