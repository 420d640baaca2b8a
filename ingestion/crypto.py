"""Secrets at rest: Fernet tokens under the keys in ``ENCRYPTION_KEYS``.

``MultiFernet`` encrypts with the first key and decrypts with any of them,
so a key rotates without downtime: put the new key first, re-encrypt the
stored secrets (``manage.py rotate_source_secrets``), then drop the old key.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """No configured key decrypts a stored secret (its key was removed too early)."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def secret_encrypt(plain: str) -> str:
    """The Fernet token of ``plain``; empty stays empty."""
    if not plain:
        return ""
    return _current().encrypt(plain.encode("utf-8")).decode("ascii")


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable(
            "the stored secret cannot be decrypted with any key in ENCRYPTION_KEYS "
            "(was its key removed before `rotate_source_secrets` ran?); enter the secret again"
        ) from None


def secret_rotate(token: str) -> str:
    """Re-encrypt a token under the first key (raises ``SecretUnreadable`` if no key reads it)."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable("the stored secret cannot be decrypted with any key in ENCRYPTION_KEYS") from None


def key_generate() -> str:
    return Fernet.generate_key().decode("ascii")
