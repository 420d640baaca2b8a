"""A body's charset must be a text encoding on every URL, the admin's forms included."""

from __future__ import annotations

import pytest
from django.test import Client

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
