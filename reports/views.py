"""HRBP dashboards: server-rendered pages with Plotly charts, scoped to the viewer."""

import csv
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from failures.models import Organization, Region
from failures.selectors import organization_list, scope_queryset
from reports.charts import weekly_failures_figure
from reports.forms import DashboardFilterForm
from reports.selectors import WeeklyCategoryCounts, failures_per_category_week


@dataclass
class DashboardQuery:
    """The viewer's validated choice of organization, region and period."""

    organization: Organization
    region: Region | None
    weeks: int
    form: DashboardFilterForm


def _dashboard_query(request: HttpRequest) -> DashboardQuery:
    organizations = organization_list(user=request.user, permission="failures.view_dashboard")
    slug = request.GET.get("organization")
    organization = organizations.filter(slug=slug).first() if slug else organizations.first()
    if organization is None:
        # Another organization's slug, or none at all: nothing to show, and no hint why.
        raise Http404("No such organization.")
    regions = scope_queryset(
        Region.objects.filter(organization=organization),
        user=request.user,
        region="pk",
        permission="failures.view_dashboard",
    )
    data = {"organization": organization.slug, "weeks": 12, **request.GET.dict()}
    form = DashboardFilterForm(data, organizations=organizations, regions=regions)
    if not form.is_valid():
        # Bad filters fall back to the defaults; the form shows what was wrong.
        return DashboardQuery(organization=organization, region=None, weeks=12, form=form)
    return DashboardQuery(
        organization=organization,
        region=form.cleaned_data.get("region"),
        weeks=form.cleaned_data.get("weeks") or 12,
        form=form,
    )


def _counts(request: HttpRequest, query: DashboardQuery) -> WeeklyCategoryCounts:
    return failures_per_category_week(
        user=request.user, organization=query.organization, weeks=query.weeks, region=query.region
    )


@login_required
@permission_required("failures.view_dashboard", raise_exception=True)
def failures_dashboard(request: HttpRequest) -> HttpResponse:
    """Failures per stage category per week."""
    query = _dashboard_query(request)
    counts = _counts(request, query)
    figure = weekly_failures_figure(counts)
    rows = [
        {
            "label": label,
            "failures": sum(counts.failures[category]),
            "entered": sum(counts.entered[category]),
        }
        for category, label in counts.categories
    ]
    return render(
        request,
        "reports/failures_dashboard.html",
        {
            "query": query,
            "form": query.form,
            "counts": counts,
            "rows": rows,
            "figure_json": figure.to_plotly_json(),
        },
    )


@login_required
@permission_required("failures.view_dashboard", raise_exception=True)
def failures_dashboard_csv(request: HttpRequest) -> HttpResponse:
    """The dashboard's numbers as CSV, same scope and filters."""
    query = _dashboard_query(request)
    counts = _counts(request, query)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"failures-{query.organization.slug}-{counts.weeks[-1].isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(["week_start", "stage_category", "failures", "applications_entered"])
    for category, _label in counts.categories:
        for i, week in enumerate(counts.weeks):
            writer.writerow(
                [
                    week.isoformat(),
                    category,
                    counts.failures[category][i],
                    counts.entered[category][i],
                ]
            )
    return response
