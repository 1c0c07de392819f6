"""Admin of governance: definition versions, review boards and change requests.

Every write goes through `failures.governance`; the admin only collects input and shows
state. Approved versions are read-only here, as they are everywhere.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from failures import governance
from failures.admin import ScopedAdmin
from failures.choices import ChangeRequestStatus, ReviewDecision, VersionStatus
from failures.models import (
    BoardMember,
    ChangeRequest,
    ComplianceExclusion,
    DefinitionException,
    DefinitionVersion,
    Review,
    ReviewBoard,
)
from failures.replay import version_replay


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


class DefinitionVersionForm(forms.ModelForm):
    """Draft versions: the detector and its typed parameters, checked as the form is saved."""

    class Meta:
        model = DefinitionVersion
        fields = [
            "definition",
            "detector",
            "parameters",
            "strategic_policy",
            "strategic_multiplier",
            "excluded_reasons",
            "on_reopen",
            "change_summary",
            "compliance_note",
        ]


class ProposeForm(forms.Form):
    """What a proposal needs: from when, and why."""

    effective_from = forms.DateTimeField(
        help_text="When the version takes effect once approved (YYYY-MM-DD HH:MM, UTC).",
        initial=timezone.now,
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)


class RetireForm(forms.Form):
    """Why an approved version is taken out of force."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)


class ReplayForm(forms.Form):
    """The past period a version is replayed over."""

    since = forms.DateTimeField(help_text="Start (YYYY-MM-DD HH:MM, UTC).")
    until = forms.DateTimeField(help_text="End (YYYY-MM-DD HH:MM, UTC).")

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until:
            if until <= since:
                self.add_error("until", "The period must end after it starts.")
            elif until - since > timedelta(days=366):
                self.add_error("since", "Replay at most a year here; use replay_version for more.")
            elif until > timezone.now():
                self.add_error(
                    "until", "A replay looks at the past: the end cannot be later than now."
                )
        return cleaned


class ReviewForm(forms.Form):
    """A board member's vote and the comment that goes with it."""

    decision = forms.ChoiceField(choices=ReviewDecision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


@admin.register(DefinitionVersion)
class DefinitionVersionAdmin(ScopedAdmin):
    form = DefinitionVersionForm
    scope_organization = "definition__organization"
    list_display = ["definition", "number", "detector", "status", "effective_from", "in_force"]
    list_filter = ["status", "detector", "definition__organization"]
    search_fields = ["definition__code", "definition__name"]
    list_select_related = ["definition"]
    actions = ["propose", "retire"]
    frozen_fields = [
        "definition",
        "number",
        "detector",
        "parameters",
        "strategic_policy",
        "strategic_multiplier",
        "excluded_reasons",
        "on_reopen",
        "status",
        "effective_from",
        "approved_at",
        "retired_at",
        "change_summary",
        "compliance_note",
        "created_by",
        "created_at",
    ]

    @admin.display(description="In force", boolean=True)
    def in_force(self, obj: DefinitionVersion) -> bool:
        from failures.selectors import definition_versions_in_force

        current = definition_versions_in_force(
            at=timezone.now(), organization_id=obj.definition.organization_id
        )
        return any(v.pk == obj.pk for v in current)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return list(DefinitionVersionForm.Meta.fields)
        return self.frozen_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        if obj.status == VersionStatus.DRAFT and self.has_change_permission(request, obj):
            return [
                f
                for f in self.frozen_fields
                if f not in DefinitionVersionForm.Meta.fields or f == "definition"
            ]
        return self.frozen_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status != VersionStatus.DRAFT:
            return False  # proposed versions wait for the board; approved ones never change
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status != VersionStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # drafts are deleted one by one, never in bulk
        if not request.user.has_perm("failures.add_definitionversion"):
            actions.pop("propose", None)
        if not request.user.has_perm("failures.change_definitionversion"):
            actions.pop("retire", None)
        return actions

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[override]
        data = form.cleaned_data
        try:
            if change:
                saved = governance.version_draft_update(
                    actor=request.user,
                    version=obj,
                    **{k: v for k, v in data.items() if k != "definition"},
                )
            else:
                saved = governance.version_draft_create(actor=request.user, **data)
        except (ValidationError, PermissionDenied) as exc:
            raise PermissionDenied(_error_text(exc)) from exc
        obj.pk, obj.number, obj.status = saved.pk, saved.number, saved.status

    def _intermediate(self, request, queryset, form, title, action, intro) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/failures/definitionversion/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "intro": intro,
                "opts": self.model._meta,
                "form": form,
                "queryset": queryset,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Propose selected drafts to the review board…")
    def propose(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = ProposeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            for version in queryset:
                try:
                    change_request = governance.version_propose(
                        actor=request.user,
                        version=version,
                        effective_from=form.cleaned_data["effective_from"],
                        reason=form.cleaned_data["reason"],
                    )
                    self.message_user(
                        request, f"{version} proposed: change request #{change_request.pk}."
                    )
                except (ValidationError, PermissionDenied) as exc:
                    self.message_user(request, f"{version}: {_error_text(exc)}", messages.ERROR)
            return None
        return self._intermediate(
            request,
            queryset,
            form,
            "Propose versions",
            "propose",
            "The review board approves or rejects each proposal; approved versions take "
            "effect at the date you give.",
        )

    @admin.action(description="Retire selected approved versions…")
    def retire(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = RetireForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            for version in queryset:
                try:
                    governance.version_retire(
                        actor=request.user, version=version, reason=form.cleaned_data["reason"]
                    )
                    self.message_user(request, f"{version} retired.")
                except (ValidationError, PermissionDenied) as exc:
                    self.message_user(request, f"{version}: {_error_text(exc)}", messages.ERROR)
            return None
        return self._intermediate(
            request,
            queryset,
            form,
            "Retire versions",
            "retire",
            "A retired version never detects again. Failures it recorded keep naming it.",
        )


class BoardMemberInline(admin.TabularInline):
    model = BoardMember
    extra = 1
    autocomplete_fields: list[str] = []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[override]
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user" and not request.user.is_superuser:
            # Only people of the user's own organizations can be seated.
            from failures.selectors import organization_list

            formfield.queryset = formfield.queryset.filter(
                memberships__organization__in=organization_list(user=request.user)
            ).distinct()
        return formfield


@admin.register(ReviewBoard)
class ReviewBoardAdmin(ScopedAdmin):
    list_display = ["name", "organization", "quorum", "voters"]
    inlines = [BoardMemberInline]

    @admin.display(description="Voting members")
    def voters(self, obj: ReviewBoard) -> int:
        return obj.members.filter(can_vote=True).count()


class ReviewInline(admin.TabularInline):
    model = Review
    fields = ["reviewer", "decision", "comment", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ScopedAdmin):
    list_display = [
        "__str__",
        "status",
        "proposed_by",
        "proposed_at",
        "approvals",
        "effective_from",
        "awaits_you",
    ]
    list_filter = ["status", "organization"]
    search_fields = ["version__definition__code", "reason"]
    list_select_related = ["version__definition", "proposed_by"]
    readonly_fields = [
        "organization",
        "version_link",
        "proposed_by",
        "proposed_at",
        "reason",
        "status",
        "decided_at",
        "parameters",
        "change_summary",
    ]
    fields = readonly_fields
    inlines = [ReviewInline]
    change_form_template = "admin/failures/changerequest/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        user = request.user
        seat = BoardMember.objects.filter(
            board__organization_id=OuterRef("organization_id"), user_id=user.pk, can_vote=True
        )
        reviewed = Review.objects.filter(change_request_id=OuterRef("pk"), reviewer_id=user.pk)
        # Built here rather than by ModelAdmin, which orders before "awaits" exists.
        queryset = self._scope(request, self.model._default_manager.all(), "view")
        return queryset.annotate(
            approval_count=Count("reviews", filter=Q(reviews__decision="approve")),
            awaits=Case(
                When(
                    Q(status="open")
                    & ~Q(proposed_by_id=user.pk)
                    & Exists(seat)
                    & ~Exists(reviewed),
                    then=Value(1),
                ),
                default=Value(0),
                output_field=IntegerField(),
            ),
        ).order_by("-awaits", "-proposed_at")

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return ["-awaits", "-proposed_at"]  # what waits for the viewer comes first

    @admin.display(description="Approvals")
    def approvals(self, obj: ChangeRequest) -> str:
        board = ReviewBoard.objects.filter(organization_id=obj.organization_id).first()
        count = getattr(obj, "approval_count", None)
        if count is None:
            count = obj.reviews.filter(decision=ReviewDecision.APPROVE).count()
        return f"{count} of {board.quorum if board else '?'} needed"

    @admin.display(description="Effective from")
    def effective_from(self, obj: ChangeRequest) -> Any:
        return obj.version.effective_from

    @admin.display(description="Awaits your review", boolean=True, ordering="-awaits")
    def awaits_you(self, obj: ChangeRequest) -> bool:
        return bool(getattr(obj, "awaits", 0))

    @admin.display(description="Version")
    def version_link(self, obj: ChangeRequest) -> str:
        url = reverse("admin:failures_definitionversion_change", args=[obj.version_id])
        return format_html('<a href="{}">{}</a> ({})', url, obj.version, obj.version.detector)

    @admin.display(description="Parameters")
    def parameters(self, obj: ChangeRequest) -> Any:
        return obj.version.parameters

    @admin.display(description="Replaces (in force now)")
    def replaces(self, obj: ChangeRequest) -> str:
        from failures.selectors import definition_versions_in_force

        current = [
            v
            for v in definition_versions_in_force(
                at=timezone.now(), organization_id=obj.organization_id
            )
            if v.definition_id == obj.version.definition_id
        ]
        if not current:
            return "Nothing: the definition has no version in force."
        version = current[0]
        return f"v{version.number}: {version.get_detector_display()}, {version.parameters}"

    @admin.display(description="Change summary")
    def change_summary(self, obj: ChangeRequest) -> str:
        return obj.version.change_summary

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a change request is opened by proposing a version

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decided by reviews, not edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="failures_changerequest_review",
            ),
            path(
                "<path:object_id>/replay/",
                self.admin_site.admin_view(self.replay_view),
                name="failures_changerequest_replay",
            ),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The proposed version replayed over a past period, beside the version in force."""
        obj = self._object_or_404(request, unquote(object_id))
        form = ReplayForm(request.GET or None)
        result = None
        if form.is_valid():
            result = version_replay(
                version=obj.version,
                start=form.cleaned_data["since"],
                end=form.cleaned_data["until"],
                workers=1,  # a web process does not fork; the command uses every CPU
            )
        return TemplateResponse(
            request,
            "admin/failures/changerequest/replay.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Replay of {obj.version}",
                "opts": self.model._meta,
                "original": obj,
                "form": form,
                "result": result,
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[override]
        obj = self._object_or_404(request, object_id)
        can_review = obj in governance.pending_reviews(user=request.user)
        context = {
            **(extra_context or {}),
            "review_form": ReviewForm() if can_review else None,
            "review_url": reverse("admin:failures_changerequest_review", args=[obj.pk]),
            "replay_url": reverse("admin:failures_changerequest_replay", args=[obj.pk]),
            "replay_since": (timezone.now() - timedelta(days=90)).strftime("%Y-%m-%d %H:%M"),
            "replay_until": timezone.now().strftime("%Y-%m-%d %H:%M"),
            "is_proposer": obj.proposed_by_id == request.user.pk,
            "is_open": obj.status == ChangeRequestStatus.OPEN,
        }
        return super().change_view(request, object_id, form_url, context)

    def review_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:failures_changerequest_change", args=[object_id])
            )
        obj = self._object_or_404(request, unquote(object_id))
        change_url = reverse("admin:failures_changerequest_change", args=[obj.pk])
        if "withdraw" in request.POST:
            try:
                governance.change_request_withdraw(
                    actor=request.user,
                    change_request=obj,
                    reason=request.POST.get("comment", "") or "Withdrawn by the proposer",
                )
                self.message_user(
                    request, "Change request withdrawn; the version is a draft again."
                )
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, _error_text(exc), messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = ReviewForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            self.message_user(request, f"Review not recorded — {errors}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            governance.change_request_review(
                actor=request.user,
                change_request=obj,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
            )
        except (ValidationError, PermissionDenied) as exc:
            self.message_user(request, f"Review not recorded — {_error_text(exc)}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        obj.refresh_from_db()
        self.message_user(
            request,
            f"Review recorded. The change request is {obj.get_status_display().lower()}.",
        )
        return HttpResponseRedirect(change_url)


@admin.register(DefinitionException)
class DefinitionExceptionAdmin(ScopedAdmin):
    """Documented exceptions: jobs where a definition's standard logic does not apply."""

    scope_organization = "definition__organization"
    list_display = ["definition", "job", "starts_at", "ends_at", "reason"]
    list_filter = ["definition"]
    search_fields = ["definition__code", "job__title", "job__ats_id", "reason"]
    list_select_related = ["definition", "job"]
    raw_id_fields = ["job"]
    readonly_fields = ["created_by"]

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[override]
        if not change:
            obj.created_by = request.user
        obj._change_reason = obj.reason[:100]
        super().save_model(request, obj, form, change)


@admin.register(ComplianceExclusion)
class ComplianceExclusionAdmin(ScopedAdmin):
    """How often compliance rules kept a detection from becoming a failure."""

    scope_organization = "version__definition__organization"
    list_display = ["day", "version", "reason", "count"]
    list_filter = ["reason"]
    date_hierarchy = "day"
    list_select_related = ["version__definition"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
