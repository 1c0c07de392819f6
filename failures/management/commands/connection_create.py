"""Open an ATS connection from the shell and print its webhook URL."""

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from failures.choices import AtsVendor
from failures.models import Organization, new_connection_secret
from failures.services import connection_create


class Command(BaseCommand):
    help = (
        "Create an ATS connection for an organization and print the webhook URL to give the "
        "ATS. The signing secret is stored encrypted and cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="Organization slug.")
        parser.add_argument(
            "--vendor", required=True, choices=AtsVendor.values, help="Which ATS sends."
        )
        parser.add_argument("--name", help="A name for the connection (default: the vendor).")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument(
            "--secret",
            help="The signing secret the ATS uses (e.g. Lever's signature token). Omit to "
            "generate one, printed once.",
        )
        secret.add_argument(
            "--secret-stdin",
            action="store_true",
            help="Read the secret from standard input (keeps it out of shell history).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            known = ", ".join(Organization.objects.values_list("slug", flat=True)[:20])
            raise CommandError(
                f"No organization with slug {options['organization']!r}. Known: {known or '-'}."
            )
        secret = options["secret"]
        if options["secret_stdin"]:
            secret = sys.stdin.readline().strip()
            if not secret:
                raise CommandError("No secret on standard input.")
        generated = secret is None
        if generated:
            secret = new_connection_secret()
        vendor = AtsVendor(options["vendor"])
        try:
            connection = connection_create(
                actor=None,
                organization=organization,
                name=options["name"] or f"{vendor.label} ATS",
                vendor=vendor,
                secret=secret,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        path = reverse(
            "integrations:ats-hook",
            kwargs={"vendor": connection.vendor, "connection_id": connection.pk},
        )
        self.stdout.write(f"Connection {connection.pk} created for {organization.name}.")
        self.stdout.write(f"Webhook URL: {settings.FAILTRACK_PUBLIC_URL.rstrip('/')}{path}")
        if generated:
            self.stdout.write(f"Signing secret (shown once, copy it into the ATS now): {secret}")
