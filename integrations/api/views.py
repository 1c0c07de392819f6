"""The deliveries API: what each connection sent, and where its processing stands."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ModelViewPermission
from failures.choices import AtsVendor
from failures.filters import UtcIsoDateTimeFilter
from failures.selectors import scope_queryset
from integrations.ingest import delivery_replay
from integrations.models import DeliveryState, InboundDelivery


class DeliverySerializer(serializers.ModelSerializer):
    """A stored delivery: never its body (it may hold a candidate's personal data)."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    connection_name = serializers.CharField(source="connection.name", read_only=True)
    body_bytes = serializers.SerializerMethodField()

    class Meta:
        model = InboundDelivery
        fields = [
            "id",
            "received_at",
            "organization",
            "connection",
            "connection_name",
            "vendor",
            "event_type",
            "dedupe_key",
            "state",
            "error",
            "attempts",
            "processed_at",
            "events_recorded",
            "event_ids",
            "spooled",
            "verified_with",
            "headers",
            "body_bytes",
        ]
        read_only_fields = fields

    def get_body_bytes(self, obj: InboundDelivery) -> int:
        return len(obj.body)


class DeliveryFilterSet(django_filters.FilterSet):
    connection = django_filters.UUIDFilter(field_name="connection_id")
    vendor = django_filters.ChoiceFilter(choices=AtsVendor.choices)
    state = django_filters.ChoiceFilter(choices=DeliveryState.choices)
    event_type = django_filters.CharFilter()
    received_after = UtcIsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = UtcIsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = InboundDelivery
        fields = ["connection", "vendor", "state", "event_type"]


class ReplayPermission(ModelViewPermission):
    """Replaying a delivery changes its state: it needs the change permission."""

    perms_map = {**ModelViewPermission.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


@extend_schema_view(
    list=extend_schema(summary="List deliveries (newest first), filtered"),
    retrieve=extend_schema(summary="One delivery: state, error, events it produced"),
)
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deliveries of the caller's organizations, newest first; filter by connection, vendor,
    state, event type and time."""

    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    permission_classes = [ReplayPermission]
    queryset = InboundDelivery.objects.none()

    def get_queryset(self) -> QuerySet[InboundDelivery]:
        permission = (
            "integrations.change_inbounddelivery"
            if self.action == "replay"
            else "integrations.view_inbounddelivery"
        )
        return scope_queryset(
            InboundDelivery.objects.select_related("organization", "connection").defer("body"),
            user=self.request.user,
            permission=permission,
        ).order_by("-received_at", "-id")

    @extend_schema(
        request=None,
        responses={
            200: DeliverySerializer,
            409: OpenApiResponse(description="Only failed or ignored deliveries are replayed."),
        },
        summary="Process a failed or ignored delivery again (after fixing a mapping)",
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        delivery = self.get_object()
        if delivery.state not in (DeliveryState.FAILED, DeliveryState.IGNORED):
            return Response(
                {"error": f"Delivery is {delivery.state}; only failed or ignored ones replay."},
                status=status.HTTP_409_CONFLICT,
            )
        delivery_replay(delivery)
        delivery.refresh_from_db()
        return Response(self.get_serializer(delivery).data)
