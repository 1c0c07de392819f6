"""The API docs page renders our schema with Swagger UI served from our own static files."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_every_operation_from_our_own_files(
    live_server, page, screenshot, client
):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation_ids = {
        operation["operationId"] for item in schema["paths"].values() for operation in item.values()
    }
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15000)

    # Every operation of the schema is listed, under its tag
    assert page.locator(".swagger-ui .opblock").count() == len(operation_ids)
    assert "failtrack API" in page.inner_text(".swagger-ui .info .title")
    tags = page.locator(".swagger-ui .opblock-tag").all_inner_texts()
    assert any(tag.strip().startswith("beacon") for tag in tags)
    assert any(tag.strip().startswith("failures") for tag in tags)
    # and nothing came from anywhere but our server (no CDN)
    assert requested and all(url.startswith(live_server.url) for url in requested), requested
    screenshot(page, "api-docs")

    # Opening the beacon operation shows its documented body and answers
    page.click("#operations-beacon-beacon_receive .opblock-summary")
    page.wait_for_selector("#operations-beacon-beacon_receive .responses-table")
    text = page.inner_text("#operations-beacon-beacon_receive")
    assert "text/plain" in text and "413" in text
