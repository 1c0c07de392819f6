"""Recording a scan's detections in batches on PostgreSQL.

Recording breaches one by one costs a transaction and three statements each (about 90 a
second); a scan over a million waiting applications can find a hundred thousand. Here a
batch is copied into a temporary table and recorded by one statement that inserts the
failures (skipping any already recorded, also by a concurrent webhook) and their history
rows together. The rows are the ones `services.failure_record` writes; a test holds the two
paths to that.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction

from failures.choices import FailureStatus
from failures.detectors import Detection
from failures.models import DefinitionException, DefinitionVersion, Failure
from failures.signals import failures_recorded

BATCH_SIZE = 5000
_FOUND_COLUMNS = [
    "application_id",
    "candidate_id",
    "job_id",
    "dedupe_key",
    "occurred_at",
    "details",
    "status",
    "status_reason",
    "status_changed_at",
]


def batched_recording_available() -> bool:
    """Batches need PostgreSQL (COPY, INSERT ... ON CONFLICT ... RETURNING in a CTE)."""
    return connection.vendor == "postgresql"


class ExceptionBook:
    """A definition's documented exceptions, loaded once per scan, by job."""

    def __init__(self, definition_id: int) -> None:
        self._by_job: dict[int, list[DefinitionException]] = defaultdict(list)
        for exception in DefinitionException.objects.filter(definition_id=definition_id).order_by(
            "-starts_at"
        ):
            self._by_job[exception.job_id].append(exception)

    def reason(self, job_id: int, at: datetime) -> str | None:
        """Same rule as services._documented_exception: the newest covering exception."""
        for exception in self._by_job.get(job_id, ()):
            if exception.starts_at <= at and (exception.ends_at is None or exception.ends_at > at):
                return f"Documented exception: {exception.reason}"
        return None


def _statement(version: DefinitionVersion) -> str:
    history = Failure.history.model._meta
    failure_columns = [f.column for f in Failure._meta.concrete_fields if f.column != "id"]
    values = {
        "organization_id": "%(organization)s",
        "definition_id": "%(definition)s",
        "definition_version_id": "%(version)s",
        "detected_at": "%(detected_at)s",
        "status_changed_by_id": "NULL",
    }
    select = [values.get(column, column) for column in failure_columns]
    history_values = {
        "history_date": "%(detected_at)s",
        "history_change_reason": "%(reason)s",
        "history_type": "'+'",
        "history_user_id": "NULL",
    }
    history_columns = [f.column for f in history.concrete_fields if f.column != "history_id"]
    history_select = [history_values.get(column, column) for column in history_columns]
    return f"""
        WITH recorded AS (
            INSERT INTO {Failure._meta.db_table} ({", ".join(failure_columns)})
            SELECT {", ".join(select)} FROM scan_found
            ON CONFLICT (definition_id, application_id, dedupe_key) DO NOTHING
            RETURNING *
        ), history AS (
            INSERT INTO {history.db_table} ({", ".join(history_columns)})
            SELECT {", ".join(history_select)} FROM recorded
        )
        SELECT id FROM recorded
    """  # noqa: S608 - identifiers come from model metadata, values are parameters


def failures_record_batch(
    *,
    version: DefinitionVersion,
    detections: Iterable[Detection],
    detected_at: datetime,
    exceptions: ExceptionBook,
) -> list[int]:
    """Record a batch of scan detections once each; return the ids of the new failures."""
    definition = version.definition
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS scan_found ("
            "application_id bigint, candidate_id bigint, job_id bigint, "
            "dedupe_key varchar(200), occurred_at timestamptz, details jsonb, "
            "status varchar(20), status_reason text, status_changed_at timestamptz"
            ") ON COMMIT DELETE ROWS"
        )
        cursor.execute("DELETE FROM scan_found")
        with cursor.cursor.copy(
            f"COPY scan_found ({', '.join(_FOUND_COLUMNS)}) FROM STDIN"
        ) as copy:
            for detection in detections:
                exempt = detection.exempt_reason or exceptions.reason(
                    detection.job_id, detection.occurred_at
                )
                copy.write_row(
                    (
                        detection.application_id,
                        detection.candidate_id,
                        detection.job_id,
                        detection.dedupe_key,
                        detection.occurred_at,
                        json.dumps(detection.details),
                        FailureStatus.EXEMPTED if exempt else FailureStatus.OPEN,
                        exempt or "",
                        detected_at if exempt else None,
                    )
                )
        cursor.execute(
            _statement(version),
            {
                "organization": definition.organization_id,
                "definition": definition.pk,
                "version": version.pk,
                "detected_at": detected_at,
                "reason": f"Detected by {definition.code} v{version.number}"[:100],
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            transaction.on_commit(lambda: failures_recorded.send(sender=Failure, failure_ids=ids))
    return ids
