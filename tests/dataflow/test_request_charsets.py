"""A body's charset must be a text encoding on every URL, the admin's forms included."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from dataflow import security
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"

# Client.generic sends the bytes as given (Client.post would re-encode them in the charset).


@pytest.mark.parametrize("charset", ["bz2_codec", "zlib_codec", "base64", "rot13", "no-such-charset"])
def test_the_admin_login_refuses_a_charset_that_is_not_a_text_encoding(charset: str) -> None:
    client = Client()

    response = client.generic(
        "POST",
        "/admin/login/",
        b"username=admin&password=x",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )

    assert response.status_code == 415
    assert charset in response.content.decode()
    assert response["Content-Type"].startswith("text/plain")


def test_the_admin_login_still_reads_a_form_that_declares_utf_8() -> None:
    UserFactory(username="r\u00e9my", is_staff=True, is_superuser=True)
    client = Client()

    response = client.generic(
        "POST",
        "/admin/login/",
        f"username=r%C3%A9my&password={PASSWORD.replace(' ', '+')}&next=/admin/".encode(),
        content_type="application/x-www-form-urlencoded; charset=UTF-8",
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_multipart_form_with_a_compression_charset_is_refused() -> None:
    client = Client()
    body = b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nadmin\r\n--b--\r\n'

    response = client.generic(
        "POST", "/admin/login/", body, content_type="multipart/form-data; boundary=b; charset=bz2_codec"
    )

    assert response.status_code == 415


# --- Charsets that pass as codecs but are no text encoding, and non-UTF-8 forms -------------------


def login_form(client: Client) -> dict[str, str]:
    """The admin login form's fields, with the CSRF token of a real GET of the page."""
    page = client.get("/admin/login/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token is not None
    return {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": "x", "next": "/admin/"}


@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "utf-7", "utf8", "cp1252"])
def test_it_refuses_a_login_form_that_is_not_utf_8_with_a_415(charset: str) -> None:
    client = Client(enforce_csrf_checks=True)
    fields = login_form(client)

    response = client.generic(
        "POST",
        "/admin/login/",
        urlencode(fields).encode(),
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )

    assert response.status_code == 415
    assert "UTF-8" in response.content.decode()


@pytest.mark.parametrize("charset", ["undefined", "latin-1"])
def test_it_refuses_a_multipart_login_form_that_is_not_utf_8_with_a_415(charset: str) -> None:
    client = Client(enforce_csrf_checks=True)
    fields = login_form(client)
    body = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )

    response = client.generic(
        "POST", "/admin/login/", body + b"--b--\r\n", content_type=f"multipart/form-data; boundary=b; charset={charset}"
    )

    assert response.status_code == 415


@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/auth/token/"])
def test_a_form_django_refuses_to_read_is_a_plain_400_with_csrf_checks(path: str, monkeypatch: Any) -> None:
    """Django raises BadRequest while the CSRF check reads the form; the 400 page must not read it again.

    The charset middleware normally answers such a form first; it is switched
    off here so that the error pages are tested on their own.
    """
    monkeypatch.setattr(security, "charset_refusal", lambda *args, **kwargs: None)
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    fields = login_form(client)

    response = client.generic(
        "POST", path, urlencode(fields).encode(), content_type="application/x-www-form-urlencoded; charset=latin-1"
    )

    if path.startswith("/api/"):  # the token endpoint reads JSON only
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "unsupported_media_type"
    else:
        assert response.status_code == 400
        assert b"Bad Request" in response.content
