"""IT ops finds a delivery that failed on an unmapped stage, maps the stage and replays it."""

import pytest

from failures.choices import MembershipRole
from failures.models import StageMapping
from integrations.models import DeliveryState, InboundDelivery
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_replays_a_failed_delivery_from_the_admin(
    live_server, page, screenshot, org, make_member, post_event, make_event
):
    # Given a delivery kept as failed: the ATS used a stage nobody had mapped
    assert post_event(make_event(stage={"name": "Take-home Test", "category": None})).status_code
    delivery = InboundDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    operator = make_member(MembershipRole.IT_OPS, org, username="it-operator")

    # When IT ops opens the failed deliveries in the admin
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/integrations/inbounddelivery/?state__exact=failed")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "application.stage_changed" in rows.first.inner_text()
    screenshot(page, "admin-deliveries-failed")

    # Then the delivery page says why it failed, shows the body, and no credentials
    rows.first.locator("th a").click()
    content = page.inner_text("#content")
    assert "Stage 'Take-home Test' is not mapped" in content
    assert "Take-home Test" in page.inner_text(".field-body_pretty")
    assert "x-failtrack-signature" not in content.lower()
    screenshot(page, "admin-delivery-detail")

    # When the stage is mapped and the delivery replayed with the admin action
    StageMapping.objects.create(organization=org, stage_name="Take-home Test", category="screening")
    page.goto(f"{live_server.url}/admin/integrations/inbounddelivery/")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")

    # Then it is processed and the admin says so
    assert "Replayed: 1 processed" in page.inner_text(".messagelist")
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PROCESSED
    screenshot(page, "admin-deliveries-replayed")
