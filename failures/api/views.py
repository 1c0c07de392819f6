"""API views of the failures app."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ModelViewPermission
from failures.api.serializers import DefinitionSerializer, FailureSerializer
from failures.filters import FailureFilterSet
from failures.models import Failure, FailureDefinition
from failures.selectors import definition_catalogue, definition_list, failure_list


@extend_schema_view(
    list=extend_schema(
        summary="List failures",
        description="Failures of the caller's organizations (and regions/teams, where "
        "limited); filter by code, stage category, status, job, application, organization "
        "and time of occurrence.",
    ),
    retrieve=extend_schema(summary="One failure"),
)
class FailureViewSet(viewsets.ReadOnlyModelViewSet):
    """Failures of the caller's organizations (and regions/teams, where limited)."""

    serializer_class = FailureSerializer
    filterset_class = FailureFilterSet
    permission_classes = [ModelViewPermission]
    queryset = Failure.objects.none()  # for the permission class; real rows come from below

    def get_queryset(self) -> QuerySet[Failure]:
        return failure_list(user=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="The failure catalogue"),
    retrieve=extend_schema(summary="One failure definition with its version in force"),
)
class DefinitionViewSet(viewsets.ReadOnlyModelViewSet):
    """The failure catalogue: the caller's definitions with the version in force."""

    serializer_class = DefinitionSerializer
    permission_classes = [ModelViewPermission]
    queryset = FailureDefinition.objects.none()
    pagination_class = None  # a catalogue is short and read whole

    def get_queryset(self) -> QuerySet[FailureDefinition]:
        return definition_list(user=self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        definitions = definition_catalogue(user=request.user, at=timezone.now())
        return Response(self.get_serializer(definitions, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        definition = self.get_object()
        by_pk = {d.pk: d for d in definition_catalogue(user=request.user, at=timezone.now())}
        return Response(self.get_serializer(by_pk[definition.pk]).data)
