"""Create a tracking key for an ATS connection and print its token, once."""

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from failures.models import AtsConnection
from integrations.services import tracking_key_create


class Command(BaseCommand):
    help = (
        "Create a tracking key that lets pages of the given origins report user-driven events "
        "(failtrack-beacon.js) into the connection's organization. The token is printed once "
        "and never stored: copy it into the ATS page now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection", required=True, help="The ATS connection's id (UUID).")
        parser.add_argument(
            "--origin",
            action="append",
            required=True,
            help="An origin allowed to send beacons, e.g. https://ats.example.com (repeatable).",
        )
        parser.add_argument("--label", default="beacon", help="A name for the key.")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            connection_id = uuid.UUID(options["connection"])
        except ValueError:
            raise CommandError("--connection must be a connection id (UUID).") from None
        connection = (
            AtsConnection.objects.select_related("organization").filter(pk=connection_id).first()
        )
        if connection is None:
            raise CommandError(f"No ATS connection with id {connection_id}.")
        try:
            key, token = tracking_key_create(
                actor=None,
                connection=connection,
                allowed_origins=options["origin"],
                label=options["label"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"Tracking key {key.label!r} for {connection.name} "
            f"({connection.organization.slug}), origins: {', '.join(key.allowed_origins)}"
        )
        self.stdout.write(f"token: {token}")
        self.stdout.write(
            "The token is shown this once; embed it in the ATS page:\n"
            f'  <script src="https://<failtrack-host>/static/integrations/failtrack-beacon.js"\n'
            f'          data-token="{token}" defer></script>\n'
            f"Beacons go to {reverse('integrations:beacon')} (docs/beacon.md)."
        )
