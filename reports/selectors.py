"""Aggregations behind the dashboards; every one scoped through failures' selectors."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from failures.choices import PIPELINE_STAGE_CATEGORIES
from failures.models import Organization, Region, StageTransition
from failures.selectors import failure_list, scope_queryset


@dataclass
class WeeklyCategoryCounts:
    """Failures per stage category per week, with applications entering the stage beside."""

    weeks: list[date]
    categories: list[tuple[str, str]]
    # failures[category][i] and entered[category][i] belong to weeks[i]
    failures: dict[str, list[int]] = field(default_factory=dict)
    entered: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total_failures(self) -> int:
        return sum(sum(values) for values in self.failures.values())


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _as_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def failures_per_category_week(
    *,
    user: AbstractBaseUser,
    organization: Organization,
    weeks: int = 12,
    region: Region | None = None,
    now: datetime | None = None,
) -> WeeklyCategoryCounts:
    """Weekly failure counts per stage category for the last `weeks` weeks (ISO weeks)."""
    now = now or timezone.now()
    last_week = _week_start(timezone.localtime(now).date())
    week_list = [last_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    start = timezone.make_aware(datetime.combine(week_list[0], datetime.min.time()))

    failures = failure_list(user=user).filter(organization=organization, occurred_at__gte=start)
    transitions: QuerySet = scope_queryset(
        StageTransition.objects.all(),
        user=user,
        organization="application__organization",
        region="application__job__region",
        team="application__job__team",
        permission="failures.view_dashboard",
    ).filter(application__organization=organization, occurred_at__gte=start)
    if region is not None:
        failures = failures.filter(job__region=region)
        transitions = transitions.filter(application__job__region=region)

    categories = [(c.value, c.label) for c in PIPELINE_STAGE_CATEGORIES]
    index = {week: i for i, week in enumerate(week_list)}
    result = WeeklyCategoryCounts(
        weeks=week_list,
        categories=categories,
        failures={c: [0] * weeks for c, _ in categories},
        entered={c: [0] * weeks for c, _ in categories},
    )
    failure_rows = (
        failures.annotate(week=TruncWeek("occurred_at"))
        .values("week", "definition__stage_category")
        .annotate(n=Count("id"))
    )
    for row in failure_rows:
        i = index.get(_as_date(row["week"]))
        category = row["definition__stage_category"]
        if i is not None and category in result.failures:
            result.failures[category][i] += row["n"]
    entered_rows = (
        transitions.exclude(from_category=F("to_category"))
        .annotate(week=TruncWeek("occurred_at"))
        .values("week", "to_category")
        .annotate(n=Count("application_id", distinct=True))
    )
    for row in entered_rows:
        i = index.get(_as_date(row["week"]))
        if i is not None and row["to_category"] in result.entered:
            result.entered[row["to_category"]][i] += row["n"]
    return result
