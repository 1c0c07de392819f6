from django.apps import AppConfig


class TaxonomyConfig(AppConfig):
    """Root causes, owners, classification and overrides (grows in later issues)."""

    name = "taxonomy"
    verbose_name = "Root-cause taxonomy"
