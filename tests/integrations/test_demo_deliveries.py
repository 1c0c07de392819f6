"""The demo's Greenhouse deliveries go through the real hook and leave every state to see."""

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from integrations.demo import demo_deliveries
from integrations.models import InboundDelivery

pytestmark = pytest.mark.django_db


def test_demo_deliveries_leave_processed_ignored_and_failed_rows(org):
    with override_settings(DEBUG=True):
        connection = demo_deliveries(organization_slug=org.slug)
        demo_deliveries(organization_slug=org.slug)  # twice: duplicates, nothing new

    states = sorted(InboundDelivery.objects.values_list("event_type", "state"))
    assert states == [
        ("candidate_stage_change", "failed"),
        ("candidate_stage_change", "processed"),
        ("new_candidate_application", "processed"),
        ("ping", "ignored"),
    ]
    assert connection.applications.get().current_stage == "Onsite"


def test_demo_deliveries_refuse_without_debug(org):
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_deliveries")
    assert not InboundDelivery.objects.exists()
