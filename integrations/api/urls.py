from rest_framework.routers import SimpleRouter

from integrations.api.views import DeliveryViewSet

router = SimpleRouter()
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns = router.urls
