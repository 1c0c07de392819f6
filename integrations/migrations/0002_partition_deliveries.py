"""Partition the delivery store by month of received_at on PostgreSQL.

Django cannot declare a partitioned table, so the conversion is done here in SQL and Django
keeps seeing one table with the single primary key `id` (the database key is
(id, received_at)); dedupe lives in DeliveryKey. SQLite (the demo) keeps a plain table.
"""

from django.db import migrations

from failures.partitions import table_partition_by_month, table_unpartition


def partition(apps, schema_editor):
    table_partition_by_month(
        schema_editor, table="integrations_inbounddelivery", column="received_at"
    )


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table="integrations_inbounddelivery")


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_deliveries"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition),
    ]
