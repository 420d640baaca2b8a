"""Request bodies and their charset: only text encodings, never a codec that inflates or rewrites the body."""

from __future__ import annotations

import bz2
import io
import json
import time
import tracemalloc
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import SALES_HEADER, sales_row

from .conftest import API, PASSWORD, error_of

pytestmark = pytest.mark.django_db

# Codecs Python offers besides text encodings: each turns bytes into other bytes (or text into text).
NON_TEXT_CODECS = [
    "bz2_codec",
    "bz2",
    "zlib_codec",
    "zip",
    "base64_codec",
    "base64",
    "hex_codec",
    "hex",
    "rot13",
    "uu_codec",
    "quopri_codec",
]
# Text encodings that rewrite escapes rather than encode text.
ESCAPE_CODECS = ["unicode_escape", "raw_unicode_escape", "idna", "punycode"]


def post_token(body: bytes, content_type: str) -> Any:
    return APIClient().post(f"{API}/auth/token/", body, content_type=content_type)


def test_a_bz2_bomb_at_the_token_endpoint_is_refused_before_it_is_inflated(db: None) -> None:
    bomb = bz2.compress(bytes(50 * 1024 * 1024), 9)  # ~80 bytes that inflate to 50 MB
    assert len(bomb) < 1000

    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = post_token(bomb, "application/json; charset=bz2_codec")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 415
    error = error_of(response)
    assert error["code"] == "unsupported_media_type"
    assert "bz2_codec" in error["message"]
    assert "UTF-8" in error["message"]
    assert elapsed < 2.0
    assert peak < 10 * 1024 * 1024, f"the request allocated {peak} bytes"


@pytest.mark.parametrize("charset", NON_TEXT_CODECS + ESCAPE_CODECS)
def test_it_refuses_every_codec_that_is_not_a_text_encoding(charset: str) -> None:
    body = json.dumps({"username": "someone", "password": PASSWORD}).encode()

    response = post_token(body, f"application/json; charset={charset}")

    assert response.status_code == 415, response.content
    assert charset in error_of(response)["message"]


def test_it_refuses_an_unknown_charset_instead_of_guessing(db: None) -> None:
    response = post_token(b'{"username": "u", "password": "p"}', "application/json; charset=no-such-charset")

    assert response.status_code == 415
    assert "no-such-charset" in error_of(response)["message"]


@pytest.mark.parametrize("charset", ["iso-8859-1", "cp1252"])
def test_a_json_body_must_be_in_a_unicode_encoding(db: None, charset: str) -> None:
    response = post_token(b'{"username": "u", "password": "p"}', f"application/json; charset={charset}")

    assert response.status_code == 415
    assert "UTF-8" in error_of(response)["message"]


@pytest.mark.parametrize(
    "charset", ["utf-8", "UTF-8", "utf8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", '"utf-8"']
)
def test_unicode_json_bodies_still_obtain_a_token(viewer: Any, charset: str) -> None:
    text = json.dumps({"username": "viewer", "password": PASSWORD})

    response = post_token(text.encode(charset.strip('"')), f"application/json; charset={charset}")

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}


def test_a_json_body_without_a_charset_is_utf_8(viewer: Any) -> None:
    response = post_token(json.dumps({"username": "viewer", "password": PASSWORD}).encode(), "application/json")

    assert response.status_code == 200


def test_the_json_parser_itself_never_inflates_a_body() -> None:
    """Defence in depth: the parser refuses the codec even if a request reached it past the middleware."""
    from rest_framework.exceptions import UnsupportedMediaType

    from api.parsers import StrictJSONParser

    bomb = bz2.compress(bytes(50 * 1024 * 1024), 9)
    with pytest.raises(UnsupportedMediaType):
        StrictJSONParser().parse(io.BytesIO(bomb), "application/json; charset=bz2_codec", {})


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", "text/csv"])
def test_push_and_upload_refuse_a_compression_codec_as_charset(as_ingester: APIClient, content_type: str) -> None:
    bomb = bz2.compress(bytes(10 * 1024 * 1024), 9)
    path = f"{API}/datasets/sales/uploads/" if content_type == "text/csv" else f"{API}/datasets/sales/ingest/"

    response = as_ingester.post(path, bomb, content_type=f"{content_type}; charset=bz2_codec")

    assert response.status_code == 415
    assert "bz2_codec" in error_of(response)["message"]


def test_ndjson_must_be_utf_8(as_ingester: APIClient) -> None:
    line = json.dumps({"id": "J1"}) + "\n"

    response = as_ingester.post(
        f"{API}/datasets/sales/ingest/", line.encode("utf-16"), content_type="application/x-ndjson; charset=utf-16"
    )

    assert response.status_code == 415
    assert "UTF-8" in error_of(response)["message"]


def test_a_csv_body_may_declare_any_text_encoding(as_ingester: APIClient) -> None:
    text = SALES_HEADER + "\n" + sales_row(1, description="caf\u00e9") + "\n"

    response = as_ingester.post(
        f"{API}/datasets/sales/uploads/?encoding=cp1252", text.encode("cp1252"), content_type="text/csv; charset=cp1252"
    )

    assert response.status_code == 202, response.content
