from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Dashboards, rollups and reports."""

    name = "reports"
    verbose_name = "Reports"
