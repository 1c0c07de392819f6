"""Edges of what senders may send: the longest ids, implausible years."""

import pytest

from failures.events import EventInvalid, event_parse
from failures.models import Failure
from failures.services import event_record

pytestmark = pytest.mark.django_db


def test_a_declined_offer_with_the_longest_event_id_is_recorded_once(connection, make_event):
    longest = "e" * 199 + "1"
    other = "e" * 199 + "2"
    stage = {"name": "Offer", "category": "offer"}

    event_record(
        connection=connection, payload=make_event("offer.declined", id=longest, stage=stage)
    )
    event_record(
        connection=connection, payload=make_event("offer.declined", id=longest, stage=stage)
    )
    event_record(connection=connection, payload=make_event("offer.declined", id=other, stage=stage))

    keys = list(Failure.objects.values_list("dedupe_key", flat=True))
    assert len(keys) == 2  # one per event, the repeat recorded nothing
    assert len(set(keys)) == 2
    assert all(len(key) <= 200 and key.startswith("event:eee") for key in keys)


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+23:59", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59"]
)
def test_implausible_years_are_refused_naming_the_field(make_event, stamp):
    with pytest.raises(EventInvalid) as caught:
        event_parse(make_event(occurred_at=stamp))

    assert caught.value.field == "occurred_at"
    assert "year" in caught.value.message
