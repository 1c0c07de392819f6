"""Routed events: an add-on's event is recorded on another connection of the same
organization, never on another tenant's."""

import pytest

from integrations.ats.base import DeliveryInvalid, Routed
from integrations.ingest import _target
from integrations.models import InboundDelivery
from tests.factories import AtsConnectionFactory

pytestmark = pytest.mark.django_db


def _delivery(connection) -> InboundDelivery:
    return InboundDelivery.objects.create(
        organization=connection.organization,
        connection=connection,
        vendor="checkr",
        dedupe_key="d-1",
        body=b"{}",
        body_sha256="0" * 64,
        verified_with="test",
    )


def test_an_event_routed_to_a_connection_of_the_same_organization_goes_there(org, connection):
    checkr = AtsConnectionFactory(organization=org, vendor="checkr")

    target, payload = _target(_delivery(checkr), Routed(str(connection.pk), {"id": "e"}))

    assert target == connection
    assert payload == {"id": "e"}


def test_an_unrouted_event_stays_on_the_delivery_connection(org, connection):
    target, _ = _target(_delivery(connection), {"id": "e"})

    assert target == connection


def test_a_route_into_another_organization_is_refused(org, other_org, connection):
    foreign = AtsConnectionFactory(organization=other_org)

    with pytest.raises(DeliveryInvalid) as caught:
        _target(_delivery(connection), Routed(str(foreign.pk), {"id": "e"}))

    assert caught.value.field == "connection"
