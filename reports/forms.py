"""Forms of the dashboards."""

from django import forms

from failures.models import Organization, Region

WEEK_CHOICES = [(4, "4 weeks"), (12, "12 weeks"), (26, "26 weeks"), (52, "52 weeks")]


class DashboardFilterForm(forms.Form):
    """What the viewer may narrow the dashboard to; choices are already scoped."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label=None,
    )
    region = forms.ModelChoiceField(
        queryset=Region.objects.none(),
        to_field_name="code",
        required=False,
        empty_label="All regions in scope",
    )
    weeks = forms.TypedChoiceField(choices=WEEK_CHOICES, coerce=int, required=False)

    def __init__(self, *args, organizations, regions, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations
        self.fields["region"].queryset = regions
