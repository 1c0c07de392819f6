from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules, routing, silences and notifications (grows in later issues)."""

    name = "alerts"
    verbose_name = "Alerts"
