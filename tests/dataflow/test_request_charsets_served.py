"""The request charset rule under gunicorn, with real sessions and CSRF checks (as production serves)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.webserver import Gunicorn, gunicorn_serving

PASSWORD = "correct horse battery staple"
SEED = f"""
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("admin", "admin@example.com", {PASSWORD!r})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    with gunicorn_serving(tmp_path_factory.mktemp("gunicorn"), SEED, API_THROTTLE_ANON="1000/minute") as web:
        yield web


def login_page(server: Gunicorn) -> tuple[requests.Session, dict[str, str]]:
    """A browser session holding the CSRF cookie, and the login form's fields with its token."""
    session = requests.Session()
    page = session.get(f"{server.url}/admin/login/", timeout=30)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None and session.cookies.get("csrftoken")
    fields = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": PASSWORD, "next": "/admin/"}
    return session, fields


@pytest.mark.parametrize("url", ["/admin/login/?next=/admin/", "/api/v1/datasets/?page_size=5"])
@pytest.mark.parametrize("charset", ["undefined", "charmap", "unicode_escape", "utf-7"])
def test_it_refuses_a_charset_that_is_no_text_encoding_before_reading_the_query(
    server: Gunicorn, url: str, charset: str
) -> None:
    response = requests.get(
        f"{server.url}{url}", headers={"Content-Type": f"text/plain; charset={charset}"}, timeout=30
    )

    assert response.status_code == 415
    assert charset in response.text


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "utf-7", "cp1252"])
def test_it_refuses_a_login_form_that_is_not_utf_8(server: Gunicorn, charset: str) -> None:
    session, fields = login_page(server)

    response = session.post(
        f"{server.url}/admin/login/",
        data=fields,
        headers={
            "Content-Type": f"application/x-www-form-urlencoded; charset={charset}",
            "Referer": f"{server.url}/admin/login/",
        },
        allow_redirects=False,
        timeout=30,
    )

    assert response.status_code == 415
    assert "UTF-8" in response.text


@pytest.mark.parametrize("charset", ["undefined", "latin-1"])
def test_it_refuses_a_multipart_login_form_that_is_not_utf_8(server: Gunicorn, charset: str) -> None:
    session, fields = login_page(server)
    body = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )

    response = session.post(
        f"{server.url}/admin/login/",
        data=body + b"--b--\r\n",
        headers={
            "Content-Type": f"multipart/form-data; boundary=b; charset={charset}",
            "Referer": f"{server.url}/admin/login/",
        },
        allow_redirects=False,
        timeout=30,
    )

    assert response.status_code == 415


def test_a_utf_8_login_form_still_logs_in(server: Gunicorn) -> None:
    session, fields = login_page(server)

    response = session.post(
        f"{server.url}/admin/login/",
        data=fields,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Referer": f"{server.url}/admin/login/",
        },
        allow_redirects=False,
        timeout=30,
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
