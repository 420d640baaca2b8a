"""The API docs (Swagger UI, ReDoc) come from this site alone: no CDN, no other host.

The browser side of the same promise is tests/e2e/test_api_docs_in_a_browser.py.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

DOCS_PAGES = ["/api/docs/", "/api/redoc/"]
ALLOWED_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}

pytestmark = pytest.mark.django_db


class ResourceLinks(HTMLParser):
    """Every address a page makes the browser load: scripts, styles, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


def resource_links(html: str) -> list[str]:
    parser = ResourceLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_pages_load_only_this_sites_static_files(client: Client, page: str) -> None:
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    urls = resource_links(html)
    assert any(url.endswith(".js") for url in urls), urls
    static = [url for url in urls if url.startswith(settings.STATIC_URL)]
    # Swagger UI's start-up script is the page's own address with ?script;
    # ReDoc's empty icon (data:,) loads nothing.
    assert set(urls) - set(static) <= {f"{page}?script=", "data:,"}, urls
    for url in static:
        assert finders.find(url.removeprefix(settings.STATIC_URL)), f"{url} is not one of our static files"
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_swagger_uis_start_up_script_is_served_as_javascript_of_its_own(client: Client) -> None:
    response = client.get("/api/docs/?script=")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    assert "SwaggerUIBundle(" in script and '"/api/schema/"' in script
    assert "http://" not in script and "https://" not in script


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_pages_policy_allows_no_other_host_and_no_inline_script(client: Client, page: str) -> None:
    policy = client.get(page)["Content-Security-Policy"]

    directives = dict(part.strip().partition(" ")[::2] for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    for name, sources in directives.items():
        assert set(sources.split()) <= ALLOWED_SOURCES, (name, sources)


def test_the_docs_keep_their_policy_under_a_path_prefix(client: Client) -> None:
    response = client.get("/api/redoc/", SCRIPT_NAME="/dataflow")

    assert response.status_code == 200
    assert "worker-src 'self' blob:" in response["Content-Security-Policy"]
