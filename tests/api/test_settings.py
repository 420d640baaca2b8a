"""The API's settings come from the environment and fail loudly when they are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "JWT_", "API_"))}
    base.update(
        {
            "DATA_DIR": str(tmp_path),
            "DATAFLOW_ENV_FILE": "/nonexistent",
            "SECRET_KEY": "a-secret-key-for-this-test-only-0123456789",
            "JWT_SIGNING_KEY": "a-jwt-signing-key-for-this-test-only-0123456789",
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=base, capture_output=True, text=True, timeout=120
    )


def test_tokens_are_not_signed_with_the_secret_key(settings: Any) -> None:
    assert settings.SIMPLE_JWT["SIGNING_KEY"]
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY


def test_a_short_jwt_signing_key_stops_start_up(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", JWT_SIGNING_KEY="short")

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be at least 32 characters" in result.stderr


@pytest.mark.parametrize("value", ["fast", "10/fortnight", "0/minute", "-1/hour"])
def test_a_malformed_throttle_rate_stops_start_up_naming_the_variable(tmp_path: Path, value: str) -> None:
    result = manage(tmp_path, "check", API_THROTTLE_UPLOADS=value)

    assert result.returncode != 0
    assert f"API_THROTTLE_UPLOADS={value!r} is not a rate" in result.stderr


def test_start_up_stops_without_a_jwt_signing_key(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", JWT_SIGNING_KEY="")

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY is not set" in result.stderr


def test_a_long_enough_jwt_signing_key_starts(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", JWT_SIGNING_KEY="k" * 40)

    assert result.returncode == 0, result.stderr


def test_the_jwt_issuer_and_audience_come_from_the_environment(tmp_path: Path) -> None:
    show = "from django.conf import settings; print(settings.SIMPLE_JWT['ISSUER'], settings.SIMPLE_JWT['AUDIENCE'])"

    default = manage(tmp_path, "shell", "--no-imports", "-c", show)
    chosen = manage(tmp_path, "shell", "--no-imports", "-c", show, JWT_ISSUER="acme", JWT_AUDIENCE="acme-reports")

    assert default.stdout.split() == ["dataflow", "dataflow-api"], default.stderr
    assert chosen.stdout.split() == ["acme", "acme-reports"], chosen.stderr


def test_a_blank_jwt_audience_stops_start_up(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", JWT_AUDIENCE="   ")

    assert result.returncode != 0
    assert "JWT_ISSUER and JWT_AUDIENCE must not be blank" in result.stderr
