"""Settings come from the environment and fail loudly when they are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def django_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "SECRET_KEY"))}
    base.update({"DATA_DIR": str(tmp_path), "DATAFLOW_ENV_FILE": "/nonexistent", **env})
    base["DJANGO_SETTINGS_MODULE"] = "dataflow.settings.base"
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"], env=base, capture_output=True, text=True, timeout=120
    )


def test_the_example_env_file_is_a_working_configuration(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text((ROOT / ".env.example").read_text().replace("DATA_DIR=data", f"DATA_DIR={tmp_path}"))
    result = django_check(tmp_path, DATAFLOW_ENV_FILE=str(env_file))

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_start_up_stops_without_a_secret_key(tmp_path: Path) -> None:
    result = django_check(tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"), [("DEBUG", "ture", "is not a boolean"), ("Q_WORKERS", "two", "is not an integer")]
)
def test_malformed_values_stop_start_up_naming_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    result = django_check(tmp_path, SECRET_KEY="x", **{name: value})

    assert result.returncode != 0
    assert f"{name}={value!r} {message}" in result.stderr


@pytest.mark.parametrize(("value", "message"), [("20", "at most 19"), ("-1", "at least 0")])
def test_it_refuses_a_pipeline_niceness_outside_0_to_19(tmp_path: Path, value: str, message: str) -> None:
    result = django_check(tmp_path, SECRET_KEY="x", PIPELINE_NICE=value)

    assert result.returncode != 0
    assert "PIPELINE_NICE must be" in result.stderr
    assert message in result.stderr


def test_production_settings_pass_the_deployment_checks_without_warnings(tmp_path: Path) -> None:
    inherited = ("DJANGO_", "DATABASE_URL", "SECRET_KEY", "HTTPS", "DEBUG", "SECURE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
            "DATAFLOW_ENV_FILE": "/nonexistent",
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY": "k" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
            "JWT_SIGNING_KEY": "j" * 20 + "-a-separate-production-like-signing-key-0123456789",
            "ALLOWED_HOSTS": "dataflow.example.com",
        }
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_start_up_stops_without_an_encryption_key(tmp_path: Path) -> None:
    result = django_check(tmp_path, SECRET_KEY="x" * 50, JWT_SIGNING_KEY="j" * 50, ENCRYPTION_KEYS="")

    assert result.returncode != 0
    assert "ENCRYPTION_KEYS is not set" in result.stderr


def test_start_up_stops_with_a_malformed_encryption_key(tmp_path: Path) -> None:
    result = django_check(tmp_path, SECRET_KEY="x" * 50, JWT_SIGNING_KEY="j" * 50, ENCRYPTION_KEYS="not-a-key")

    assert result.returncode != 0
    assert "ENCRYPTION_KEYS holds a value that is not a Fernet key" in result.stderr


def test_with_redis_every_process_shares_one_cache_for_throttle_counters(tmp_path: Path) -> None:
    """Two separate processes count in the same Redis cache (what the API throttles use)."""
    key = f"dataflow-test-{uuid.uuid4().hex}"
    script = (
        "from django.core.cache import caches; cache = caches['default']; "
        f"cache.add('{key}', 0, 30); print(type(cache).__name__, cache.incr('{key}'))"
    )
    env = {"SECRET_KEY": "x" * 50, "JWT_SIGNING_KEY": "j" * 50, "REDIS_URL": "redis://127.0.0.1:6379/15"}
    outputs = []
    for _ in range(2):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
        base.update({"DATA_DIR": str(tmp_path), "DATAFLOW_ENV_FILE": "/nonexistent", **env})
        base["DJANGO_SETTINGS_MODULE"] = "dataflow.settings.base"
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
            env=base,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip().splitlines()[-1])

    assert outputs == ["RedisCache 1", "RedisCache 2"]


def test_with_redis_the_cache_gives_up_on_redis_after_redis_socket_timeout(tmp_path: Path) -> None:
    script = "from django.conf import settings; print(settings.CACHES['default']['OPTIONS'])"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
            "DATA_DIR": str(tmp_path),
            "DATAFLOW_ENV_FILE": "/nonexistent",
            "SECRET_KEY": "x" * 50,
            "JWT_SIGNING_KEY": "j" * 50,
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "REDIS_SOCKET_TIMEOUT": "0.25",
        }
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "{'socket_connect_timeout': 0.25, 'socket_timeout': 0.25}"


def test_a_malformed_redis_socket_timeout_stops_start_up(tmp_path: Path) -> None:
    result = django_check(tmp_path, SECRET_KEY="x" * 50, JWT_SIGNING_KEY="j" * 50, REDIS_SOCKET_TIMEOUT="0")

    assert result.returncode != 0
    assert "REDIS_SOCKET_TIMEOUT must be at least 0.01, got 0.0" in result.stderr


def test_a_malformed_metrics_allow_list_stops_start_up(tmp_path: Path) -> None:
    result = django_check(
        tmp_path,
        SECRET_KEY="a-secret-key-for-this-test-only-0123456789",
        JWT_SIGNING_KEY="a-jwt-signing-key-for-this-test-only-0123456789",
        METRICS_ALLOWED_IPS="10.0.0.0/8,localhost",
    )

    assert result.returncode != 0
    assert "METRICS_ALLOWED_IPS" in result.stderr and "'localhost'" in result.stderr


def test_no_address_may_scrape_metrics_unless_listed(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "METRICS_"))}
    base.update(
        {
            "DATA_DIR": str(tmp_path),
            "DATAFLOW_ENV_FILE": "/nonexistent",
            "SECRET_KEY": "a-secret-key-for-this-test-only-0123456789",
            "JWT_SIGNING_KEY": "a-jwt-signing-key-for-this-test-only-0123456789",
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
        }
    )
    show = "from django.conf import settings; print(repr(settings.METRICS_ALLOWED_IPS), repr(settings.METRICS_TOKEN))"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", show],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.stdout.split() == ["[]", "''"], result.stderr
