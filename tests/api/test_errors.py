"""Bad input never gives a 500, and every error has the same JSON shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from api.exceptions import handler400, handler500
from ingestion.models import Dataset
from processing.models import Run

from .conftest import API, error_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"name": ', "parse_error"),
        (b'{"name": NaN}', "parse_error"),
        (b'{"reject_threshold": Infinity}', "parse_error"),
        (b'{"reject_threshold": 1e400}', "parse_error"),
        (b'{"name": "a\\u0000b"}', "parse_error"),
        (b'{"a\\u0000": 1}', "parse_error"),
        (b"[" * 5000 + b"]" * 5000, "parse_error"),
        (b"\xff\xfe not utf-8", "parse_error"),
        (b'{"name": 5}', "invalid"),
        (b'{"fields": "many"}', "invalid"),
        (b'{"reject_threshold": 1e308}', "invalid"),
        (
            b'{"fields": [{"name": "quantity", "type": "integer", "required": true, "min": 1e308, "max_length": 1}]}',
            "invalid",
        ),
        (b'{"key": [' + b"1" * 5000 + b"]}", "parse_error"),
    ],
)
def test_malformed_or_mistyped_json_is_a_400(as_manager: APIClient, body: bytes, code: str) -> None:
    response = as_manager.patch(f"{API}/datasets/sales/", data=body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == code
    assert Dataset.objects.get(slug="sales").name == "Sales events"


def test_a_huge_json_body_is_a_413(as_manager: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = as_manager.patch(
        f"{API}/datasets/sales/", data=b'{"description": "' + b"x" * 2000 + b'"}', content_type="application/json"
    )

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


def test_a_form_body_where_json_is_expected_is_a_415(as_manager: APIClient) -> None:
    response = as_manager.patch(
        f"{API}/datasets/sales/", data="name=x", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/?cursor=%00",
        "/datasets/sales/records/?description=%00",
        "/datasets/sales/records/?%00=1",
        "/datasets/sales/records/S1%00/",
        "/datasets/sales/export/?format=%00",
        "/runs/?dataset=sa%00les",
        "/runs/?status=%00",
    ],
)
def test_nul_bytes_in_query_strings_and_paths_are_a_400(as_viewer: APIClient, loaded: Run, path: str) -> None:
    response = as_viewer.get(API + path)

    assert response.status_code == 400
    error_of(response)


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/?search=x",
        "/datasets/sales/?expand=all",
        "/datasets/sales/openapi.json?v=2",
        "/datasets/sales/grants/?role=viewer",
        "/runs/1/?dataset=sales",
    ],
)
def test_unknown_query_parameters_are_a_400(as_manager: APIClient, loaded: Run, path: str) -> None:
    response = as_manager.get(API + path)

    assert response.status_code == 400
    assert error_of(response)["details"]


def test_an_unknown_api_path_is_a_json_404(as_viewer: APIClient) -> None:
    response = as_viewer.get(f"{API}/nothing-here/")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_method_not_allowed_is_a_json_405_with_allow(as_viewer: APIClient, sales: Dataset) -> None:
    response = as_viewer.post(f"{API}/datasets/sales/records/", {}, format="json")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_the_browsable_api_is_off_outside_debug(as_viewer: APIClient, sales: Dataset) -> None:
    response = as_viewer.get(f"{API}/datasets/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert error_of(response)["code"] == "not_acceptable"


def test_server_errors_under_api_are_json_and_elsewhere_html() -> None:
    api = handler500(RequestFactory().get("/api/v1/datasets/"))
    admin = handler500(RequestFactory().get("/admin/"))

    assert api.status_code == admin.status_code == 500
    assert api["Content-Type"] == "application/json"
    assert b'"server_error"' in api.content
    assert admin["Content-Type"].startswith("text/html")


def test_a_bad_request_seen_by_django_is_json_under_api() -> None:
    response = handler400(RequestFactory().get("/api/v1/datasets/"))

    assert response.status_code == 400
    assert b'"bad_request"' in response.content


def test_a_request_for_an_unknown_host_is_a_json_400(client: Any, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["dataflow.example.com"]

    response = client.get(f"{API}/datasets/", HTTP_HOST="evil.example.com")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/datasets/sales/records/?cursor=x"),
        ("PUT", "/datasets/sales/uploads/?dry_run=1"),
        ("DELETE", "/datasets/sales/export/?format=csv"),
    ],
)
def test_an_undeclared_method_is_a_405_whatever_the_query(
    as_manager: APIClient, sales: Dataset, method: str, path: str
) -> None:
    response = as_manager.generic(method, API + path)

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_numbers_beyond_64_bits_in_a_schema_are_refused_with_their_place(as_manager: APIClient) -> None:
    document = as_manager.get(f"{API}/datasets/sales/").json()
    document["fields"][0]["max_length"] = 10**40
    document["fields"][4]["max"] = 10**30

    response = as_manager.put(f"{API}/datasets/sales/", document, format="json")

    assert response.status_code == 400
    assert error_of(response)["details"]["schema"] == [
        "fields[0].max_length: is beyond the 64-bit integer range",
        "fields[4].max: is beyond the 64-bit integer range",
    ]
    assert as_manager.get(f"{API}/datasets/sales/").json()["fields"][0]["max_length"] == 64
