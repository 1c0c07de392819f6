"""Forms of the failures app."""

from django import forms

from failures.choices import FailureStatus
from failures.models import Membership


class MembershipAdminForm(forms.ModelForm):
    """Membership form that keeps region and team limits inside the organization."""

    class Meta:
        model = Membership
        fields = ["user", "organization", "role", "regions", "teams"]

    def clean(self) -> dict:
        cleaned = super().clean()
        organization = cleaned.get("organization")
        for name in ("regions", "teams"):
            for item in cleaned.get(name) or []:
                if organization is not None and item.organization_id != organization.pk:
                    self.add_error(name, f"{item} belongs to another organization.")
        return cleaned


class FailureStatusForm(forms.Form):
    """Change the status of one or more failures, with the reason that goes into history."""

    status = forms.ChoiceField(choices=FailureStatus.choices)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Recorded in the failure's history with your name.",
    )
