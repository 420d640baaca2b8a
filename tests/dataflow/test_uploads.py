"""Chunked request bodies (Transfer-Encoding: chunked) under gunicorn, as production and ``make run`` serve them."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework_simplejwt.tokens import RefreshToken

from core.uploads import upload_body_limit
from tests.conftest import SALES_HEADER, SmallDisk, sales_row
from tests.webserver import Gunicorn, Runserver, gunicorn_serving

PASSWORD = "correct horse battery staple"
MAX_UPLOAD = 100_000
PUSH_MAX = 50_000
SEED = f"""
import json
from django.contrib.auth import get_user_model
from ingestion.models import DatasetGrant, DatasetRole
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from tests.conftest import SALES_SCHEMA
dataset = dataset_apply(spec=schema_parse(json.loads(json.dumps(SALES_SCHEMA)))).dataset
user = get_user_model().objects.create_user("ingester", password={PASSWORD!r})
DatasetGrant.objects.create(dataset=dataset, user=user, role=DatasetRole.INGESTER)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    with gunicorn_serving(
        tmp_path_factory.mktemp("gunicorn"),
        SEED,
        MAX_UPLOAD_SIZE=str(MAX_UPLOAD),
        PUSH_MAX_BYTES=str(PUSH_MAX),
        API_THROTTLE_UPLOADS="1000/hour",
        API_THROTTLE_AUTH="1000/minute",
        API_THROTTLE_ANON="1000/minute",
    ) as web:
        yield web


@pytest.fixture(scope="module")
def token(server: Gunicorn) -> str:
    response = requests.post(
        f"{server.url}/api/v1/auth/token/", json={"username": "ingester", "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_raw_files(server: Gunicorn) -> list[Path]:
    return (
        [p for p in (server.data_dir / "raw").rglob("*") if p.is_file()] if (server.data_dir / "raw").exists() else []
    )


def sent_chunked(response: requests.Response) -> bool:
    headers = response.request.headers
    return headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers


def csv_bytes(rows: int) -> bytes:
    return ("\n".join([SALES_HEADER, *(sales_row(n) for n in range(1, rows + 1))]) + "\n").encode()


def test_a_chunked_csv_upload_is_stored_whole_and_queued(server: Gunicorn, token: str) -> None:
    data = csv_bytes(500)
    assert 10_000 < len(data) < MAX_UPLOAD

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/uploads/",
        data=chunks(data),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=60,
    )

    assert sent_chunked(response)
    assert response.status_code == 202, response.text
    file = response.json()["file"]
    assert file["size"] == len(data)
    assert any(p.read_bytes() == data for p in stored_raw_files(server))


def test_a_chunked_multipart_upload_is_accepted(server: Gunicorn, token: str) -> None:
    data = csv_bytes(300)
    boundary = "dataflow-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="day.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/uploads/?force=true",
        data=chunks(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )

    assert sent_chunked(response)
    assert response.status_code == 202, response.text
    assert response.json()["file"]["size"] == len(data)
    assert response.json()["file"]["name"] == "day.csv"


def test_a_chunked_upload_past_the_limit_is_a_413_and_nothing_is_kept(server: Gunicorn, token: str) -> None:
    before = stored_raw_files(server)
    data = csv_bytes(3000)
    assert len(data) > MAX_UPLOAD + 64 * 1024

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/uploads/",
        data=chunks(data, 8192),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=60,
    )

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert str(MAX_UPLOAD + 64 * 1024) in response.json()["error"]["message"]
    assert stored_raw_files(server) == before


def test_a_chunked_upload_just_past_the_file_limit_is_a_413_too(server: Gunicorn, token: str) -> None:
    """Between the file limit and the multipart allowance, the exact check while storing answers."""
    before = stored_raw_files(server)
    data = csv_bytes(5000)[: MAX_UPLOAD + 10]

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/uploads/",
        data=chunks(data, 8192),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        timeout=60,
    )

    assert response.status_code == 413, response.text
    assert str(MAX_UPLOAD) in response.json()["error"]["message"]
    assert stored_raw_files(server) == before


@pytest.mark.parametrize("media_type", ["application/json", "application/x-ndjson"])
def test_chunked_rows_can_be_pushed(server: Gunicorn, token: str, media_type: str) -> None:
    rows = [
        {
            "id": f"P{n}",
            "timestamp": "2024-05-06T07:08:09Z",
            "category": "books",
            "value": 1.5,
            "quantity": 1,
            "customer_email": f"p{n}@example.com",
            "country": "nl",
            "is_active": True,
        }
        for n in range(20)
    ]
    if media_type == "application/json":
        body = json.dumps(rows).encode()
    else:
        body = "".join(json.dumps(r) + "\n" for r in rows).encode()

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/ingest/",
        data=chunks(body, 300),
        headers={"Authorization": f"Bearer {token}", "Content-Type": media_type},
        timeout=60,
    )

    assert sent_chunked(response)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 20
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}


def test_a_chunked_push_past_its_limit_is_a_413(server: Gunicorn, token: str) -> None:
    body = b"[" + b" " * PUSH_MAX + b"]"

    response = requests.post(
        f"{server.url}/api/v1/datasets/sales/ingest/",
        data=chunks(body, 8192),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=60,
    )

    assert response.status_code == 413
    assert str(PUSH_MAX) in response.json()["error"]["message"]


def test_a_chunked_json_body_obtains_a_token(server: Gunicorn) -> None:
    body = json.dumps({"username": "ingester", "password": PASSWORD}).encode()

    response = requests.post(
        f"{server.url}/api/v1/auth/token/",
        data=chunks(body, 7),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert sent_chunked(response)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access", "refresh"}


def test_a_large_chunked_body_to_a_small_endpoint_stops_at_its_limit(server: Gunicorn) -> None:
    """The token endpoint takes 2.5 MB (DATA_UPLOAD_MAX_MEMORY_SIZE), not the upload limit."""
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        while sent < 50 * 1024 * 1024:
            sent += 65536
            yield b" " * 65536

    try:
        response = requests.post(
            f"{server.url}/api/v1/auth/token/",
            data=endless(),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
    except requests.ConnectionError:
        # The server may answer and close while the client is still sending.
        assert sent < 50 * 1024 * 1024
        return
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def call_wsgi(body: bytes, **environ: Any) -> tuple[str, dict[str, Any]]:
    """Call the project's WSGI application in this process, as a server would; the status and the JSON answer."""
    from dataflow.wsgi import application

    answers: list[str] = []
    request = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/datasets/sales/uploads/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "CONTENT_TYPE": "text/csv",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        **environ,
    }
    # As Django's test client does: a request must not close the test's database connection,
    # which holds the test's transaction (close_old_connections would, autocommit being off).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(request, lambda status, headers: answers.append(status))
        try:
            content = b"".join(response)
        finally:
            getattr(response, "close", lambda: None)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answers[0], json.loads(content)


def test_a_server_that_does_not_decode_chunks_answers_411() -> None:
    """Django's runserver passes chunked bytes undecoded and unterminated: refuse instead of reading nothing."""
    status, answer = call_wsgi(b"5\r\nhello\r\n0\r\n\r\n")

    assert status == "411 Length Required"
    assert answer["error"]["code"] == "length_required"


def test_a_chunked_body_that_does_not_fit_the_temporary_folder_is_a_507(settings: Any, small_disk: SmallDisk) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(small_disk.path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024

    status, answer = call_wsgi(csv_bytes(20_000), **{"wsgi.input_terminated": True})

    assert status == "507 Insufficient Storage"
    assert answer["error"]["code"] == "insufficient_storage"
    assert small_disk.files() == []


def test_a_chunked_body_with_a_read_only_temporary_folder_is_a_503(settings: Any, small_disk: SmallDisk) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(small_disk.path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    small_disk.make_read_only()

    status, answer = call_wsgi(csv_bytes(100), **{"wsgi.input_terminated": True})

    assert status == "503 Service Unavailable"
    assert answer["error"]["code"] == "storage_unavailable"


def test_django_s_runserver_answers_a_chunked_body_with_411(tmp_path: Path) -> None:
    """runserver limits the socket to Content-Length (none, so 0): the body is unreadable, and it says so."""
    server = Runserver(tmp_path).start()
    try:
        response = requests.post(
            f"{server.url}/api/v1/datasets/sales/uploads/",
            data=chunks(csv_bytes(20)),
            headers={"Content-Type": "text/csv"},
            timeout=30,
        )
    finally:
        server.stop()

    assert sent_chunked(response)
    assert response.status_code == 411, response.text
    assert response.json()["error"]["code"] == "length_required"


def _signed_in_session(user: Any) -> str:
    """The key of a real session in which ``user`` is signed in, as the admin login leaves it."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store.create()
    return str(store.session_key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ("none", "413 Request Entity Too Large"),
        ("made-up token", "413 Request Entity Too Large"),
        ("made-up session", "413 Request Entity Too Large"),
        ("token of another kind", "413 Request Entity Too Large"),
        ("valid token", "404 Not Found"),  # past the size gate: the view answers (no such dataset for this user)
        ("signed-in session", "401 Unauthorized"),  # past the size gate: the API takes tokens only
    ],
)
def test_the_upload_limit_of_a_chunked_body_needs_credentials_that_hold(
    settings: Any, credentials: str, status: str
) -> None:
    """Without credentials that hold, the small limit applies before anything is stored; with them the view decides."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    data = csv_bytes(1000)
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(data) < upload_body_limit()
    user = get_user_model().objects.create_user("chunky", password="a-password-for-this-test-0123")
    refresh = RefreshToken.for_user(user)
    environ = {
        "none": {},
        "made-up token": {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        "made-up session": {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=not-a-session"},
        "token of another kind": {"HTTP_AUTHORIZATION": f"Bearer {refresh}"},  # a refresh token is no access token
        "valid token": {"HTTP_AUTHORIZATION": f"Bearer {refresh.access_token}"},
        "signed-in session": {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={_signed_in_session(user)}"},
    }[credentials]

    answer, body = call_wsgi(data, **{"wsgi.input_terminated": True, **environ})

    assert answer == status, body
