"""Celery tasks of the integrations app: take ids, retry safely, the database decides."""

from celery import shared_task
from django.db import DatabaseError

from integrations import ingest


@shared_task(
    name="integrations.delivery_process",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def delivery_process_task(delivery_id: int) -> str | None:
    """Process one stored delivery into canonical events (no-op if already processed)."""
    return ingest.delivery_process(delivery_id)


@shared_task(
    name="integrations.deliveries_process",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def deliveries_process_task(delivery_ids: list[int]) -> dict[str, int]:
    """Process a batch of stored deliveries (the sweeper's re-queued ones)."""
    return ingest.deliveries_process(delivery_ids)


@shared_task(name="integrations.deliveries_sweep", acks_late=True, reject_on_worker_lost=True)
def deliveries_sweep_task() -> dict[str, int]:
    """Drain the spool and re-queue deliveries a lost task left behind."""
    return ingest.deliveries_sweep()
