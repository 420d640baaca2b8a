"""Source secrets at rest: encrypted, and re-encrypted when the key rotates."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from ingestion.crypto import SecretUnreadable, secret_decrypt, secret_encrypt
from ingestion.models import Dataset, Source
from ingestion.services.sources import source_create, source_pull_spec


@pytest.mark.django_db
def test_rotating_the_key_keeps_every_secret_readable(sales: Dataset, settings: Any, capsys: Any) -> None:
    old = settings.ENCRYPTION_KEYS[0]
    source = source_create(
        dataset=sales, data={"name": "s", "url": "https://api.example.com/x", "auth": "bearer"}, secret="tok"
    )
    new = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new, old]

    call_command("rotate_source_secrets")

    assert "Re-encrypted 1 secret(s)" in capsys.readouterr().out
    settings.ENCRYPTION_KEYS = [new]  # the old key is gone now
    assert source_pull_spec(Source.objects.get(pk=source.pk)).secret == "tok"


def test_a_secret_without_its_key_is_a_clear_error(settings: Any) -> None:
    token = secret_encrypt("tok")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(SecretUnreadable, match="enter the secret again"):
        secret_decrypt(token)


def test_generate_encryption_key_prints_a_usable_key(capsys: Any) -> None:
    call_command("generate_encryption_key")

    Fernet(capsys.readouterr().out.strip())
