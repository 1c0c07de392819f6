"""Pages of the failures app."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from failures.selectors import definition_catalogue


@login_required
@permission_required("failures.view_failuredefinition", raise_exception=True)
def catalogue(request: HttpRequest) -> HttpResponse:
    """Every standard failure code the viewer's organizations use, with its version in force."""
    definitions = definition_catalogue(user=request.user, at=timezone.now())
    several = len({d.organization_id for d in definitions}) > 1
    return render(
        request,
        "failures/catalogue.html",
        {"definitions": definitions, "several_organizations": several},
    )
