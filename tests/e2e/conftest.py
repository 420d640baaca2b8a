"""Headless Chromium for the end-to-end tests.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``CHROMIUM_PATH``) and
the ``playwright`` Python package, which drives the system browser (no browser
download). Tests that need neither skip with a reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)"
)


@pytest.fixture
def worker(data_dir: Path, tmp_path: Path) -> Iterator[Cluster]:
    """A real django-q2 cluster working on the test's data folder."""
    cluster = Cluster(data_dir, tmp_path / "qcluster.log").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def browser_page() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright runs an event loop in this thread; the ORM calls the test
    # makes around it are synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot into ``$E2E_SCREENSHOTS`` when it is set (only on request: it proves nothing)."""
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True, timeout=120_000)


def log_in(page: Any, base_url: str, username: str, password: str) -> None:
    """Sign in to the console through its login form and wait for the dashboard."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Operations")
