"""Store the deliveries this host spooled while the database was down."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from failures.progress import Progress
from integrations.ingest import DATABASE_DOWN, DrainResult, deliveries_process, spool_drain
from integrations.spool import spool_size


class Command(BaseCommand):
    help = (
        "Store the deliveries in this host's spool (FAILTRACK_SPOOL_DIR) into the database, "
        "oldest first, through the same dedupe as live deliveries; each file is removed once "
        "its delivery is committed. Safe to run again at any time. The sweeper task does the "
        "same on hosts that run a worker; run this on web hosts that do not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, help="Drain at most this many files.")
        parser.add_argument(
            "--process",
            action="store_true",
            help="Also process the drained deliveries here instead of queueing them for a "
            "worker (for hosts without one).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        waiting = spool_size()
        directory = settings.FAILTRACK_SPOOL_DIR
        if not waiting:
            self.stdout.write(f"The spool is empty ({directory}).")
            return
        total = min(waiting, limit) if limit else waiting
        progress = Progress(total, "draining", stream=self.stderr, unit="deliveries")
        outcomes: dict[str, int] = {}

        def advance(outcome: str) -> None:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            progress.advance()

        try:
            result = spool_drain(limit, on_file=advance)
        except DATABASE_DOWN as exc:
            progress.finish()
            done = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
            raise CommandError(
                f"The database is unavailable ({type(exc).__name__}) after "
                f"{done or 'nothing'}; {spool_size()} deliveries stay spooled. Run again later."
            ) from exc
        if result.busy:
            raise CommandError("Another drain holds this spool's lock; nothing was done.")
        progress.finish()
        self._summary(result, directory)
        if options["process"] and result.delivery_ids:
            states = deliveries_process(result.delivery_ids)
            self.stdout.write(
                "Processed: "
                + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
            )

    def _summary(self, result: DrainResult, directory: Any) -> None:
        out = self.stdout
        out.write(
            f"Stored {result.stored}, already stored {result.duplicates}, "
            f"refused (reused one-time key) {result.refused}."
        )
        if result.kept:
            out.write(
                self.style.WARNING(
                    f"Kept {result.kept} the database would not take (deleted connection or "
                    "refused row; see the log) — they stay in the spool."
                )
            )
        if result.unreadable:
            out.write(
                self.style.ERROR(
                    f"Moved {result.unreadable} unreadable files to {directory}/unreadable/."
                )
            )
        out.write(f"{spool_size()} deliveries remain in {directory}.")
