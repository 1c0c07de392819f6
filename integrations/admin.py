"""Admin of the integrations app, scoped to the user's organizations like failures' admin."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from failures.admin import ScopedAdmin
from integrations.beacon import tracking_keys_forget
from integrations.models import TrackingKey
from integrations.services import origins_normalize, tracking_key_issue


class TrackingKeyForm(forms.ModelForm):
    """Origins are edited one a line and stored exactly as browsers send them."""

    origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="One origin a line, e.g. https://ats.example.com (no path).",
    )

    class Meta:
        model = TrackingKey
        fields = ["connection", "label", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["origins"].initial = "\n".join(self.instance.allowed_origins or [])

    def clean_origins(self) -> list[str]:
        lines = [line for line in self.cleaned_data["origins"].splitlines() if line.strip()]
        try:
            return origins_normalize(lines)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "origins" in cleaned:
            self.instance.allowed_origins = cleaned["origins"]
        return cleaned


@admin.register(TrackingKey)
class TrackingKeyAdmin(ScopedAdmin):
    form = TrackingKeyForm
    scope_organization = "connection__organization"
    list_display = ["label", "token_prefix", "connection", "organization", "origins", "is_active"]
    list_filter = ["is_active", "connection"]
    search_fields = ["label", "token_prefix"]
    fields = ["connection", "label", "origins", "is_active", "token_prefix", "created_at"]
    readonly_fields = ["token_prefix", "created_at"]
    list_select_related = ["connection__organization"]

    @admin.display(description="Organization")
    def organization(self, obj: TrackingKey) -> str:
        return obj.connection.organization.name

    @admin.display(description="Allowed origins")
    def origins(self, obj: TrackingKey) -> str:
        return format_html_join(", ", "{}", ((origin,) for origin in obj.allowed_origins or []))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk:
            fields.append("connection")  # a key never moves to another organization
        return fields

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[override]
        token = None if change else tracking_key_issue(obj)
        super().save_model(request, obj, form, change)
        tracking_keys_forget()  # a revocation takes effect at once in this process
        if token is not None:
            # The only time the token is shown: only its SHA-256 is kept.
            messages.warning(
                request,
                format_html(
                    "Token of tracking key {}: <code>{}</code> — put it in the ATS page now; "
                    "it will not be shown again.",
                    obj.label,
                    token,
                ),
            )
