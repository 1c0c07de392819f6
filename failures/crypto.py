"""Encryption at rest for credentials we must be able to read back (ATS signing secrets).

Keys come from FAILTRACK_ENCRYPTION_KEYS (comma-separated Fernet keys): the first encrypts,
every one decrypts, so a new key is put first and `manage.py secrets_rotate` re-encrypts the
stored values before the old key is removed. Without the variable one key is derived from
SECRET_KEY, which keeps the embedded demo a one-command affair.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored value cannot be decrypted with any configured key."""


@cache
def _fernet() -> MultiFernet:
    configured = [key.strip() for key in settings.FAILTRACK_ENCRYPTION_KEYS if key.strip()]
    if not configured:
        digest = hashlib.sha256(b"failtrack-encryption:" + settings.SECRET_KEY.encode()).digest()
        configured = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in configured])


def keys_reset() -> None:
    """Forget the cached keys (after the settings changed, e.g. in tests)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    """The ciphertext (a Fernet token) of a text, under the first configured key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """The text of a ciphertext written by `encrypt` under any configured key."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured encryption key opens this value.") from exc


def reencrypt(ciphertext: str) -> str:
    """The same text encrypted under the first configured key (key rotation)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured encryption key opens this value.") from exc


def fingerprint(plaintext: str) -> str:
    """A short, non-reversible label that tells two secrets apart without showing either."""
    return hashlib.sha256(plaintext.encode()).hexdigest()[:10]
