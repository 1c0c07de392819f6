"""Load the demo's Greenhouse deliveries (only with DEBUG on)."""

from django.core.management.base import BaseCommand, CommandError

from integrations.demo import demo_deliveries
from integrations.models import InboundDelivery


class Command(BaseCommand):
    help = "Send the demo's signed Greenhouse webhooks through the real hook (DEBUG only)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            connection = demo_deliveries()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        states = InboundDelivery.objects.filter(connection=connection).values_list(
            "state", flat=True
        )
        summary = ", ".join(f"{states.filter(state=s).count()} {s}" for s in sorted(set(states)))
        self.stdout.write(f"Demo Greenhouse deliveries: {summary}.")
