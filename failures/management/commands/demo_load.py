"""Load the demo organization (only with DEBUG on)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from failures.demo import demo_load
from failures.progress import Progress


class Command(BaseCommand):
    help = "Load the demo: simulated ATS history for two organizations and one login per role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--applications", type=int, default=400)

    def handle(self, *args: object, **options: object) -> None:
        try:
            progress = Progress(
                int(options["applications"]),
                "loading demo",
                stream=self.stderr,
                unit="applications",
            )
            state = demo_load(
                applications=int(options["applications"]), on_application=progress.advance
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        if state.simulated:
            progress.finish()
            self.stdout.write(
                f"Demo loaded: {state.applications:,} applications, {state.events:,} events."
            )
        else:
            self.stdout.write("Demo already loaded; logins refreshed.")
