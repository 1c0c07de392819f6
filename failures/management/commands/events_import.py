"""Import a file of canonical events (JSON lines) for one ATS connection, in bulk."""

import os
import sys
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from failures.bulk import CHUNK_LINES, events_import, lines_read
from failures.models import AtsConnection
from failures.progress import Progress

MAX_WORKERS = 16


def default_workers() -> int:
    """One importing process per CPU (each pairs with a PostgreSQL backend doing its writes)."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def _count_lines(path: str) -> int:
    """Lines in the file (for the progress bar), read in blocks: memory stays flat."""
    count, last = 0, b"\n"
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class Command(BaseCommand):
    help = (
        "Import canonical events, one JSON object a line (docs/webhooks.md), into the event "
        "log and the pipeline mirror of a connection, with the webhook's dedupe rule. Bad "
        "lines are skipped and listed with their line number and field. Importing the same "
        "file again is safe: what was recorded counts as duplicate."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="The JSON lines file ('-' reads standard input).")
        parser.add_argument("--connection", required=True, help="The ATS connection id (UUID).")
        parser.add_argument(
            "--no-detect",
            action="store_true",
            help="Do not run the on-event detectors over the imported events.",
        )
        parser.add_argument("--chunk", type=int, default=CHUNK_LINES, help="Lines per transaction.")
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="Processes sharing the import, each job's events in one of them (PostgreSQL; "
            "default: one per CPU, %(default)s here). 1 imports in this process.",
        )
        parser.add_argument(
            "--show-errors", type=int, default=50, help="How many bad lines to list."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            connection_id = uuid.UUID(options["connection"])
        except ValueError:
            raise CommandError("--connection must be a connection id (UUID).") from None
        connection = (
            AtsConnection.objects.select_related("organization").filter(pk=connection_id).first()
        )
        if connection is None:
            raise CommandError(f"No ATS connection {connection_id}.")
        if not connection.is_active:
            raise CommandError(f"ATS connection {connection_id} is not active.")
        if options["chunk"] < 1:
            raise CommandError("--chunk must be at least 1.")
        if not 1 <= options["workers"] <= MAX_WORKERS:
            raise CommandError(f"--workers must be from 1 to {MAX_WORKERS}.")

        path = options["file"]
        try:
            total = 0 if path == "-" else _count_lines(path)
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        progress = Progress(total, "importing", stream=self.stderr, unit="lines")
        try:
            result = events_import(
                connection=connection,
                lines=lines_read(stream),
                progress=progress.advance,
                detect=not options["no_detect"],
                chunk_lines=options["chunk"],
                workers=options["workers"],
            )
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        progress.finish()

        self.stdout.write(
            f"{result.imported} imported, {result.duplicates} duplicates, "
            f"{result.invalid} invalid of {result.lines} lines; "
            f"{result.failures} failures detected "
            f"(connection {connection.pk}, organization {connection.organization.slug})."
        )
        shown = result.errors[: max(options["show_errors"], 0)]
        for error in shown:
            self.stdout.write(f"  line {error.line}: {error.field}: {error.message}")
        if result.invalid > len(shown):
            self.stdout.write(f"  … and {result.invalid - len(shown)} more invalid lines.")
