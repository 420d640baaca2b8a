"""A chunked body without credentials is never stored past the small limit, whatever its URL (under gunicorn)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import SALES_HEADER, sales_row
from tests.dataflow.test_uploads import PASSWORD, SEED, chunks, sent_chunked
from tests.webserver import Gunicorn, gunicorn_serving

LARGE_UPLOAD = 200 * 1024 * 1024
SMALL_LIMIT = 2_621_440  # DATA_UPLOAD_MAX_MEMORY_SIZE's default
SPOOL_DISK = "8m"


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An 8 MB tmpfs the server spools chunked bodies into (its TMPDIR)."""
    mount_point = tmp_path_factory.mktemp("spool")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SPOOL_DISK},mode=0777", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, spool_dir: Path) -> Iterator[Gunicorn]:
    with gunicorn_serving(
        tmp_path_factory.mktemp("gunicorn"),
        SEED,
        MAX_UPLOAD_SIZE=str(LARGE_UPLOAD),
        TMPDIR=str(spool_dir),
        API_THROTTLE_UPLOADS="1000/hour",
        API_THROTTLE_AUTH="1000/minute",
        API_THROTTLE_ANON="1000/minute",
    ) as web:
        yield web


class DiskWatch:
    """The most bytes in use on a file system while it is watched (spooled files are unlinked, so count blocks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = shutil.disk_usage(path).used
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, shutil.disk_usage(self.path).used - self.base)
            self._stop.wait(0.005)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def zeros(total: int) -> Iterator[bytes]:
    block = b"0" * 65536
    for _ in range(total // len(block)):
        yield block


def test_an_anonymous_chunked_upload_is_cut_at_the_small_limit(server: Gunicorn, spool_dir: Path) -> None:
    with DiskWatch(spool_dir) as disk:
        try:
            response = requests.post(
                f"{server.url}/api/v1/datasets/sales/uploads/",
                data=zeros(50 * 1024 * 1024),
                headers={"Content-Type": "text/csv"},
                timeout=120,
            )
        except requests.ConnectionError:
            response = None  # the server may answer and close while the client is still sending

    if response is not None:
        # Not 507 (the 8 MB spool folder filled up by an anonymous client).
        assert response.status_code in (401, 413), response.text
    assert disk.peak <= SMALL_LIMIT + 256 * 1024


def test_an_anonymous_chunked_push_is_cut_at_the_small_limit(server: Gunicorn, spool_dir: Path) -> None:
    with DiskWatch(spool_dir) as disk:
        try:
            response = requests.post(
                f"{server.url}/api/v1/datasets/sales/ingest/",
                data=zeros(12 * 1024 * 1024),
                headers={"Content-Type": "application/x-ndjson"},
                timeout=120,
            )
        except requests.ConnectionError:
            response = None

    if response is not None:
        assert response.status_code in (401, 413), response.text
    assert disk.peak <= SMALL_LIMIT + 256 * 1024


def test_an_authenticated_chunked_upload_past_the_small_limit_is_accepted(server: Gunicorn) -> None:
    token = requests.post(
        f"{server.url}/api/v1/auth/token/", json={"username": "ingester", "password": PASSWORD}, timeout=30
    ).json()["access"]
    data = ("\n".join([SALES_HEADER, *(sales_row(n) for n in range(1, 60_001))]) + "\n").encode()
    assert SMALL_LIMIT < len(data) < 6 * 1024 * 1024

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/uploads/",
        data=chunks(data, 65536),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=120,
    )

    assert sent_chunked(response)
    assert response.status_code == 202, response.text
    assert response.json()["file"]["size"] == len(data)
