"""Simulate a realistic ATS feeding failtrack, recording the failures it causes."""

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from failures.progress import Progress
from failures.simulation import ORGANIZATIONS, SimulationResult, simulate


def parse_until(value: str | None) -> datetime:
    """`--until` as an aware datetime; default: now (to the second, as the simulator works)."""
    if not value:
        return timezone.now().replace(microsecond=0)
    parsed = parse_datetime(value)
    if parsed is None or timezone.is_naive(parsed):
        raise CommandError("--until must be an ISO 8601 timestamp with a time zone.")
    if parsed > timezone.now():
        raise CommandError("--until cannot be in the future.")
    return parsed


class SimulationCommand(BaseCommand):
    """The arguments and the run shared by every command that drives the simulator."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--applications",
            type=int,
            default=1000,
            help="How many applications, 100 to 1,000,000.",
        )
        parser.add_argument(
            "--organizations",
            type=int,
            default=1,
            help=f"How many organizations, 1 to {len(ORGANIZATIONS)}.",
        )

    def validated(self, options: dict[str, Any]) -> tuple[int, int]:
        """(applications, organizations) from the options, or a CommandError naming the bad one."""
        count = int(options["applications"])
        if not 100 <= count <= 1_000_000:
            raise CommandError("--applications must be between 100 and 1,000,000.")
        organizations = int(options["organizations"])
        if not 1 <= organizations <= len(ORGANIZATIONS):
            raise CommandError(f"--organizations must be between 1 and {len(ORGANIZATIONS)}.")
        return count, organizations

    def simulate(self, options: dict[str, Any], *, until: datetime) -> SimulationResult:
        """Run the simulator with a progress bar on stderr."""
        count, organizations = self.validated(options)
        progress = Progress(count, "simulating", stream=self.stderr, unit="applications")
        result = simulate(
            seed=int(options["seed"]),
            applications=count,
            organizations=organizations,
            until=until,
            on_application=progress.advance,
        )
        progress.finish()
        return result


class Command(SimulationCommand):
    help = (
        "Simulate an ATS: organizations, jobs and applications moving through stages, with "
        "withdrawals, rejections, offer declines and stuck applications. Deterministic for a "
        "seed and --until. Writes its ground truth for detection checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--until", help="End of the simulated history (default: now).")

    def handle(self, *args: object, **options: Any) -> None:
        self.validated(options)
        until = parse_until(options["until"])
        result = self.simulate(options, until=until)
        truths = ", ".join(f"{code}: {n}" for code, n in sorted(result.truths.items())) or "none"
        self.stdout.write(
            f"Simulated {result.applications:,} applications ({result.events:,} events) "
            f"until {until.isoformat()}. Failures caused — {truths}."
        )
