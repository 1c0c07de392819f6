"""Admin pages for deliveries and each connection's stage and reason vocabulary.

(Registered from IntegrationsConfig.ready; integrations/admin.py holds the tracking keys.)
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from failures.admin import ScopedAdmin
from integrations.ingest import delivery_replay
from integrations.models import ConnectionReason, ConnectionStage, DeliveryState, InboundDelivery

BODY_PREVIEW_CHARS = 20_000


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(ScopedAdmin):
    """What each ATS sent, as it arrived, and where its processing stands."""

    list_display = [
        "id",
        "received_at",
        "state_label",
        "connection_name",
        "vendor_code",
        "event_type",
        "events_recorded",
    ]
    list_filter = ["state", "vendor", "connection", "spooled", "received_at"]
    search_fields = ["dedupe_key", "event_type"]
    date_hierarchy = "received_at"
    list_select_related = ["connection"]
    actions = ["replay_selected"]
    fields = [
        "received_at",
        "organization",
        "connection",
        "vendor",
        "event_type",
        "dedupe_key",
        "state",
        "error",
        "attempts",
        "processed_at",
        "events_recorded",
        "event_ids",
        "spooled",
        "verified_with",
        "headers_pretty",
        "body_pretty",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("body", "headers")
        return queryset

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retention drops whole months of partitions, never single rows

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[override]
        # A delivery is a record of what arrived: nothing on its page can be saved. (The
        # change permission is what lets operators replay it from the list.)
        extra_context = {
            **(extra_context or {}),
            "title": "Inbound delivery",
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete_link": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Connection", ordering="connection__name")
    def connection_name(self, obj: InboundDelivery) -> str:
        return obj.connection.name

    @admin.display(description="Vendor", ordering="vendor")
    def vendor_code(self, obj: InboundDelivery) -> str:
        return obj.vendor

    @admin.display(description="State", ordering="state")
    def state_label(self, obj: InboundDelivery) -> str:
        colour = {"failed": "#ba2121", "received": "#b36b00"}.get(obj.state, "inherit")
        return format_html('<strong style="color: {}">{}</strong>', colour, obj.state)

    @admin.display(description="Headers (credentials removed)")
    def headers_pretty(self, obj: InboundDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description="Body as received")
    def body_pretty(self, obj: InboundDelivery) -> str:
        raw = bytes(obj.body)
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except ValueError:
            text = raw.decode("utf-8", errors="replace")
        if len(text) > BODY_PREVIEW_CHARS:
            text = text[:BODY_PREVIEW_CHARS] + f"\n… ({len(raw):,} bytes in all)"
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Replay selected failed or ignored deliveries")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        allowed = self._scope(request, queryset, "change")
        outcomes: dict[str, int] = {}
        skipped = 0
        for delivery in allowed.filter(state__in=[DeliveryState.FAILED, DeliveryState.IGNORED]):
            state = delivery_replay(delivery) or "skipped"
            outcomes[state] = outcomes.get(state, 0) + 1
        skipped = queryset.count() - sum(outcomes.values())
        summary = ", ".join(f"{count} {state}" for state, count in sorted(outcomes.items()))
        level = messages.WARNING if outcomes.get(DeliveryState.FAILED) else messages.SUCCESS
        self.message_user(
            request,
            f"Replayed: {summary or 'none'}; {skipped} not failed/ignored or not yours, left.",
            level,
        )


@admin.register(ConnectionStage)
class ConnectionStageAdmin(ScopedAdmin):
    """A connection's own stage ids/names mapped onto our stage categories."""

    scope_organization = "connection__organization"
    list_display = ["ats_stage", "stage_name", "category", "connection"]
    list_filter = ["connection", "category"]
    search_fields = ["ats_stage", "stage_name"]


@admin.register(ConnectionReason)
class ConnectionReasonAdmin(ScopedAdmin):
    """A connection's rejection/archive reasons mapped onto what they mean for us."""

    scope_organization = "connection__organization"
    list_display = ["ats_reason", "reason_name", "outcome", "connection"]
    list_filter = ["connection", "outcome"]
    search_fields = ["ats_reason", "reason_name"]
