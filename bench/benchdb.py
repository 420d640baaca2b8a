"""A fresh Postgres database and data folder for a benchmark script, migrated.

Imported by the benchmark scripts beside it (they run as scripts, so this
folder is on ``sys.path``).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
MANAGE = [PY, str(ROOT / "manage.py")]


def database_fresh(database_url: str, data_dir: Path) -> dict[str, str]:
    """Drop and create the database of ``database_url``, empty ``data_dir``, migrate; the environment to run with.

    The environment holds throwaway secrets (the benchmarks store no source
    secrets) and reads no ``.env`` file, so a developer's settings do not
    change the figures.
    """
    dbname = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin_url, "-qc", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'], check=True)
    subprocess.run(["psql", admin_url, "-qc", f'CREATE DATABASE "{dbname}"'], check=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret"),
        "JWT_SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", "benchmark-only-jwt-signing-key-0123456789"),
        "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DATAFLOW_ENV_FILE": "/nonexistent",
        "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([*MANAGE, "migrate", "-v0"], env=env, check=True)
    return env


def dataset_apply(env: dict[str, str], schema: Path) -> None:
    """Create the benchmark's dataset from its schema file."""
    subprocess.run([*MANAGE, "dataset_apply", str(schema)], env=env, check=True, stdout=subprocess.DEVNULL)
