"""Monthly partitions of the high-volume tables on PostgreSQL: made ahead, listed, dropped.

The event log and the delivery store (config/partitioning.py) are RANGE-partitioned by the
month (UTC) of a time column, each with a DEFAULT partition so that no insert ever fails for
want of a month. `partitions_ensure` (a daily task) creates the coming months and moves rows
that landed in DEFAULT into a month of their own; retention drops whole months with their
dedupe keys (`partition_drop`, `partitions_drop_before`). On SQLite the tables stay plain and
these functions do nothing.

The migrations that convert the tables call `table_partition_by_month` and
`table_unpartition`: keep their behaviour stable, as old migrations run them again.
"""

# Table and column names come from config/partitioning.py and the catalog, always quoted;
# values are parameters.
# ruff: noqa: S608

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.utils import timezone

from config.partitioning import MONTHLY_TABLES, MonthlyTable

logger = logging.getLogger(__name__)

MONTHS_AHEAD = 3


class PartitionError(Exception):
    """A partition operation refused: unknown table, current month, missing partition."""


@dataclass(frozen=True)
class Partition:
    """One partition of a monthly table; month is None for the DEFAULT partition."""

    table: str
    name: str
    month: date | None
    bounds: str
    rows_estimate: int | None  # None until PostgreSQL has analysed the partition


@dataclass(frozen=True)
class PartitionCreated:
    """A month partition created by partitions_ensure, and the rows it took from DEFAULT."""

    table: str
    name: str
    month: date
    moved_from_default: int


@dataclass(frozen=True)
class Dropped:
    """Rows removed by retention: a whole month partition, or old rows left in DEFAULT."""

    table: str
    partition: str
    month: date | None
    rows: int
    keys: int | None = None  # dedupe keys deleted with them (None: not dropped yet)
    references: int | None = None  # ids set to NULL where other tables pointed at them


def partitioning_active() -> bool:
    """Whether the database partitions tables (PostgreSQL) or keeps them plain (SQLite)."""
    return connection.vendor == "postgresql"


def month_of(moment: datetime) -> date:
    """The first day of the UTC month holding `moment`."""
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def monthly_table(table: str) -> MonthlyTable:
    for spec in MONTHLY_TABLES:
        if spec.table == table:
            return spec
    raise PartitionError(f"{table} is not a monthly partitioned table.")


# --- Creating months ahead ----------------------------------------------------------------


def partitions_ensure(
    *, months_ahead: int = MONTHS_AHEAD, now: datetime | None = None
) -> list[PartitionCreated]:
    """Create this month and the next `months_ahead` for every monthly table; idempotent.

    Also creates the month of any row found in DEFAULT (a backfill, a clock far off) and moves
    those rows into it, so retention can later drop them with their month.
    """
    if not partitioning_active():
        return []
    current = month_of(now or timezone.now())
    wanted = {month_add(current, n) for n in range(max(0, months_ahead) + 1)}
    created: list[PartitionCreated] = []
    for spec in MONTHLY_TABLES:
        created += _months_ensure(spec, wanted, from_default=True)
    return created


def partition_months_ensure(table: str, months: Iterable[date]) -> list[PartitionCreated]:
    """Create the given months of one monthly table if missing (e.g. before a backfill).

    A bulk import of past events calls this with the months of its file first, so the rows
    go straight into their month instead of through DEFAULT.
    """
    if not partitioning_active():
        return []
    return _months_ensure(monthly_table(table), {date(m.year, m.month, 1) for m in months})


def _months_ensure(
    spec: MonthlyTable, months: set[date], *, from_default: bool = False
) -> list[PartitionCreated]:
    created: list[PartitionCreated] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if not _is_partitioned(cursor, spec.table):
            logger.warning("partitions: %s is not partitioned; skipped", spec.table)
            return []
        _lock(cursor, spec.table)
        existing = {name for name, _, _ in _children(cursor, spec.table)}
        if from_default:
            months = months | _months_in_default(cursor, spec)
        for month in sorted(months):
            name = partition_name(spec.table, month)
            if name in existing:
                continue
            moved = _partition_create(cursor, spec, month)
            logger.info(
                "partition created table=%s partition=%s moved_from_default=%d",
                spec.table,
                name,
                moved,
            )
            created.append(PartitionCreated(spec.table, name, month, moved))
    return created


def _partition_create(cursor: Any, spec: MonthlyTable, month: date) -> int:
    """Create one month, moving its rows out of DEFAULT first; returns the rows moved.

    PostgreSQL refuses a partition whose range has rows in DEFAULT, so the month is built
    as a plain table, filled from DEFAULT, then attached. DEFAULT stays locked meanwhile: an
    insert of that month waits and then lands in the new partition, never in between.
    """
    q = connection.ops.quote_name
    table, column, name = spec.table, spec.column, partition_name(spec.table, month)
    default = default_partition_name(table)
    start, end = month, month_add(month, 1)
    cursor.execute(
        f"CREATE TABLE {q(name)} (LIKE {q(table)} "
        "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
    )
    moved = 0
    if _exists(cursor, default):
        cursor.execute(f"LOCK TABLE {q(default)} IN ACCESS EXCLUSIVE MODE")
        columns = ", ".join(q(c) for c in _columns(cursor, table))
        cursor.execute(
            f"WITH moved AS (DELETE FROM {q(default)} WHERE {q(column)} >= %s "
            f"AND {q(column)} < %s RETURNING {columns}) "
            f"INSERT INTO {q(name)} ({columns}) SELECT {columns} FROM moved",
            [_moment(start), _moment(end)],
        )
        moved = cursor.rowcount
    cursor.execute(
        f"ALTER TABLE {q(table)} ATTACH PARTITION {q(name)} "
        f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    )
    return moved


# --- Listing ------------------------------------------------------------------------------


def partition_list(table: str | None = None) -> list[Partition]:
    """The partitions of one or every monthly table, months in order, DEFAULT last."""
    if not partitioning_active():
        return []
    specs = [monthly_table(table)] if table else list(MONTHLY_TABLES)
    partitions: list[Partition] = []
    with connection.cursor() as cursor:
        for spec in specs:
            rows = []
            for name, bounds, reltuples in _children(cursor, spec.table):
                estimate = None if reltuples < 0 else int(reltuples)
                month = _month_from_name(spec.table, name)
                rows.append(Partition(spec.table, name, month, bounds, estimate))
            rows.sort(key=lambda p: (p.month is None, p.month or date.min, p.name))
            partitions.extend(rows)
    return partitions


# --- Retention ----------------------------------------------------------------------------


def partition_drop(table: str, month: date, *, now: datetime | None = None) -> Dropped:
    """Drop one past month of a monthly table, with its dedupe keys; refuses the current month.

    Ids of the month's rows held elsewhere without a foreign key are set to NULL first, as
    on_delete=SET_NULL would have done.
    """
    spec = monthly_table(table)
    if month >= month_of(now or timezone.now()):
        raise PartitionError(
            f"Refusing to drop {month:%Y-%m} of {table}: it is the current month or later."
        )
    if not partitioning_active():
        raise PartitionError(f"{table} is not partitioned ({connection.display_name}).")
    q = connection.ops.quote_name
    name = partition_name(table, month)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, table)
        if not _exists(cursor, name):
            raise PartitionError(f"{table} has no partition for {month:%Y-%m}.")
        cursor.execute(f"SELECT count(*) FROM {q(name)}")
        rows = cursor.fetchone()[0]
        references = _references_clear(cursor, spec, f"SELECT id FROM {q(name)}", [])
        keys = 0
        if spec.keys:
            key_table, key_column = spec.keys
            cursor.execute(
                f"DELETE FROM {q(key_table)} WHERE {q(key_column)} >= %s AND {q(key_column)} < %s",
                [_moment(month), _moment(month_add(month, 1))],
            )
            keys = cursor.rowcount
        cursor.execute(f"DROP TABLE {q(name)}")
    logger.info(
        "partition dropped table=%s partition=%s rows=%d keys=%d references_cleared=%d",
        table,
        name,
        rows,
        keys,
        references,
    )
    return Dropped(table, name, month, rows, keys, references)


def partitions_drop_before(
    cutoff: date, *, now: datetime | None = None, dry_run: bool = False
) -> list[Dropped]:
    """Retention: drop every month before `cutoff` of every monthly table, and DEFAULT's rows
    from before it, with their dedupe keys. Refuses a cutoff after the current month.

    With dry_run, returns what would go (exact row counts) and changes nothing.
    """
    cutoff = date(cutoff.year, cutoff.month, 1)
    current = month_of(now or timezone.now())
    if cutoff > current:
        raise PartitionError(
            f"Refusing to drop before {cutoff:%Y-%m}: that would drop the current month "
            f"({current:%Y-%m})."
        )
    if not partitioning_active():
        return []
    q = connection.ops.quote_name
    dropped: list[Dropped] = []
    for spec in MONTHLY_TABLES:
        with transaction.atomic(), connection.cursor() as cursor:
            if not _is_partitioned(cursor, spec.table):
                continue
            _lock(cursor, spec.table)
            for partition in partition_list(spec.table):
                if partition.month is None or partition.month >= cutoff:
                    continue
                if dry_run:
                    cursor.execute(f"SELECT count(*) FROM {q(partition.name)}")
                    rows = cursor.fetchone()[0]
                    dropped.append(Dropped(spec.table, partition.name, partition.month, rows))
                else:
                    dropped.append(partition_drop(spec.table, partition.month, now=now))
            old_default = _default_before(cursor, spec, cutoff, dry_run=dry_run)
            if old_default is not None:
                dropped.append(old_default)
    return dropped


def _default_before(
    cursor: Any, spec: MonthlyTable, cutoff: date, *, dry_run: bool
) -> Dropped | None:
    """Delete DEFAULT's rows from before `cutoff`, and every key from before it."""
    q = connection.ops.quote_name
    default = default_partition_name(spec.table)
    if not _exists(cursor, default):
        return None
    column, moment = q(spec.column), _moment(cutoff)
    if dry_run:
        cursor.execute(f"SELECT count(*) FROM {q(default)} WHERE {column} < %s", [moment])
        rows = cursor.fetchone()[0]
        return Dropped(spec.table, default, None, rows) if rows else None
    old_rows = f"SELECT id FROM {q(default)} WHERE {column} < %s"
    references = _references_clear(cursor, spec, old_rows, [moment])
    cursor.execute(f"DELETE FROM {q(default)} WHERE {column} < %s", [moment])
    rows = cursor.rowcount
    keys = 0
    if spec.keys:
        # Every row from before the cutoff is gone now (dropped months and DEFAULT's): a key
        # from then points at nothing.
        key_table, key_column = spec.keys
        cursor.execute(f"DELETE FROM {q(key_table)} WHERE {q(key_column)} < %s", [moment])
        keys = cursor.rowcount
    if not rows and not keys:
        return None
    logger.info(
        "default rows dropped table=%s before=%s rows=%d keys=%d",
        spec.table,
        f"{cutoff:%Y-%m}",
        rows,
        keys,
    )
    return Dropped(spec.table, default, None, rows, keys, references)


def _references_clear(cursor: Any, spec: MonthlyTable, ids_sql: str, params: list) -> int:
    q = connection.ops.quote_name
    cleared = 0
    for ref_table, ref_column in spec.references:
        cursor.execute(
            f"UPDATE {q(ref_table)} SET {q(ref_column)} = NULL "
            f"WHERE {q(ref_column)} IN ({ids_sql})",
            params,
        )
        cleared += cursor.rowcount
    return cleared


# --- Converting a plain table (migrations) ------------------------------------------------


def table_partition_by_month(
    schema_editor: BaseDatabaseSchemaEditor,
    *,
    table: str,
    column: str,
    months_ahead: int = MONTHS_AHEAD,
) -> None:
    """Turn a plain table into one RANGE-partitioned by month of `column`, rows kept.

    Same columns, defaults, checks, identity (its sequence carries on where the old one
    stopped), indexes and outgoing foreign keys; the primary key becomes (id, column). A
    DEFAULT partition, the months that hold rows, this month and `months_ahead` more. Nothing
    on SQLite; nothing if already partitioned.
    """
    db = schema_editor.connection
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        if _is_partitioned(cursor, table):
            return
        q = db.ops.quote_name
        old = _table_rebuild(cursor, q, table, partition_column=column)
        cursor.execute(
            f"CREATE TABLE {q(default_partition_name(table))} PARTITION OF {q(table)} DEFAULT"
        )
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', {q(column)}, 'UTC') FROM {q(old)} "
            f"WHERE {q(column)} IS NOT NULL"
        )
        months = {month_of(row[0]) for row in cursor.fetchall()}
        current = month_of(timezone.now())
        months |= {month_add(current, n) for n in range(months_ahead + 1)}
        for month in sorted(months):
            cursor.execute(
                f"CREATE TABLE {q(partition_name(table, month))} PARTITION OF {q(table)} "
                f"FOR VALUES FROM ({_literal(month)}) TO ({_literal(month_add(month, 1))})"
            )
        _rows_copy(cursor, q, old, table)


def table_unpartition(schema_editor: BaseDatabaseSchemaEditor, *, table: str) -> None:
    """The reverse of table_partition_by_month: one plain table, primary key (id), rows kept."""
    db = schema_editor.connection
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        if not _is_partitioned(cursor, table):
            return
        q = db.ops.quote_name
        old = _table_rebuild(cursor, q, table, partition_column=None)
        _rows_copy(cursor, q, old, table)


def _table_rebuild(cursor: Any, q: Any, table: str, *, partition_column: str | None) -> str:
    """Rename `table` aside and create its successor (partitioned or plain), without rows.

    Returns the name the old table now has; _rows_copy fills the successor and drops it.
    """
    old = f"{table}__old"
    _constraints_settle(cursor)
    cursor.execute(
        "SELECT conname, conrelid::regclass::text FROM pg_constraint "
        "WHERE confrelid = to_regclass(%s) AND contype = 'f' AND conrelid <> confrelid",
        [table],
    )
    pointing = cursor.fetchall()
    if pointing:
        raise RuntimeError(
            f"{table} cannot be rebuilt while foreign keys point at it: "
            + ", ".join(f"{name} on {source}" for name, source in pointing)
        )
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
        [table],
    )
    primary_key = cursor.fetchone()[0]
    brin = f"{table}_{partition_column}_brin" if partition_column else None
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary ORDER BY i.relname",
        [table],
    )
    indexes = [
        (name, definition.replace(" ON ONLY ", " ON "), unique)
        for name, definition, unique in cursor.fetchall()
        if not name.endswith("_brin")
    ]
    if partition_column and any(unique for _, _, unique in indexes):
        raise RuntimeError(
            f"{table} has a unique index; on a partitioned table it would have to include "
            f"{partition_column}. Move the rule to a separate table first."
        )
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY conname",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT a.attidentity FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = 'id'",
        [table],
    )
    identity = cursor.fetchone()[0] != ""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]

    cursor.execute(f"ALTER TABLE {q(table)} RENAME TO {q(old)}")
    cursor.execute(f"ALTER TABLE {q(old)} RENAME CONSTRAINT {q(primary_key)} TO {q(old + '_pk')}")
    cursor.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary",
        [old],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f"DROP INDEX {q(name)}")
    if sequence and identity:
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {q(old + '_id_seq')}")

    partitioning = f" PARTITION BY RANGE ({q(partition_column)})" if partition_column else ""
    cursor.execute(
        f"CREATE TABLE {q(table)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY "
        f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS){partitioning}"
    )
    key = f"id, {q(partition_column)}" if partition_column else "id"
    cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(primary_key)} PRIMARY KEY ({key})")
    for _, definition, _ in indexes:
        cursor.execute(definition)
    if brin:
        cursor.execute(f"CREATE INDEX {q(brin)} ON {q(table)} USING brin ({q(partition_column)})")
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
    if sequence and not identity:
        # A serial column: its sequence changes hands instead of being recreated.
        cursor.execute(f"ALTER SEQUENCE {sequence} OWNED BY {q(table)}.id")
    return old


def _rows_copy(cursor: Any, q: Any, old: str, table: str) -> None:
    """Copy every row from the old table into its successor, carry the ids on, drop the old."""
    columns = ", ".join(q(c) for c in _columns(cursor, table))
    cursor.execute(
        "SELECT a.attidentity FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = 'id'",
        [table],
    )
    identity = cursor.fetchone()[0] != ""
    overriding = " OVERRIDING SYSTEM VALUE" if identity else ""
    cursor.execute(f"INSERT INTO {q(table)} ({columns}){overriding} SELECT {columns} FROM {q(old)}")
    if identity:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [old])
        old_sequence = cursor.fetchone()[0]
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        new_sequence = cursor.fetchone()[0]
        if old_sequence and new_sequence:
            # Ids are never reused: the dedupe tables keep ids of rows since deleted.
            cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")
            last_value, is_called = cursor.fetchone()
            cursor.execute("SELECT setval(%s, %s, %s)", [new_sequence, last_value, is_called])
    _constraints_settle(cursor)
    cursor.execute(f"DROP TABLE {q(old)}")


# --- Catalog ------------------------------------------------------------------------------


def _is_partitioned(cursor: Any, table: str) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _exists(cursor: Any, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
    return bool(cursor.fetchone()[0])


def _children(cursor: Any, table: str) -> list[tuple[str, str, float]]:
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
        [table],
    )
    return cursor.fetchall()


def _columns(cursor: Any, table: str) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _months_in_default(cursor: Any, spec: MonthlyTable) -> set[date]:
    q = connection.ops.quote_name
    default = default_partition_name(spec.table)
    if not _exists(cursor, default):
        return set()
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', {q(spec.column)}, 'UTC') FROM {q(default)}"
    )
    return {month_of(row[0]) for row in cursor.fetchall()}


def _lock(cursor: Any, table: str) -> None:
    """Serialise partition work on one table (two beat runs, an operator's command)."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
    _constraints_settle(cursor)


def _constraints_settle(cursor: Any) -> None:
    """Fire the deferred foreign-key checks pending in this transaction, keep deferring later.

    PostgreSQL refuses to alter or drop a table with pending trigger events (rows written
    earlier in the same transaction); in a fresh transaction this does nothing.
    """
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


_NAME = re.compile(r"_p(\d{4})_(\d{2})$")


def _month_from_name(table: str, name: str) -> date | None:
    match = _NAME.search(name[len(table) :]) if name.startswith(table) else None
    return date(int(match[1]), int(match[2]), 1) if match else None


def _moment(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def _literal(month: date) -> str:
    return f"'{month:%Y-%m-%d} 00:00:00+00'"
