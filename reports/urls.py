from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.failures_dashboard, name="failures-dashboard"),
    path("failures.csv", views.failures_dashboard_csv, name="failures-dashboard-csv"),
]
