"""FilterSets shared by the API, pages and reports, so a filter means the same everywhere."""

import django_filters

from failures.choices import PIPELINE_STAGE_CATEGORIES, FailureStatus
from failures.models import Failure


class FailureFilterSet(django_filters.FilterSet):
    """Filters over failures."""

    code = django_filters.CharFilter(
        field_name="definition__code", lookup_expr="iexact", help_text="Definition code."
    )
    stage_category = django_filters.ChoiceFilter(
        field_name="definition__stage_category",
        choices=[(c.value, c.label) for c in PIPELINE_STAGE_CATEGORIES],
    )
    status = django_filters.MultipleChoiceFilter(choices=FailureStatus.choices)
    job = django_filters.CharFilter(field_name="job__ats_id", help_text="The job's ATS id.")
    application = django_filters.CharFilter(
        field_name="application__ats_id", help_text="The application's ATS id."
    )
    organization = django_filters.CharFilter(
        field_name="organization__slug", help_text="Organization slug."
    )
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Failure
        fields = [
            "code",
            "stage_category",
            "status",
            "job",
            "application",
            "organization",
            "occurred_after",
            "occurred_before",
        ]
