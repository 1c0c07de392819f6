from django.urls import path

from integrations.beacon import BeaconView
from integrations.views import AtsHookView

app_name = "integrations"

urlpatterns = [
    path("hooks/<str:vendor>/<str:connection_id>/", AtsHookView.as_view(), name="ats-hook"),
    path("beacon/", BeaconView.as_view(), name="beacon"),
]
