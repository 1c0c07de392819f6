"""Process failed (or ignored) deliveries again, e.g. after a stage or reason mapping was fixed."""

import uuid
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from failures.choices import AtsVendor
from failures.progress import Progress
from integrations.ingest import delivery_replay
from integrations.models import DeliveryState, InboundDelivery

# How many distinct reasons of deliveries still failing the summary lists.
REASONS_SHOWN = 10


class Command(BaseCommand):
    help = (
        "Replay deliveries: the given ids (failed or ignored ones), or with --failed every "
        "failed delivery, narrowed by --connection, --vendor and --since. Each is processed "
        "again as if it had just arrived; events already recorded are never recorded twice. "
        "Prints the new state of each group, and why the ones still failing fail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Delivery ids to replay.")
        parser.add_argument(
            "--failed", action="store_true", help="Replay every failed delivery (filtered)."
        )
        parser.add_argument("--connection", help="Only this connection's deliveries (UUID).")
        parser.add_argument(
            "--vendor", choices=list(AtsVendor.values), help="Only this vendor's deliveries."
        )
        parser.add_argument(
            "--since", help="Only deliveries received at or after this ISO 8601 time."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be replayed."
        )

    def handle(self, *args: object, **options: Any) -> None:
        ids = self._select(options)
        if options["dry_run"]:
            self.stdout.write(f"{len(ids)} deliveries would be replayed.")
            return
        if not ids:
            self.stdout.write("Nothing to replay.")
            return
        progress = Progress(len(ids), "replaying", stream=self.stderr, unit="deliveries")
        states: Counter[str] = Counter()
        for delivery_id in ids:
            state = delivery_replay(InboundDelivery(pk=delivery_id))
            states[state or "skipped"] += 1
            progress.advance()
        progress.finish()
        self._summary(ids, states)

    def _select(self, options: dict[str, Any]) -> list[int]:
        filters_given = [
            name for name in ("connection", "vendor", "since") if options[name] is not None
        ]
        if options["ids"] and options["failed"]:
            raise CommandError("Give delivery ids or --failed, not both.")
        if not options["ids"] and not options["failed"]:
            raise CommandError("Give delivery ids, or --failed to replay every failed delivery.")
        if options["ids"]:
            if filters_given:
                raise CommandError(f"--{filters_given[0]} only narrows --failed.")
            found = set(
                InboundDelivery.objects.filter(pk__in=options["ids"]).values_list("pk", flat=True)
            )
            missing = [pk for pk in options["ids"] if pk not in found]
            if missing:
                raise CommandError(f"No delivery with id {', '.join(map(str, missing))}.")
            return list(dict.fromkeys(options["ids"]))

        deliveries = InboundDelivery.objects.filter(state=DeliveryState.FAILED)
        if options["connection"] is not None:
            try:
                connection_id = uuid.UUID(options["connection"])
            except ValueError:
                raise CommandError("--connection must be a connection id (UUID).") from None
            deliveries = deliveries.filter(connection_id=connection_id)
        if options["vendor"] is not None:
            deliveries = deliveries.filter(vendor=options["vendor"])
        if options["since"] is not None:
            since = parse_datetime(options["since"])
            if since is None or timezone.is_naive(since):
                raise CommandError("--since must be an ISO 8601 timestamp with a time zone.")
            deliveries = deliveries.filter(received_at__gte=since)
        return list(deliveries.order_by("received_at", "id").values_list("pk", flat=True))

    def _summary(self, ids: list[int], states: Counter[str]) -> None:
        out = self.stdout
        out.write(f"Replayed {len(ids)} deliveries:")
        for state in (*DeliveryState.values, "skipped"):
            if states[state]:
                label = "skipped (not failed or ignored)" if state == "skipped" else state
                out.write(f"  {label:<32} {states[state]:>7,}")
        if states[DeliveryState.FAILED]:
            reasons = Counter(
                InboundDelivery.objects.filter(pk__in=ids, state=DeliveryState.FAILED)
                .values_list("error", flat=True)
                .iterator()
            )
            out.write("Still failing:")
            for reason, count in reasons.most_common(REASONS_SHOWN):
                out.write(f"  {count:>7,}  {reason[:160]}")
