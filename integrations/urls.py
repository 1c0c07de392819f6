from django.urls import path

from integrations.batch import EventBatchView
from integrations.beacon import BeaconView
from integrations.views import AtsHookView

app_name = "integrations"

urlpatterns = [
    path("hooks/<str:vendor>/<str:connection_id>/", AtsHookView.as_view(), name="ats-hook"),
    path("hooks/generic/<str:connection_id>/batch/", EventBatchView.as_view(), name="batch"),
    path("beacon/", BeaconView.as_view(), name="beacon"),
]
