from rest_framework.routers import SimpleRouter

from failures.api.views import FailureViewSet

router = SimpleRouter()
router.register("failures", FailureViewSet, basename="failure")
urlpatterns = router.urls
