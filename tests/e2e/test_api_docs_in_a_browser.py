"""The API docs render in headless Chromium on a machine without internet access.

Every request the page makes to a host other than the live server is recorded
and aborted, as it would fail offline. Swagger UI and ReDoc must render the
operations from this site's own static files all the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.e2e.conftest import needs_chromium

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="the browser tests run with the Postgres suite: set DATABASE_URL=postgres://…",
    ),
    needs_chromium,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@dataclass
class Traffic:
    """What a page asked for beyond the live server."""

    origin: str
    sent: list[str] = field(default_factory=list)  # reached the network (aborted here)
    attempted: list[str] = field(default_factory=list)  # every request the page started
    failures: dict[str, str | None] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)

    def elsewhere(self, urls: list[str]) -> list[str]:
        return [url for url in urls if not self.is_local(url)]

    def is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin


def watch(page: Any, live_server_url: str) -> Traffic:
    traffic = Traffic(origin=live_server_url.rstrip("/"))

    def route(route: Any) -> None:
        if traffic.is_local(route.request.url):
            route.continue_()
        else:
            traffic.sent.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", route)
    page.on("request", lambda request: traffic.attempted.append(request.url))
    page.on("requestfailed", lambda request: traffic.failures.__setitem__(request.url, request.failure))
    page.on("console", lambda message: message.type == "error" and traffic.console_errors.append(message.text))
    return traffic


def schema_operations() -> dict[tuple[str, str], dict[str, Any]]:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return {
        (method, path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def test_swagger_ui_renders_every_operation_from_this_site_alone(live_server: Any, browser_page: Any) -> None:
    operations = schema_operations()
    runs_list = operations[("get", "/api/v1/runs/")]
    page = browser_page
    traffic = watch(page, live_server.url)

    page.goto(f"{live_server.url}/api/docs/")

    page.wait_for_selector(f"#operations-runs-{runs_list['operationId']} .opblock-summary-path")
    assert page.locator(".opblock").count() == len(operations)
    assert page.inner_text(".info .title").startswith("DataFlow Analytics API")
    assert traffic.sent == []
    assert traffic.elsewhere(traffic.attempted) == []
    assert traffic.console_errors == []


def test_redoc_renders_every_operation_and_searches_from_this_site_alone(live_server: Any, browser_page: Any) -> None:
    operations = schema_operations()
    rejected_rows = operations[("get", "/api/v1/runs/{id}/rejected-rows/")]["operationId"]
    page = browser_page
    traffic = watch(page, live_server.url)

    page.goto(f"{live_server.url}/api/redoc/")

    page.wait_for_selector("h1:has-text('DataFlow Analytics API')")
    assert page.locator("[id^='tag/'][id*='/operation/']").count() == len(operations)
    # Search runs in a web worker built from a blob: URL (the docs' policy allows it).
    page.fill("input[placeholder='Search...']", "rejected rows")
    page.wait_for_selector(f"[data-role='search:results'] [data-item-id='tag/runs/operation/{rejected_rows}']")
    assert traffic.sent == []
    # ReDoc's bundle shows its vendor's logo from their CDN; the page's
    # Content-Security-Policy stops the browser before any request leaves.
    for url in traffic.elsewhere(traffic.attempted):
        assert traffic.failures.get(url) == "csp", url
