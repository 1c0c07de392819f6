"""Replay a definition version over a past period, writing nothing."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from failures.models import DefinitionVersion
from failures.progress import Progress
from failures.replay import replay_event_count, version_replay


def _moment(value: str | None, name: str):  # type: ignore[no-untyped-def]
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None or timezone.is_naive(parsed):
        raise CommandError(f"--{name} must be an ISO 8601 timestamp with a time zone.")
    return parsed


class Command(BaseCommand):
    help = (
        "Replay a definition version (draft, proposed or approved) over a past period: how "
        "many failures it would flag by stage and team, examples, and the difference from the "
        "version in force. Nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int, help="Id of the definition version.")
        parser.add_argument("--since", help="Start of the period (default: 90 days ago).")
        parser.add_argument("--until", help="End of the period (default: now).")
        parser.add_argument("--examples", type=int, default=5)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes sharing the applications (default: one per CPU).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        version = (
            DefinitionVersion.objects.select_related("definition__organization")
            .filter(pk=options["version"])
            .first()
        )
        if version is None:
            raise CommandError(f"No definition version with id {options['version']}.")
        end = _moment(options["until"], "until") or timezone.now()
        start = _moment(options["since"], "since") or end - timedelta(days=90)
        if end <= start:
            raise CommandError("--until must be after --since.")
        if options["workers"] is not None and options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        total = replay_event_count(version=version, start=start, end=end)
        progress = Progress(total, "replaying", stream=self.stderr, unit="events")
        result = version_replay(
            version=version,
            start=start,
            end=end,
            examples=options["examples"],
            on_event=progress.advance,
            workers=options["workers"],
        )
        progress.finish()
        definition = version.definition
        out = self.stdout
        out.write(
            f"{definition.code} v{version.number} ({version.get_status_display().lower()}) "
            f"over {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
            f"{result.applications:,} applications, {result.events:,} events"
        )
        out.write(
            f"  would flag      {result.replayed.total:>7,}  ({result.replayed.exempted} exempted)"
        )
        if result.in_force is not None:
            out.write(
                f"  v{result.in_force.number} in force flags {result.current.total:>6,}"
                f"  (+{len(result.only_replayed)} / -{len(result.only_current)})"
            )
        for team, count in result.replayed.by_team.most_common():
            out.write(f"    team {team:<24} {count:>7,}")
        for example in result.replayed.examples:
            out.write(
                f"    e.g. {example['application']} at {example['occurred_at']:%Y-%m-%d %H:%M}"
            )
