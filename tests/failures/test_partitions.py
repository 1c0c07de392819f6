"""Monthly partitions of the event log and the delivery store (PostgreSQL)."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.urls import reverse
from django.utils import timezone

from config.celery import app
from failures.models import EventKey, RecruitingEvent, StageTransition
from failures.partitions import (
    PartitionError,
    month_of,
    partition_drop,
    partition_list,
    partition_months_ensure,
    partitions_drop_before,
    partitions_ensure,
    table_partition_by_month,
    table_unpartition,
)
from failures.services import event_record
from failures.tasks import partitions_ensure_task
from integrations.ingest import delivery_store
from integrations.models import DeliveryKey, InboundDelivery

pytestmark = pytest.mark.skipif(
    db.vendor != "postgresql", reason="partitioning exists on PostgreSQL only"
)

EVENTS = "failures_recruitingevent"
DELIVERIES = "integrations_inbounddelivery"
# A month far from the real clock, so the partitions made here are the tests' own.
FUTURE = datetime(2031, 5, 10, 12, 0, tzinfo=UTC)


def _partition_of(table: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        row = cursor.fetchone()
    return row[0] if row else ""


def _names(table: str) -> set[str]:
    return {p.name for p in partition_list(table)}


def _event_row(connection, occurred_at: datetime, event_id: str) -> RecruitingEvent:
    """An event row straight through the ORM (the way bulk paths write), with its key."""
    row = RecruitingEvent.objects.create(
        organization=connection.organization,
        connection=connection,
        event_id=event_id,
        kind="job.updated",
        occurred_at=occurred_at,
        payload={"id": event_id},
    )
    EventKey.objects.create(
        connection=connection, event_id=event_id, event_pk=row.pk, occurred_at=occurred_at
    )
    return row


def _delivery(connection, received_at: datetime, key: str) -> int:
    receipt = delivery_store(
        connection_id=connection.pk,
        organization_id=connection.organization_id,
        vendor=connection.vendor,
        event_type="application.created",
        dedupe_key=key,
        body=b'{"id": "%s"}' % key.encode(),
        headers={"Content-Type": "application/json"},
        verified_with="test",
        received_at=received_at,
    )
    return receipt.delivery_id


def _event_at(make_event, moment: datetime, **overrides):
    at = moment.isoformat().replace("+00:00", "Z")
    applied = (moment - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    return make_event(occurred_at=at, application={"applied_at": applied}, **overrides)


# --- After migrate ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "column"), [(EVENTS, "occurred_at"), (DELIVERIES, "received_at")]
)
def test_the_tables_are_partitioned_by_month_after_migrate(table, column):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
            "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
            "WHERE p.partrelid = to_regclass(%s)",
            [table],
        )
        assert cursor.fetchone() == ("r", column)
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'p'",
            [table],
        )
        assert cursor.fetchone()[0] == f"PRIMARY KEY (id, {column})"
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%brin%%'",
            [table],
        )
        assert cursor.fetchone()[0].endswith(f"USING brin ({column})")
    partitions = partition_list(table)
    assert partitions[-1].name == f"{table}_default"
    assert partitions[-1].month is None


@pytest.mark.django_db
def test_no_database_foreign_key_points_at_the_event_log():
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE confrelid = to_regclass(%s)", [EVENTS]
        )
        assert cursor.fetchone()[0] == 0
    field = StageTransition._meta.get_field("event")
    assert field.db_constraint is False
    assert field.remote_field.on_delete.__name__ == "SET_NULL"


# --- Inserts ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_recorded_events_and_stored_deliveries_land_in_their_month(connection, make_event):
    partitions_ensure()
    now = timezone.now()
    result = event_record(connection=connection, payload=_event_at(make_event, now))
    delivery_id = _delivery(connection, now, "this-month")

    month = f"p{now:%Y_%m}"
    assert _partition_of(EVENTS, result.event.pk) == f"{EVENTS}_{month}"
    assert _partition_of(DELIVERIES, delivery_id) == f"{DELIVERIES}_{month}"
    assert RecruitingEvent.objects.get(pk=result.event.pk).event_id == result.event.event_id
    assert InboundDelivery.objects.get(pk=delivery_id).dedupe_key == "this-month"


@pytest.mark.django_db
def test_rows_outside_the_prepared_months_go_to_default_and_are_never_refused(connection):
    far_future = datetime(2099, 7, 1, tzinfo=UTC)
    far_past = datetime(1999, 1, 1, tzinfo=UTC)
    future_event = _event_row(connection, far_future, "future")
    past_event = _event_row(connection, far_past, "past")
    delivery_id = _delivery(connection, far_past, "old")

    assert _partition_of(EVENTS, future_event.pk) == f"{EVENTS}_default"
    assert _partition_of(EVENTS, past_event.pk) == f"{EVENTS}_default"
    assert _partition_of(DELIVERIES, delivery_id) == f"{DELIVERIES}_default"


# --- Creating months ahead ----------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_creates_this_month_and_the_next_ones_once():
    created = partitions_ensure(months_ahead=3, now=FUTURE)

    months = ["2031_05", "2031_06", "2031_07", "2031_08"]
    assert sorted(p.name for p in created) == sorted(
        f"{table}_p{month}" for table in (EVENTS, DELIVERIES) for month in months
    )
    for table in (EVENTS, DELIVERIES):
        assert {f"{table}_p{month}" for month in months} <= _names(table)
    assert f"{EVENTS}_p2031_09" not in _names(EVENTS)
    assert partitions_ensure(months_ahead=3, now=FUTURE) == []


@pytest.mark.django_db
def test_the_new_month_takes_its_rows_out_of_default(connection):
    stray = _event_row(connection, datetime(2031, 6, 15, tzinfo=UTC), "stray")
    backfilled = _event_row(connection, datetime(2019, 2, 3, tzinfo=UTC), "backfilled")
    delivery_id = _delivery(connection, datetime(2031, 7, 1, tzinfo=UTC), "early")
    assert _partition_of(EVENTS, stray.pk) == f"{EVENTS}_default"

    created = {p.name: p.moved_from_default for p in partitions_ensure(now=FUTURE)}

    assert created[f"{EVENTS}_p2031_06"] == 1
    assert created[f"{EVENTS}_p2019_02"] == 1  # a month of a backfill gets its own partition
    assert created[f"{DELIVERIES}_p2031_07"] == 1
    assert _partition_of(EVENTS, stray.pk) == f"{EVENTS}_p2031_06"
    assert _partition_of(EVENTS, backfilled.pk) == f"{EVENTS}_p2019_02"
    assert _partition_of(DELIVERIES, delivery_id) == f"{DELIVERIES}_p2031_07"
    assert RecruitingEvent.objects.filter(pk__in=[stray.pk, backfilled.pk]).count() == 2


@pytest.mark.django_db
def test_a_backfill_can_prepare_its_months_so_rows_skip_default(connection):
    months = [date(2018, 1, 1), date(2018, 2, 14)]

    created = partition_months_ensure(EVENTS, months)
    row = _event_row(connection, datetime(2018, 2, 28, 23, 0, tzinfo=UTC), "backfill")

    assert [p.name for p in created] == [f"{EVENTS}_p2018_01", f"{EVENTS}_p2018_02"]
    assert _partition_of(EVENTS, row.pk) == f"{EVENTS}_p2018_02"
    assert partition_months_ensure(EVENTS, months) == []
    assert f"{DELIVERIES}_p2018_01" not in _names(DELIVERIES)
    with pytest.raises(PartitionError, match="not a monthly partitioned table"):
        partition_months_ensure("failures_application", months)


@pytest.mark.django_db
def test_the_daily_task_is_scheduled_and_ensures_the_months():
    entry = app.conf.beat_schedule["failures-partitions-ensure"]
    assert entry["task"] == partitions_ensure_task.name == "failures.partitions_ensure"

    partitions_ensure_task()

    current = month_of(timezone.now())
    for table in (EVENTS, DELIVERIES):
        assert f"{table}_p{current:%Y_%m}" in _names(table)


# --- Retention ----------------------------------------------------------------------------


@pytest.fixture
def two_old_months(connection, make_event):
    """Events (recorded, with a stage transition) and deliveries in March and April 2019."""
    march = event_record(
        connection=connection,
        payload=_event_at(make_event, datetime(2019, 3, 5, tzinfo=UTC), id="evt-march"),
    ).event
    april = event_record(
        connection=connection,
        payload=_event_at(make_event, datetime(2019, 4, 5, tzinfo=UTC), id="evt-april"),
    ).event
    deliveries = {
        "march": _delivery(connection, datetime(2019, 3, 31, 23, 59, tzinfo=UTC), "d-march"),
        "april": _delivery(connection, datetime(2019, 4, 1, tzinfo=UTC), "d-april"),
    }
    partitions_ensure()
    return march, april, deliveries


@pytest.mark.django_db
def test_dropping_a_month_removes_exactly_its_rows_and_keys(connection, two_old_months):
    march, april, deliveries = two_old_months
    transition = StageTransition.objects.get(event_id=march.pk)

    dropped = partition_drop(EVENTS, date(2019, 3, 1))

    assert (dropped.rows, dropped.keys, dropped.references) == (1, 1, 1)
    assert list(RecruitingEvent.objects.filter(connection=connection)) == [april]
    assert set(EventKey.objects.values_list("event_id", flat=True)) == {"evt-april"}
    transition.refresh_from_db()
    assert transition.event_id is None  # as on_delete=SET_NULL would have left it
    assert f"{EVENTS}_p2019_03" not in _names(EVENTS)
    # The delivery store keeps its March: each table drops its own months.
    assert InboundDelivery.objects.filter(pk=deliveries["march"]).exists()

    partition_drop(DELIVERIES, date(2019, 3, 1))
    assert list(InboundDelivery.objects.values_list("pk", flat=True)) == [deliveries["april"]]
    assert list(DeliveryKey.objects.values_list("dedupe_key", flat=True)) == ["d-april"]


@pytest.mark.django_db
def test_dedupe_still_holds_for_kept_months_and_a_dropped_month_starts_afresh(
    connection, make_event, two_old_months
):
    march, april, _ = two_old_months
    partition_drop(EVENTS, date(2019, 3, 1))
    partition_drop(DELIVERIES, date(2019, 3, 1))

    again_april = event_record(
        connection=connection,
        payload=_event_at(make_event, datetime(2019, 4, 5, tzinfo=UTC), id="evt-april"),
    )
    assert again_april.created is False
    assert again_april.event.pk == april.pk
    assert delivery_store_duplicate(connection, "d-april", datetime(2019, 4, 1, tzinfo=UTC))

    again_march = event_record(
        connection=connection,
        payload=_event_at(make_event, datetime(2019, 3, 5, tzinfo=UTC), id="evt-march"),
    )
    assert again_march.created is True
    assert again_march.event.pk != march.pk  # ids are never reused
    assert _partition_of(EVENTS, again_march.event.pk) == f"{EVENTS}_default"


def delivery_store_duplicate(connection, key: str, received_at: datetime) -> bool:
    receipt = delivery_store(
        connection_id=connection.pk,
        organization_id=connection.organization_id,
        vendor=connection.vendor,
        event_type="application.created",
        dedupe_key=key,
        body=b'{"id": "%s"}' % key.encode(),
        headers={},
        verified_with="test",
        received_at=received_at,
    )
    return receipt.duplicate


@pytest.mark.django_db
def test_retention_refuses_the_current_month():
    current = month_of(timezone.now())
    with pytest.raises(PartitionError, match="current month"):
        partition_drop(EVENTS, current)
    with pytest.raises(PartitionError, match="current month"):
        partitions_drop_before(date(current.year + 1, 1, 1))
    assert f"{EVENTS}_p{current:%Y_%m}" in _names(EVENTS)


@pytest.mark.django_db
def test_drop_before_also_removes_old_rows_left_in_default(connection):
    old = _event_row(connection, datetime(2001, 1, 1, tzinfo=UTC), "old")
    kept = _event_row(connection, datetime(2099, 1, 1, tzinfo=UTC), "kept")

    dropped = partitions_drop_before(date(2002, 1, 1))

    assert [(d.partition, d.rows, d.keys) for d in dropped] == [(f"{EVENTS}_default", 1, 1)]
    assert list(RecruitingEvent.objects.filter(pk__in=[old.pk, kept.pk])) == [kept]
    assert list(EventKey.objects.values_list("event_id", flat=True)) == ["kept"]


# --- The command --------------------------------------------------------------------------


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("partitions", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_shows_what_it_would_drop_and_drops_only_with_yes(two_old_months):
    march, april, _ = two_old_months

    shown = _command("--drop-before", "2019-04")
    assert f"would drop {EVENTS}_p2019_03 (month 2019-03): 1 rows" in shown
    assert f"would drop {DELIVERIES}_p2019_03 (month 2019-03): 1 rows" in shown
    assert "p2019_04" not in shown
    assert RecruitingEvent.objects.filter(pk=march.pk).exists()

    done = _command("--drop-before", "2019-04", "--yes")
    assert f"dropped {EVENTS}_p2019_03 (month 2019-03): 1 rows, 1 dedupe keys" in done
    assert not RecruitingEvent.objects.filter(pk=march.pk).exists()
    assert RecruitingEvent.objects.filter(pk=april.pk).exists()


@pytest.mark.django_db
def test_the_command_lists_ensures_and_refuses_bad_months():
    _command("--ensure", "--months-ahead", "1")
    assert "0 partition(s) created" in _command("--ensure", "--months-ahead", "1")
    listing = _command("--list")
    current = month_of(timezone.now())
    assert f"{EVENTS}_p{current:%Y_%m}" in listing
    assert f"{DELIVERIES}_default" in listing
    with pytest.raises(CommandError, match="YYYY-MM"):
        _command("--drop-before", "2019-13")
    with pytest.raises(CommandError, match="current month"):
        _command("--drop-before", f"{current.year + 1}-01", "--yes")


# --- The admin ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_and_shows_events_and_deliveries(client, superuser, two_old_months):
    _, april, deliveries = two_old_months
    client.force_login(superuser)

    events = client.get(reverse("admin:failures_recruitingevent_changelist"))
    assert events.status_code == 200
    assert "evt-april" in events.content.decode()
    assert (
        client.get(reverse("admin:failures_recruitingevent_change", args=[april.pk])).status_code
        == 200
    )
    by_month = client.get(
        reverse("admin:failures_recruitingevent_changelist"),
        {"occurred_at__year": "2019", "occurred_at__month": "3"},
    )
    assert by_month.status_code == 200 and "evt-march" in by_month.content.decode()

    assert admin.site.is_registered(InboundDelivery)
    listing = client.get(reverse("admin:integrations_inbounddelivery_changelist"))
    assert listing.status_code == 200
    detail = client.get(
        reverse("admin:integrations_inbounddelivery_change", args=[deliveries["april"]])
    )
    assert detail.status_code == 200


# --- Converting a table that has rows (what the migrations do) ----------------------------


def _probe_table() -> list[int]:
    """A plain table shaped like ours (identity id, FK, index, check), with rows; their ids."""
    with db.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE partition_probe (id bigint GENERATED BY DEFAULT AS IDENTITY "
            "PRIMARY KEY, at timestamptz NOT NULL, n integer NOT NULL CHECK (n >= 0), "
            "organization_id bigint REFERENCES failures_organization (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        cursor.execute("CREATE INDEX partition_probe_n_at ON partition_probe (n, at)")
        cursor.execute(
            "INSERT INTO partition_probe (at, n) VALUES "
            "('2019-03-31 23:59:59+00', 1), ('2019-04-01 00:00:00+00', 2), "
            "('2019-04-20 00:00:00+00', 3) RETURNING id"
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("DELETE FROM partition_probe WHERE id = %s", [ids[-1]])
    return ids


def _probe_rows() -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, id, n FROM partition_probe ORDER BY id")
        return cursor.fetchall()


@pytest.mark.django_db
def test_a_table_with_rows_is_converted_in_place_and_back():
    first, second, deleted = _probe_table()

    with db.schema_editor() as editor:
        table_partition_by_month(editor, table="partition_probe", column="at", months_ahead=0)

    assert _probe_rows() == [
        ("partition_probe_p2019_03", first, 1),
        ("partition_probe_p2019_04", second, 2),
    ]
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO partition_probe (at, n) VALUES (now(), 4) RETURNING id")
        assert cursor.fetchone()[0] > deleted  # the identity carries on; no id is reused
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'partition_probe' ORDER BY 1"
        )
        assert [r[0] for r in cursor.fetchall()] == [
            "partition_probe_at_brin",
            "partition_probe_n_at",
            "partition_probe_pkey",
        ]
        cursor.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'partition_probe'::regclass ORDER BY contype"
        )
        constraints = dict(cursor.fetchall())
        assert constraints["p"] == "PRIMARY KEY (id, at)"
        assert constraints["c"] == "CHECK ((n >= 0))"
        assert constraints["f"].startswith("FOREIGN KEY (organization_id) REFERENCES")
        with pytest.raises(IntegrityError, match="check constraint"), transaction.atomic():
            cursor.execute("INSERT INTO partition_probe (at, n) VALUES (now(), -1)")

    with db.schema_editor() as editor:
        table_unpartition(editor, table="partition_probe")

    rows = _probe_rows()
    assert {table for table, _, _ in rows} == {"partition_probe"}
    assert [n for _, _, n in rows] == [1, 2, 4]
    with db.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'partition_probe'")
        assert cursor.fetchone()[0] == "r"


@pytest.mark.django_db
def test_a_table_that_a_foreign_key_points_at_is_not_converted():
    _probe_table()
    with db.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE partition_probe_ref (probe_id bigint REFERENCES partition_probe (id))"
        )
    with (
        pytest.raises(RuntimeError, match="foreign keys point at it"),
        db.schema_editor() as editor,
    ):
        table_partition_by_month(editor, table="partition_probe", column="at")
