"""A real django-q2 cluster for tests that need background workers (Postgres only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT_TIMEOUT = 2

postgres_only = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="the cluster runs in another process and needs a shared database: set DATABASE_URL=postgres://…",
)


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def manage_py_env(data_dir: Path) -> dict[str, str]:
    """The environment for a ``manage.py`` process that uses the test database and data folder."""
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dataflow.settings.test",
        "DATABASE_URL": url,
        "DATA_DIR": str(data_dir),
    }


class Cluster:
    """A ``manage.py qcluster`` process (group) using the test database and data folder."""

    def __init__(self, data_dir: Path, log: Path, heartbeat_timeout: int = 300, **env: str) -> None:
        self.env = {
            **manage_py_env(data_dir),
            "Q_WORKERS": "1",
            "Q_POLL": "0.1",
            "Q_TIMEOUT": "120",
            "Q_RETRY": "180",
            "RUN_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Cluster:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "qcluster"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole cluster: no cleanup code runs, as when a machine dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
