"""Processing tasks for stored deliveries, published one by one when idle, in batches when busy.

Publishing one Celery message costs about 0.6 ms of CPU in the web process (kombu builds a
Redis pipeline per message) — under load as much as the rest of a webhook, see
benchmarks/webhook_throughput.py — while a message naming 20 deliveries costs 0.03 ms per
delivery. So `ProcessingPublisher.add`:

- publishes inline, in the calling thread, when the process is idle (nothing gathered,
  nothing being published, no other delivery in the last `LINGER_SECONDS`): a lone
  delivery is queued at once, as before;
- otherwise gathers the id, and a background thread of the process publishes what has
  gathered as one message of at most `BATCH` ids after at most `LINGER_SECONDS`; the
  answer to the vendor does not wait for that.

Nothing is lost when gathered ids are never published (broker down, process killed): the
stored row is the outbox, and the sweeper re-queues deliveries still received after
FAILTRACK_SWEEP_AFTER_SECONDS. A process exiting normally publishes what it holds first.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

LINGER_SECONDS = 0.02
BATCH = 100
EXIT_TIMEOUT_SECONDS = 5.0


class ProcessingPublisher:
    """Hands delivery ids to `publish(ids)`: inline when idle, batched by a thread when busy.

    `publish` must not raise (it decides what a failure means); it is called by one
    thread at a time per batch, possibly concurrently with one inline call.
    """

    def __init__(
        self,
        publish: Callable[[list[int]], None],
        *,
        linger: float = LINGER_SECONDS,
        batch: int = BATCH,
    ) -> None:
        self._publish = publish
        self._linger = linger
        self._batch = batch
        self._reset()
        atexit.register(self.flush, EXIT_TIMEOUT_SECONDS)
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Also in a forked child: it starts empty, with a lock no other thread holds.
        self._ready = threading.Condition()
        self._pending: list[int] = []
        self._publishing = 0  # inline and background publishes in flight
        self._last_add = float("-inf")
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add(self, delivery_id: int) -> None:
        """Have this delivery processed; waits for the broker only when the process is idle."""
        now = time.monotonic()
        with self._ready:
            busy = bool(self._pending) or self._publishing or now - self._last_add < self._linger
            self._last_add = now
            if busy:
                self._pending.append(delivery_id)
                if self._thread is None:
                    self._stopping = False
                    self._thread = threading.Thread(
                        target=self._run, name="deliveries-publisher", daemon=True
                    )
                    self._thread.start()
                if len(self._pending) in (1, self._batch):  # the thread waits for these only
                    self._ready.notify()
                return
            self._publishing += 1
        try:
            self._publish([delivery_id])
        finally:
            with self._ready:
                self._publishing -= 1

    def flush(self, timeout: float | None = None) -> None:
        """Publish everything gathered now and stop the thread (the next batch starts one)."""
        with self._ready:
            thread = self._thread
            self._stopping = True
            self._ready.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._pending or self._stopping)
                if not self._pending:  # stopping, and everything published
                    self._thread = None
                    return
                self._ready.wait_for(
                    lambda: len(self._pending) >= self._batch or self._stopping,
                    timeout=self._linger,
                )
                ids = self._pending[: self._batch]
                del self._pending[: self._batch]
                self._publishing += 1
            try:
                self._publish(ids)
            except Exception:  # publish should not raise; never let the thread die
                logger.exception("publishing %d deliveries failed; left for the sweeper", len(ids))
            finally:
                with self._ready:
                    self._publishing -= 1


def _publish_processing(ids: list[int]) -> None:
    """One message for these deliveries; a failure pauses publishing (ingest.broker_backoff)."""
    from integrations import ingest
    from integrations.tasks import deliveries_process_task, delivery_process_task

    if ingest.broker_backoff.active():  # gathered before the broker failed
        logger.warning("broker unavailable; %d deliveries left for the sweeper", len(ids))
        return
    try:
        if len(ids) == 1:
            delivery_process_task.apply_async(args=ids, expires=3600)
        else:
            deliveries_process_task.apply_async(args=[ids], expires=3600)
    except Exception as exc:  # the broker is down or slow: the database rows are the outbox
        ingest.broker_backoff.start(ingest.BROKER_BACKOFF_SECONDS)
        logger.warning(
            "broker unavailable (%s); %d deliveries left for the sweeper (first id %s)",
            type(exc).__name__,
            len(ids),
            ids[0],
        )


processing_publisher = ProcessingPublisher(_publish_processing)
