from rest_framework.routers import SimpleRouter

from failures.api.views import DefinitionViewSet, FailureViewSet

router = SimpleRouter()
router.register("failures", FailureViewSet, basename="failure")
router.register("definitions", DefinitionViewSet, basename="definition")
urlpatterns = router.urls
