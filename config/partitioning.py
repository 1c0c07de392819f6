"""Which tables are partitioned by month on PostgreSQL, and what goes with each month.

Kept at the project level so that failures/partitions.py can manage an integrations table
without the failures app importing integrations. Plain table and column names only: the
migrations that partition these tables and the code that manages their months read them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class MonthlyTable:
    """A table RANGE-partitioned by the month of `column` (UTC), with a DEFAULT partition."""

    table: str
    column: str
    # The dedupe table whose rows belong to this table's rows, and its copy of `column`:
    # retention deletes the keys of a dropped month with it.
    keys: tuple[str, str] | None = None
    # (table, column) holding this table's ids without a foreign key (none can point at a
    # partitioned table's id alone); retention sets them to NULL, as on_delete=SET_NULL would.
    references: tuple[tuple[str, str], ...] = ()


MONTHLY_TABLES: tuple[MonthlyTable, ...] = (
    # The canonical event log: months of when the event happened, the time the mirror, the
    # detectors and the replay read by, and the age a retention policy counts.
    MonthlyTable(
        table="failures_recruitingevent",
        column="occurred_at",
        keys=("failures_eventkey", "occurred_at"),
        references=(("failures_stagetransition", "event_id"),),
    ),
    # The delivery store: months of arrival.
    MonthlyTable(
        table="integrations_inbounddelivery",
        column="received_at",
        keys=("integrations_deliverykey", "received_at"),
    ),
)
