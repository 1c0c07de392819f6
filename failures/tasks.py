"""Celery tasks of the failures app: thin, named, idempotent, calling services."""

from celery import shared_task
from django.core.management import call_command

from failures.partitions import MONTHS_AHEAD, partitions_ensure
from failures.services import detection_scan


@shared_task(
    name="failures.detection_scan",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=30 * 60,
    soft_time_limit=29 * 60,
)
def detection_scan_task() -> dict:
    """Find failures no event announces (stage SLA breaches). Safe to run twice."""
    result = detection_scan()
    return {"versions": result.versions, "recorded": result.recorded}


@shared_task(name="failures.sessions_clear", acks_late=True, reject_on_worker_lost=True)
def sessions_clear_task() -> None:
    """Delete expired login sessions."""
    call_command("clearsessions")


@shared_task(
    name="failures.partitions_ensure",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=30 * 60,
    soft_time_limit=29 * 60,
)
def partitions_ensure_task(months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the coming months of the partitioned tables (PostgreSQL). Safe to run twice."""
    return [partition.name for partition in partitions_ensure(months_ahead=months_ahead)]
