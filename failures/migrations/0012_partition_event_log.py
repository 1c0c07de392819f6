"""Partition the canonical event log by month of occurred_at on PostgreSQL.

Django cannot declare a partitioned table, so the conversion is done here in SQL and Django
keeps seeing one table with the single primary key `id` (the database key is
(id, occurred_at)). A foreign key cannot point at that id alone: the stage transitions'
reference to their event keeps on_delete=SET_NULL in Django but loses its database
constraint. SQLite (the demo) keeps a plain table.
"""

import django.db.models.deletion
from django.db import migrations, models

from failures.partitions import table_partition_by_month, table_unpartition


def partition(apps, schema_editor):
    table_partition_by_month(schema_editor, table="failures_recruitingevent", column="occurred_at")


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table="failures_recruitingevent")


class Migration(migrations.Migration):
    dependencies = [
        ("failures", "0011_event_keys"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stagetransition",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="failures.recruitingevent",
            ),
        ),
        migrations.RunPython(partition, unpartition),
    ]
