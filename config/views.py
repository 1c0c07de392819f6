"""Site-wide pages: the home page that points each role where it works, and health."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from failures.selectors import membership_list


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where each role starts: links to what the user may open."""
    return render(
        request, "failtrack/home.html", {"memberships": membership_list(user=request.user)}
    )


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "up"})
