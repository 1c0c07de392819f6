"""The Celery app and its single beat schedule."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("failtrack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Minutes between two detection scans; read here rather than from Django settings because
# this module is imported while the settings themselves are still loading.
SCAN_INTERVAL_SECONDS = 60.0 * max(1, int(os.environ.get("FAILTRACK_SCAN_INTERVAL_MINUTES", "5")))

app.conf.beat_schedule = {
    # Timers no event announces: stage SLA breaches found from timestamps.
    "failures-detection-scan": {
        "task": "failures.detection_scan",
        "schedule": SCAN_INTERVAL_SECONDS,
        "options": {"expires": SCAN_INTERVAL_SECONDS},
    },
    # Deliveries: drain the database-outage spool, re-queue what a lost task left behind.
    "integrations-deliveries-sweep": {
        "task": "integrations.deliveries_sweep",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Monthly partitions of the event log and the delivery store (PostgreSQL): create the
    # coming months well ahead, so inserts never land in the DEFAULT partition.
    "failures-partitions-ensure": {
        "task": "failures.partitions_ensure",
        "schedule": crontab(hour=2, minute=43),
    },
    # Housekeeping: expired login sessions pile up in the database otherwise.
    "sessions-clear": {
        "task": "failures.sessions_clear",
        "schedule": crontab(hour=3, minute=17),
    },
}
