"""Processing is published inline when idle, in batches when busy, and nothing is dropped."""

import base64
import json
import threading
import time

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from integrations import ingest
from integrations.publisher import ProcessingPublisher, processing_publisher


class Collect:
    """A publish function that records the batches it was given, and by which thread."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.delay = delay

    def __call__(self, ids: list[int]) -> None:
        time.sleep(self.delay)
        self.batches.append(list(ids))
        self.threads.append(threading.current_thread().name)

    @property
    def ids(self) -> list[int]:
        return [i for batch in self.batches for i in batch]


def test_an_idle_process_publishes_inline_before_returning():
    sent = Collect()
    publisher = ProcessingPublisher(sent, linger=0.05)

    publisher.add(1)

    assert sent.batches == [[1]]
    assert sent.threads == [threading.current_thread().name]


def test_a_busy_process_gathers_ids_into_few_messages_and_loses_none():
    sent = Collect()
    publisher = ProcessingPublisher(sent, linger=0.2, batch=50)

    for delivery_id in range(1, 121):
        publisher.add(delivery_id)
    publisher.flush(timeout=5)

    assert sorted(sent.ids) == list(range(1, 121))
    assert sent.batches[0] == [1]  # the first one found the process idle
    assert all(len(batch) <= 50 for batch in sent.batches)
    assert len(sent.batches) <= 6  # 1 inline, then 119 ids in batches of (mostly) 50
    assert set(sent.threads[1:]) == {"deliveries-publisher"}


def test_ids_added_while_an_inline_publish_is_in_flight_are_published_by_the_thread():
    sent = Collect(delay=0.2)
    publisher = ProcessingPublisher(sent, linger=0.0)
    first = threading.Thread(target=publisher.add, args=(1,))
    first.start()
    time.sleep(0.05)  # the first publish is now in flight

    started = time.monotonic()
    publisher.add(2)
    took = time.monotonic() - started
    first.join()
    publisher.flush(timeout=5)

    assert took < 0.1  # the second caller did not wait for the broker
    assert sorted(sent.ids) == [1, 2]


def test_a_publish_that_raises_does_not_stop_the_thread(caplog):
    sent = Collect()

    def flaky(ids: list[int]) -> None:
        if ids == [2]:
            raise RuntimeError("broker hiccup")
        sent(ids)

    publisher = ProcessingPublisher(flaky, linger=0.02)
    publisher.add(1)  # idle: inline
    publisher.add(2)  # busy: gathered, and its publish raises in the thread
    time.sleep(0.2)
    publisher.add(3)  # idle again: inline
    publisher.add(4)  # busy: the same thread, still alive, publishes it
    publisher.flush(timeout=5)

    assert sent.batches == [[1], [3], [4]]
    assert sent.threads[2] == "deliveries-publisher"
    assert "left for the sweeper" in caplog.text


def _queued_ids() -> list[int]:
    """Delivery ids named by the messages waiting in the Celery queue (read, not consumed)."""
    ids: list[int] = []
    for raw in redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange("celery", 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        for value in args:
            ids.extend(value if isinstance(value, list) else [value])
    return ids


@pytest.fixture
def empty_queue():
    celery_app.control.purge()
    ingest.broker_backoff.reset()
    yield
    processing_publisher.flush(timeout=5)
    celery_app.control.purge()
    ingest.broker_backoff.reset()


def test_a_burst_of_deliveries_reaches_the_real_broker_in_few_messages(empty_queue):
    ids = list(range(1000, 1200))

    for delivery_id in ids:
        ingest.delivery_enqueue(delivery_id)
    processing_publisher.flush(timeout=5)

    queued = _queued_ids()
    assert sorted(queued) == ids
    assert celery_app.control.purge() <= 5  # 1 inline + batches of up to 100


def test_while_the_broker_is_in_backoff_nothing_is_published(empty_queue):
    ingest.broker_backoff.start(30)

    ingest.delivery_enqueue(4242)
    processing_publisher.flush(timeout=5)

    assert _queued_ids() == []
