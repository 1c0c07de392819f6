"""Benchmark-only experiment: the hook with `delivery_store` as ONE SQL statement.

Not used by the application. Serve it with `benchmarks/webhook_throughput.py --app
benchmarks.webhook_onestatement:application` to measure what storing a delivery costs
today (two ORM inserts in a transaction: four round trips, model and SQL compilation)
against one INSERT ... ON CONFLICT statement in autocommit that writes the dedupe key and
the delivery together. The semantics are those of integrations.ingest.delivery_store:
stored once per (connection, dedupe key) — a concurrent duplicate waits on the unique key,
then inserts nothing —, a reused one-time key refused, processing queued once committed,
any database error left to delivery_accept's spool.
"""

import json
from typing import Any

from django.db import connection, transaction

from config.wsgi import application
from integrations import ingest
from integrations.ats.base import body_sha256
from integrations.models import DeliveryKey, InboundDelivery

__all__ = ["application"]

_DELIVERY = InboundDelivery._meta.db_table
_KEY = DeliveryKey._meta.db_table
_STORE_SQL = f"""
WITH new_delivery AS (
    SELECT nextval(pg_get_serial_sequence('{_DELIVERY}', 'id')) AS id
), stored_key AS (
    INSERT INTO {_KEY} (connection_id, dedupe_key, delivery_id, received_at, body_sha256)
    SELECT %(connection)s, %(key)s, new_delivery.id, %(received_at)s, %(digest)s
    FROM new_delivery
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING delivery_id
)
INSERT INTO {_DELIVERY} (
    id, received_at, organization_id, connection_id, vendor, event_type, dedupe_key, body,
    body_sha256, headers, verified_with, spooled, state, error, attempts, events_recorded,
    event_ids
)
SELECT stored_key.delivery_id, %(received_at)s, %(organization)s, %(connection)s,
       %(vendor)s, %(event_type)s, %(key)s, %(body)s, %(digest)s, %(headers)s::jsonb,
       %(verified_with)s, %(spooled)s, 'received', '', 0, 0, '[]'::jsonb
FROM stored_key
RETURNING id
"""


def delivery_store_one_statement(
    *,
    connection_id: Any,
    organization_id: int,
    vendor: str,
    event_type: str,
    dedupe_key: str,
    body: bytes,
    headers: dict[str, str],
    verified_with: str,
    received_at: Any,
    spooled: bool = False,
    refuse_reused_key: bool = False,
) -> ingest.Receipt:
    digest = body_sha256(body)
    key = ingest.dedupe_key_stored(dedupe_key)
    with connection.cursor() as cursor:
        cursor.execute(
            _STORE_SQL,
            {
                "connection": connection_id,
                "organization": organization_id,
                "vendor": vendor,
                "event_type": ingest._storable(event_type[:120]),
                "key": key,
                "body": body,
                "digest": digest,
                "headers": json.dumps(headers),
                "verified_with": ingest._storable(verified_with[:200]),
                "received_at": received_at,
                "spooled": spooled,
            },
        )
        row = cursor.fetchone()
    if row is None:
        first = DeliveryKey.objects.filter(connection_id=connection_id, dedupe_key=key).first()
        if refuse_reused_key and first.body_sha256 != digest:
            raise ingest.KeyReused(key)
        return ingest.Receipt(delivery_id=first.delivery_id, duplicate=True)
    delivery_id = row[0]
    transaction.on_commit(lambda: ingest.delivery_enqueue(delivery_id))
    return ingest.Receipt(delivery_id=delivery_id)


ingest.delivery_store = delivery_store_one_statement
