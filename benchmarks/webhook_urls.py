"""Benchmark-only URLs: the whole site, plus the bare baseline view at /bench/bare/.

The bare view is what the webhook benchmark compares the real hook with: a plain Django
view (same middleware, same database connection settings) that checks the
`X-Failtrack-Signature` HMAC-SHA256 of the raw body in constant time and inserts one row,
in autocommit, into a table the benchmark creates with raw SQL.
"""

import hashlib
import hmac
import os

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as site_urlpatterns

BARE_TABLE = "bench_bare_delivery"
BARE_TABLE_SQL = f"""
CREATE TABLE {BARE_TABLE} (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    body bytea NOT NULL
)
"""
_SECRET = os.environ.get("BENCH_HOOK_SECRET", "").encode()


@csrf_exempt
def bare_hook(request: HttpRequest) -> JsonResponse:
    """HMAC check over the raw body, one INSERT, a JSON answer: the least a hook can do."""
    if request.method != "POST":
        return JsonResponse({"error": "POST only."}, status=405)
    body = request.body
    given = request.headers.get("X-Failtrack-Signature", "").encode()
    expected = b"sha256=" + hmac.new(_SECRET, body, hashlib.sha256).hexdigest().encode()
    if not _SECRET or not hmac.compare_digest(given, expected):
        return JsonResponse({"error": "Invalid signature."}, status=401)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} (received_at, body) VALUES (now(), %s) RETURNING id",
            [body],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"status": "accepted", "delivery": row_id}, status=202)


urlpatterns = [path("bench/bare/", bare_hook, name="bench-bare"), *site_urlpatterns]
