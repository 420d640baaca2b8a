"""Real HTTP servers for ``dataflow.wsgi`` on 127.0.0.1, each with its own SQLite database and data folder.

For tests about what only a real HTTP server does (chunked bodies): the
server runs in other processes, so it gets a database of its own, migrated
and seeded through ``manage.py``, whatever database the test suite uses.
``Gunicorn`` is what production and ``make run`` serve with; ``Runserver``
is Django's development server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebServer:
    """A server process group; subclasses say which command starts it."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "GUNICORN_"))}
        self.env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.test",
            "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
            "DATA_DIR": str(self.data_dir),
            "LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": str(root),
            **settings,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> WebServer:
        """Start the server and wait until it answers (migrate and seed through ``manage()`` first)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/health/live/", timeout=2):  # noqa: S310 - our own http URL
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{type(self).__name__} did not answer within 120s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Gunicorn(WebServer):
    """``gunicorn dataflow.wsgi:application`` with the project's gunicorn.conf.py, one worker."""

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "dataflow.wsgi:application",
            "--config",
            str(ROOT / "dataflow" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
        ]


class Runserver(WebServer):
    """``manage.py runserver`` (it serves ``WSGI_APPLICATION``, i.e. dataflow.wsgi), without the autoreloader."""

    def command(self) -> list[str]:
        return [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{self.port}"]


@contextmanager
def gunicorn_serving(root: Path, seed: str, **settings: str) -> Iterator[Gunicorn]:
    """A migrated database filled by the ``seed`` script, served by gunicorn until the block ends."""
    web = Gunicorn(root, **settings)
    web.manage("migrate", "-v0")
    web.manage("shell", "-c", seed)
    web.start()
    try:
        yield web
    finally:
        web.stop()
