"""API views of the failures app."""

from django.db.models import QuerySet
from rest_framework import viewsets

from config.api import ModelViewPermission
from failures.api.serializers import FailureSerializer
from failures.filters import FailureFilterSet
from failures.models import Failure
from failures.selectors import failure_list


class FailureViewSet(viewsets.ReadOnlyModelViewSet):
    """Failures of the caller's organizations (and regions/teams, where limited)."""

    serializer_class = FailureSerializer
    filterset_class = FailureFilterSet
    permission_classes = [ModelViewPermission]
    queryset = Failure.objects.none()  # for the permission class; real rows come from below

    def get_queryset(self) -> QuerySet[Failure]:
        return failure_list(user=self.request.user)
