from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """The edges: ATS webhook adapters in, ticketing and HR-case connectors out."""

    name = "integrations"
    verbose_name = "Integrations"
