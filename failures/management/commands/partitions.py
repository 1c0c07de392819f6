"""Monthly partitions of the event log and the delivery store: create ahead, list, retain."""

import re
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from failures.partitions import (
    MONTHS_AHEAD,
    PartitionError,
    partition_list,
    partitioning_active,
    partitions_drop_before,
    partitions_ensure,
)


def _month(value: str) -> date:
    match = re.fullmatch(r"(\d{4})-(\d{2})", value)
    if not match or not 1 <= int(match[2]) <= 12:
        raise CommandError(f"--drop-before must be a month as YYYY-MM, not {value!r}.")
    return date(int(match[1]), int(match[2]), 1)


class Command(BaseCommand):
    help = (
        "Manage the monthly partitions of the event log and the delivery store (PostgreSQL): "
        "--ensure creates this month and the next ones (the daily task does the same), "
        "--list shows every partition with its estimated rows, --drop-before YYYY-MM drops "
        "whole months before that one with their dedupe keys (retention; needs --yes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--ensure", action="store_true", help="Create the coming months.")
        action.add_argument("--list", action="store_true", help="List the partitions.")
        action.add_argument(
            "--drop-before", metavar="YYYY-MM", help="Drop every month before this one."
        )
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=MONTHS_AHEAD,
            help=f"Months after the current one to create (default {MONTHS_AHEAD}).",
        )
        parser.add_argument(
            "--yes", action="store_true", help="Really drop; without it, only show what would go."
        )

    def handle(self, *args: object, **options: Any) -> None:
        if not partitioning_active():
            self.stdout.write(f"not partitioned ({connection.display_name}): nothing to do.")
            return
        if options["ensure"]:
            self._ensure(options["months_ahead"])
        elif options["list"]:
            self._list()
        else:
            self._drop_before(_month(options["drop_before"]), confirmed=options["yes"])

    def _ensure(self, months_ahead: int) -> None:
        if months_ahead < 0:
            raise CommandError("--months-ahead cannot be negative.")
        created = partitions_ensure(months_ahead=months_ahead)
        for partition in created:
            moved = (
                f" ({partition.moved_from_default} rows moved from DEFAULT)"
                if partition.moved_from_default
                else ""
            )
            self.stdout.write(f"created {partition.name}{moved}")
        self.stdout.write(f"{len(created)} partition(s) created; the others already existed.")

    def _list(self) -> None:
        for partition in partition_list():
            rows = "?" if partition.rows_estimate is None else f"~{partition.rows_estimate}"
            self.stdout.write(f"{partition.name:<48} {rows:>12} rows  {partition.bounds}")

    def _drop_before(self, cutoff: date, *, confirmed: bool) -> None:
        try:
            dropped = partitions_drop_before(cutoff, dry_run=not confirmed)
        except PartitionError as error:
            raise CommandError(str(error)) from None
        verb = "dropped" if confirmed else "would drop"
        for item in dropped:
            what = (
                f"{item.partition} (month {item.month:%Y-%m})"
                if item.month
                else f"{item.partition} rows from before {cutoff:%Y-%m}"
            )
            keys = f", {item.keys} dedupe keys" if item.keys is not None else ""
            self.stdout.write(f"{verb} {what}: {item.rows} rows{keys}")
        if not dropped:
            self.stdout.write(f"nothing before {cutoff:%Y-%m}.")
        elif not confirmed:
            self.stdout.write("Nothing was dropped: run again with --yes to drop these.")
