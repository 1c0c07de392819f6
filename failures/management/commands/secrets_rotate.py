"""Re-encrypt stored connection secrets under the first FAILTRACK_ENCRYPTION_KEYS key."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from failures.crypto import SecretUnreadable
from failures.services import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored ATS signing secret with the first key of "
        "FAILTRACK_ENCRYPTION_KEYS. Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            count = secrets_rotate()
        except SecretUnreadable as exc:
            raise CommandError(
                f"{exc} Keep the old key in FAILTRACK_ENCRYPTION_KEYS until this succeeds."
            ) from exc
        self.stdout.write(f"Re-encrypted {count} secret(s) under the current key.")
