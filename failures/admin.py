"""Admin of the failures app: governance and configuration, scoped to the user's tenants."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from failures import services
from failures.forms import FailureStatusForm, MembershipAdminForm
from failures.models import (
    Application,
    AtsConnection,
    Candidate,
    ConnectionSecret,
    DefinitionVersion,
    Failure,
    FailureDefinition,
    Job,
    Membership,
    Organization,
    RecruitingEvent,
    Region,
    SimulationTruth,
    StageMapping,
    StageTransition,
    Team,
    new_connection_secret,
)
from failures.selectors import organization_list, scope_queryset

admin.site.site_header = "failtrack governance"
admin.site.site_title = "failtrack"
admin.site.index_title = "Governance and configuration"


class ScopedAdmin(SimpleHistoryAdmin):
    """Admin whose lists, pages and choices only ever show the user's organizations.

    A row is visible where the user's role *in that row's organization* grants the model's
    view permission, and editable where it grants the change permission.
    """

    # Lookup paths from the model to its organization, region and team.
    scope_organization = "organization"
    scope_region: str | None = None
    scope_team: str | None = None

    def _permission(self, action: str) -> str:
        opts = self.model._meta
        return f"{opts.app_label}.{action}_{opts.model_name}"

    def _scope(self, request: HttpRequest, queryset: QuerySet, action: str) -> QuerySet:
        return scope_queryset(
            queryset,
            user=request.user,
            organization=self.scope_organization,
            region=self.scope_region,
            team=self.scope_team,
            permission=self._permission(action),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self._scope(request, super().get_queryset(request), "view")

    def _in_scope(self, request: HttpRequest, obj: Any, action: str) -> bool:
        base = self.model._default_manager.filter(pk=obj.pk)
        return self._scope(request, base, action).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        if allowed and obj is not None and obj.pk is not None:
            return self._in_scope(request, obj, "change")
        return allowed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        if allowed and obj is not None and obj.pk is not None:
            return self._in_scope(request, obj, "delete")
        return allowed

    def _object_or_404(self, request: HttpRequest, object_id: str) -> Any:
        obj = self.get_queryset(request).filter(pk=unquote(object_id)).first()
        if obj is None:
            raise Http404("No such object.")
        return obj

    def history_view(self, request, object_id, extra_context=None):  # type: ignore[override]
        # simple_history falls back to the newest history row of *any* object id; refuse
        # objects outside the user's scope before it gets the chance.
        self._object_or_404(request, object_id)
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):  # type: ignore[override]
        # Reverting through history would bypass services and scoping: history is read-only.
        self._object_or_404(request, object_id)
        if request.method != "GET":
            raise PermissionDenied("History is read-only; change the object itself.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_list_filter(self, request: HttpRequest) -> list:
        # Django's related-field filter offers every row of the related table; offer only
        # the values present in the user's (scoped) rows, so no tenant's names leak.
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                field = get_fields_from_path(self.model, item)[-1]
                if field.is_relation:
                    item = (item, admin.RelatedOnlyFieldListFilter)
            filters.append(item)
        return filters

    def _scope_related(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # Choices for a form: only organizations where the user may change this model.
        permission = self._permission("change")
        model = queryset.model
        if model is Organization:
            return organization_list(user=request.user, permission=permission)
        field_names = {f.name for f in model._meta.get_fields()}
        if "organization" in field_names:
            return scope_queryset(queryset, user=request.user, permission=permission)
        if "definition" in field_names:
            return scope_queryset(
                queryset,
                user=request.user,
                organization="definition__organization",
                permission=permission,
            )
        return queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[override]
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = self._scope_related(request, formfield.queryset)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[override]
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = self._scope_related(request, formfield.queryset)
        return formfield


class ReadOnlyAdmin(ScopedAdmin):
    """Mirror data comes from the ATS: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Tenancy ---------------------------------------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(ScopedAdmin):
    scope_organization = "pk"
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Region)
class RegionAdmin(ScopedAdmin):
    list_display = ["code", "name", "organization"]
    list_filter = ["organization"]
    search_fields = ["code", "name"]


@admin.register(Team)
class TeamAdmin(ScopedAdmin):
    list_display = ["name", "organization"]
    list_filter = ["organization"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    form = MembershipAdminForm
    list_display = ["user", "organization", "role", "scope"]
    list_filter = ["organization", "role"]
    search_fields = ["user__username"]
    filter_horizontal = ["regions", "teams"]

    @admin.display(description="Scope")
    def scope(self, obj: Membership) -> str:
        limits = [r.code for r in obj.regions.all()] + [t.name for t in obj.teams.all()]
        return ", ".join(limits) or "Whole organization"

    def save_related(self, request, form, formsets, change) -> None:  # type: ignore[override]
        super().save_related(request, form, formsets, change)
        services.user_roles_sync(user=form.instance.user)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        user = obj.user
        super().delete_model(request, obj)
        services.user_roles_sync(user=user)


# --- Connections and vocabulary ----------------------------------------------------------------


class AtsConnectionForm(forms.ModelForm):
    """A connection, with a write-only field for adding a signing secret."""

    new_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        label="New signing secret",
        help_text="Paste the secret the ATS shows you (Lever's signature token, the key you "
        "typed into Greenhouse or Ashby …). Leave blank on a new connection to generate one, "
        "shown once. Secrets are encrypted and never shown again; existing ones stay valid "
        "until you revoke them below.",
    )
    new_secret_event_type = forms.CharField(
        required=False,
        max_length=120,
        label="Only for event type",
        help_text="For vendors that sign each event type with its own key; blank: any.",
    )

    class Meta:
        model = AtsConnection
        fields = ["organization", "name", "vendor", "is_active"]

    def clean_new_secret(self) -> str:
        secret = self.cleaned_data["new_secret"]
        if secret and not 8 <= len(secret) <= 500:
            raise forms.ValidationError("A signing secret must be 8 to 500 characters.")
        return secret


class ConnectionSecretInline(admin.TabularInline):
    model = ConnectionSecret
    extra = 0
    can_delete = False
    fields = ["label", "event_type", "fingerprint", "created_at", "is_active"]
    readonly_fields = ["label", "event_type", "fingerprint", "created_at"]
    verbose_name_plural = "Signing secrets (untick Active to revoke one)"

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[override]
        return False


@admin.register(AtsConnection)
class AtsConnectionAdmin(ScopedAdmin):
    form = AtsConnectionForm
    inlines = [ConnectionSecretInline]
    list_display = ["name", "organization", "vendor", "is_active", "webhook_url"]
    list_filter = ["organization", "vendor", "is_active"]
    search_fields = ["name"]
    fields = [
        "organization",
        "name",
        "vendor",
        "is_active",
        "webhook_url",
        "new_secret",
        "new_secret_event_type",
    ]
    readonly_fields = ["webhook_url"]

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj: AtsConnection) -> str:
        if not obj.pk:
            return "Shown after saving."
        return reverse(
            "integrations:ats-hook", kwargs={"vendor": obj.vendor, "connection_id": obj.pk}
        )

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[override]
        super().save_model(request, obj, form, change)
        entered = form.cleaned_data.get("new_secret")
        if entered or not change:
            secret = entered or new_connection_secret()
            services.connection_secret_add(
                actor=request.user,
                connection=obj,
                secret=secret,
                event_type=form.cleaned_data.get("new_secret_event_type", ""),
            )
            if not entered:
                # The only time a generated secret is shown: right after it was made.
                messages.warning(
                    request,
                    format_html(
                        "Signing secret of {}: <code>{}</code> — copy it into the ATS now; "
                        "it will not be shown again.",
                        obj.name,
                        secret,
                    ),
                )

    def save_formset(self, request, form, formset, change) -> None:  # type: ignore[override]
        for row in formset.save(commit=False):
            if not row.is_active:
                services.connection_secret_revoke(actor=request.user, secret=row)
            else:
                services.connection_secret_reactivate(actor=request.user, secret=row)
        formset.save_m2m()


@admin.register(StageMapping)
class StageMappingAdmin(ScopedAdmin):
    list_display = ["stage_name", "category", "organization"]
    list_filter = ["organization", "category"]
    search_fields = ["stage_name"]


# --- Pipeline mirror ---------------------------------------------------------------------------


@admin.register(Job)
class JobAdmin(ScopedAdmin):
    scope_region = "region"
    scope_team = "team"
    list_display = ["title", "ats_id", "team", "region", "job_family", "is_strategic"]
    list_filter = ["organization", "region", "team", "is_strategic"]
    search_fields = ["ats_id", "title"]
    readonly_fields = ["organization", "connection", "ats_id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    list_display = ["ats_id", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["ats_id"]


class StageTransitionInline(admin.TabularInline):
    model = StageTransition
    fields = ["occurred_at", "from_stage", "to_stage", "to_category", "actor_role"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    scope_region = "job__region"
    scope_team = "job__team"
    list_display = ["ats_id", "job", "current_stage", "stage_category", "status", "applied_at"]
    list_filter = ["organization", "status", "stage_category", "source"]
    search_fields = ["ats_id", "candidate__ats_id", "job__title", "job__ats_id"]
    list_select_related = ["job"]
    inlines = [StageTransitionInline]
    object_history_template = "admin/failures/application/object_history.html"

    def history_view(self, request, object_id, extra_context=None):  # type: ignore[override]
        # An application's history is its event log and stage transitions, not row copies.
        application = self._object_or_404(request, object_id)
        if not self.has_view_permission(request, application):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "object": application,
            "title": f"History: {application}",
            "transitions": application.transitions.order_by("occurred_at"),
            "events": application.events.order_by("occurred_at"),
        }
        return TemplateResponse(request, self.object_history_template, context)


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdmin):
    scope_organization = "application__organization"
    scope_region = "application__job__region"
    scope_team = "application__job__team"
    list_display = ["application", "from_stage", "to_stage", "to_category", "occurred_at"]
    list_filter = ["to_category"]
    search_fields = ["application__ats_id"]
    list_select_related = ["application"]


@admin.register(RecruitingEvent)
class RecruitingEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "kind", "occurred_at", "received_at", "connection"]
    list_filter = ["organization", "kind", "connection"]
    search_fields = ["event_id", "application__ats_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["connection"]


# --- Definitions and failures ------------------------------------------------------------------


class DefinitionVersionInline(admin.TabularInline):
    model = DefinitionVersion
    fields = ["number", "detector", "parameters", "status", "effective_from", "approved_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FailureDefinition)
class FailureDefinitionAdmin(ScopedAdmin):
    list_display = ["code", "name", "stage_category", "kind", "severity", "owner_role"]
    list_filter = ["organization", "stage_category", "kind", "severity"]
    search_fields = ["code", "name"]
    inlines = [DefinitionVersionInline]


@admin.register(Failure)
class FailureAdmin(ScopedAdmin):
    scope_region = "job__region"
    scope_team = "job__team"
    list_display = [
        "code",
        "application_link",
        "job",
        "stage",
        "status",
        "occurred_at",
        "detected_at",
    ]
    list_filter = [
        "status",
        "definition__stage_category",
        "definition",
        "definition__severity",
        "organization",
        "detected_at",
    ]
    search_fields = ["application__ats_id", "candidate__ats_id", "job__title", "job__ats_id"]
    list_select_related = ["definition", "application", "job"]
    date_hierarchy = "occurred_at"
    actions = ["change_status"]
    readonly_fields = [
        "organization",
        "definition",
        "definition_version",
        "application",
        "candidate",
        "job",
        "dedupe_key",
        "occurred_at",
        "detected_at",
        "status",
        "status_changed_at",
        "status_changed_by",
        "status_reason",
        "details",
    ]

    @admin.display(description="Code", ordering="definition__code")
    def code(self, obj: Failure) -> str:
        return obj.definition.code

    @admin.display(description="Stage", ordering="definition__stage_category")
    def stage(self, obj: Failure) -> str:
        return obj.definition.get_stage_category_display()

    @admin.display(description="Application", ordering="application__ats_id")
    def application_link(self, obj: Failure) -> str:
        url = reverse("admin:failures_application_change", args=[obj.application_id])
        return format_html('<a href="{}">{}</a>', url, obj.application.ats_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # failures are detected, never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # status changes go through the "change status" action and its service

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.has_perm("failures.change_failure_status"):
            actions.pop("change_status", None)
        return actions

    @admin.action(description="Change status of selected failures…")
    def change_status(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if not request.user.has_perm("failures.change_failure_status"):
            raise PermissionDenied
        form = FailureStatusForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            changed, refused = 0, []
            for failure in queryset:
                try:
                    services.failure_transition(
                        actor=request.user,
                        failure=failure,
                        to_status=form.cleaned_data["status"],
                        reason=form.cleaned_data["reason"],
                    )
                    changed += 1
                except (ValidationError, PermissionDenied) as exc:
                    refused.append(f"#{failure.pk}: {'; '.join(_messages_of(exc))}")
            if changed:
                self.message_user(request, f"Changed the status of {changed} failure(s).")
            for line in refused:
                self.message_user(request, line, level=messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Change failure status",
            "opts": self.model._meta,
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/failures/failure/change_status.html", context)


def _messages_of(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [str(m) for m in exc.messages]
    return [str(exc)]


@admin.register(SimulationTruth)
class SimulationTruthAdmin(ReadOnlyAdmin):
    list_display = ["definition_code", "application_ats_id", "occurred_at", "seed"]
    list_filter = ["organization", "definition_code"]
    search_fields = ["application_ats_id"]


# Governance: versions, boards and change requests (kept in their own module).
from failures import governance_admin  # noqa: E402,F401
