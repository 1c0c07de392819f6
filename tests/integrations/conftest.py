"""Fixtures for vendor webhook tests: connections of any vendor, raw posts, processing."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from failures.models import AtsConnection, ConnectionSecret
from integrations.credentials import credentials_forget
from integrations.ingest import deliveries_process_pending
from tests.factories import AtsConnectionFactory


@pytest.fixture
def vendor_connection(org) -> Callable[..., AtsConnection]:
    """vendor_connection(vendor, "secret", ..., organization=org, event_type=...) -> connection.

    Every secret given becomes an active signing key (the first one labelled "primary").
    """

    def make(
        vendor: str,
        *secrets: str,
        organization=None,
        event_type: str = "",
    ) -> AtsConnection:
        connection = AtsConnectionFactory(
            organization=organization or org,
            vendor=vendor,
            name=f"{vendor} ATS",
            secret=secrets[0] if secrets else None,
        )
        for number, value in enumerate(secrets[1:], start=2):
            row = ConnectionSecret(connection=connection, label=f"key-{number}")
            row.event_type = event_type
            row.set_value(value)
            row.save()
        credentials_forget()
        return connection

    return make


@pytest.fixture
def hook(client) -> Callable[..., Any]:
    """hook(connection, body, headers={...}, content_type=..., process=True) -> response.

    `body` is sent byte for byte (a dict is JSON-encoded first). With process=True the
    stored deliveries are then processed, as a worker would.
    """

    def post(
        connection: AtsConnection,
        body: bytes | dict | list,
        headers: dict[str, str] | None = None,
        *,
        content_type: str = "application/json",
        process: bool = True,
    ):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post(
            f"/api/v1/hooks/{connection.vendor}/{connection.pk}/",
            data=raw,
            content_type=content_type,
            headers=headers or {},
        )
        if process:
            deliveries_process_pending()
        return response

    return post
