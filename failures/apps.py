from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FailuresConfig(AppConfig):
    """Tenancy, the pipeline mirror, failure definitions, detection and the failure log."""

    name = "failures"
    verbose_name = "Failures"

    def ready(self) -> None:
        from failures.roles import roles_bootstrap_after_migrate

        # After every app's migrations: the roles also hold other apps' permissions.
        post_migrate.connect(roles_bootstrap_after_migrate)
