"""The way through, end to end: a signed event in, a failure out."""

import pytest

from failures.models import Failure, RecruitingEvent


@pytest.mark.django_db
def test_offer_declined_event_records_a_failure(post_event, make_event):
    response = post_event(
        make_event("offer.declined", stage={"name": "Offer", "category": "offer"})
    )

    assert response.status_code == 202, response.content
    assert RecruitingEvent.objects.count() == 1
    failure = Failure.objects.get()
    assert failure.definition.code == "OFR-DECLINED"
    assert failure.application.ats_id == "app-9"
    assert failure.definition_version.number == 1
