"""FilterSets shared by the API, pages and reports, so a filter means the same everywhere."""

from datetime import UTC, datetime

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from failures.choices import PIPELINE_STAGE_CATEGORIES, FailureStatus
from failures.models import Failure


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 timestamp, converted to UTC before it reaches the database.

    Python accepts offsets up to ±23:59 while PostgreSQL refuses those beyond ±15:59 (a
    500 found by the schemathesis run); in UTC every offset is fine.
    """

    def to_python(self, value: object) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a date and time within years 1 to 9999.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """IsoDateTimeFilter whose value is in UTC (see UtcIsoDateTimeField)."""

    field_class = UtcIsoDateTimeField


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
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

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
