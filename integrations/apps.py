from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """The edges: ATS webhook adapters in, ticketing and HR-case connectors out."""

    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations import delivery_admin  # noqa: F401  (registers admin pages)
