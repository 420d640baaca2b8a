"""HttpClient against a real server: retries, time and size limits, redirects, JSON checks."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.http import Deadline, FetchError, FetchPolicy, HttpClient
from ingestion.http.client import retry_after_seconds


def sources(settings: Any, **changes: Any) -> None:
    settings.SOURCES = {**settings.SOURCES, **changes}


def fails(client: HttpClient, url: str, method: str = "GET", **kwargs: Any) -> str:
    with pytest.raises(FetchError) as excinfo:
        client.request_json(method, url, **kwargs)
    return str(excinfo.value)


def test_it_returns_the_decoded_json_with_status_and_size(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items", query_string={"page": "2"}).respond_with_data(
        b'[{"id": 1}]', content_type="application/json"
    )
    with HttpClient() as client:
        response = client.request_json("GET", httpserver.url_for("/items"), params={"page": 2})
    # Numbers keep their JSON text (see ingestion.jsontext).
    assert (response.status, response.data, response.size) == (200, [{"id": "1"}], len(b'[{"id": 1}]'))
    assert response.headers["Content-Type"] == "application/json"


def test_it_retries_after_429_as_long_as_retry_after_says(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/items").respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request("/items").respond_with_json([1])
    started = time.monotonic()
    with HttpClient() as client:
        assert client.request_json("GET", httpserver.url_for("/items")).data == ["1"]
    assert time.monotonic() - started >= 0.95
    assert len(httpserver.log) == 2


def test_retry_after_is_capped(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, RETRY_AFTER_MAX=0.05)
    httpserver.expect_oneshot_request("/items").respond_with_data("", status=503, headers={"Retry-After": "3600"})
    httpserver.expect_request("/items").respond_with_json([])
    started = time.monotonic()
    with HttpClient() as client:
        assert client.request_json("GET", httpserver.url_for("/items")).data == []
    assert time.monotonic() - started < 1


def test_a_retry_after_beyond_the_deadline_fails_at_once(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, DEADLINE=2.0)
    httpserver.expect_request("/items").respond_with_data("", status=429, headers={"Retry-After": "30"})
    started = time.monotonic()
    with HttpClient() as client:
        message = fails(client, httpserver.url_for("/items"))
    assert message.startswith("the pull passed its deadline of 2 s (answered 429 Too Many Requests;")
    assert time.monotonic() - started < 1
    assert len(httpserver.log) == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(" 0 ") == 0
    assert retry_after_seconds("-3") == 0
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 < (retry_after_seconds(in_a_minute) or 0) <= 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds(None) is None


def test_it_retries_after_a_server_error(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/items").respond_with_data("oops", status=500)
    httpserver.expect_request("/items").respond_with_json({"ok": True})
    with HttpClient() as client:
        assert client.request_json("GET", httpserver.url_for("/items")).data == {"ok": True}
    assert [r.status_code for _, r in httpserver.log] == [500, 200]


def test_a_server_that_keeps_failing_gets_max_retries_plus_one_attempts(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, MAX_RETRIES=3)
    httpserver.expect_request("/items").respond_with_data("oops", status=502)
    with HttpClient() as client:
        message = fails(client, httpserver.url_for("/items") + "?token=abc")
    assert message == f"GET {httpserver.url_for('/items')} failed after 4 attempts: answered 502 Bad Gateway"
    assert len(httpserver.log) == 4


def test_backoff_grows_exponentially_up_to_its_cap(settings: Any) -> None:
    client = HttpClient(FetchPolicy(backoff_base=1.0, backoff_max=5.0))
    waits = [client._wait(attempt, None) for attempt in (1, 2, 3, 4, 5)]
    assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 4
    assert all(2.5 <= wait <= 5 for wait in waits[3:])


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "answered 404 Not Found"),
        (400, "answered 400 Bad Request"),
        (401, "answered 401 Unauthorized; check the source's credentials"),
        (403, "answered 403 Forbidden; check the source's credentials"),
    ],
)
def test_client_errors_fail_at_once(httpserver: HTTPServer, status: int, message: str) -> None:
    httpserver.expect_request("/items").respond_with_data("no", status=status)
    with HttpClient() as client:
        assert fails(client, httpserver.url_for("/items")) == f"GET {httpserver.url_for('/items')} {message}"
    assert len(httpserver.log) == 1


def test_a_connection_failure_is_retried_and_reported_without_os_details(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, MAX_RETRIES=2)
    port = httpserver.port
    httpserver.stop()
    try:
        with HttpClient() as client:
            message = fails(client, f"http://127.0.0.1:{port}/items")
    finally:
        httpserver.start()
    assert message == f"GET http://127.0.0.1:{port}/items failed after 3 attempts: could not connect to 127.0.0.1"


def _drip(request: Request) -> Response:
    def body() -> Iterator[bytes]:
        yield b"["
        for _ in range(60):  # six seconds at most, should the client not give up
            time.sleep(0.1)
            yield b" "
        yield b"]"

    return Response(body(), content_type="application/json")


def test_a_slow_drip_cannot_keep_a_pull_past_its_deadline(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, DEADLINE=1.0, READ_TIMEOUT=5.0)
    httpserver.expect_request("/items").respond_with_handler(_drip)
    started = time.monotonic()
    with HttpClient() as client:
        message = fails(client, httpserver.url_for("/items"))
    elapsed = time.monotonic() - started
    url = httpserver.url_for("/items")
    assert message == f"the pull passed its deadline of 1 s (while reading the response from GET {url})"
    assert 0.9 <= elapsed < 1.5


@pytest.fixture
def header_drip() -> Iterator[str]:
    """A raw TCP server that answers with one header byte every 100 ms: werkzeug cannot."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            with contextlib.suppress(OSError):
                for _ in range(60):
                    time.sleep(0.1)
                    self.request.sendall(b"a")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/items"
    server.shutdown()
    server.server_close()


def test_a_slow_drip_of_headers_cannot_keep_a_pull_past_its_deadline(header_drip: str, settings: Any) -> None:
    sources(settings, DEADLINE=1.0, READ_TIMEOUT=5.0)
    started = time.monotonic()
    with HttpClient() as client:
        assert fails(client, header_drip) == "the pull passed its deadline of 1 s"
    assert 0.9 <= time.monotonic() - started < 1.5


def test_a_webhook_that_never_finishes_its_headers_is_given_up_after_its_timeout(header_drip: str) -> None:
    started = time.monotonic()
    with HttpClient() as client, pytest.raises(FetchError) as excinfo:
        client.post_json(header_drip, {"event": "run.failed"}, timeout=0.5)
    assert str(excinfo.value) == f"POST {header_drip} passed its deadline of 0.5 s"
    assert time.monotonic() - started < 1


def test_one_deadline_covers_every_request_made_with_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_json([])
    with HttpClient(deadline=Deadline(0.3)) as client:
        client.request_json("GET", httpserver.url_for("/items"))
        time.sleep(0.35)
        assert fails(client, httpserver.url_for("/items")) == "the pull passed its deadline of 0.3 s"
    assert len(httpserver.log) == 1


def test_malformed_json_is_reported_with_the_parser_message(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_data('{"id": 1,', content_type="application/json")
    with HttpClient() as client:
        assert fails(client, httpserver.url_for("/items")) == (
            f"the response from GET {httpserver.url_for('/items')} is not valid JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 10 (char 9)"
        )


def test_nan_is_not_accepted_as_json(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_data("[NaN]", content_type="application/json")
    with HttpClient() as client:
        assert fails(client, httpserver.url_for("/items")).endswith("is not valid JSON: NaN is not a JSON value")


def test_an_html_page_is_not_taken_for_json(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_data("<html>Login</html>", content_type="text/html; charset=utf-8")
    with HttpClient() as client:
        message = fails(client, httpserver.url_for("/items"))
    assert message == f"expected JSON but GET {httpserver.url_for('/items')} answered text/html"


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "application/json; charset=utf-8", None])
def test_json_content_types_and_a_missing_one_are_parsed(httpserver: HTTPServer, content_type: str | None) -> None:
    response = Response(b'{"a": [1]}')
    if content_type:
        response.headers["Content-Type"] = content_type
    else:
        del response.headers["Content-Type"]
    httpserver.expect_request("/items").respond_with_response(response)
    with HttpClient() as client:
        assert client.request_json("GET", httpserver.url_for("/items")).data == {"a": ["1"]}


def test_an_oversized_body_is_refused_from_its_content_length(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, MAX_RESPONSE_BYTES=100)
    httpserver.expect_request("/items").respond_with_json(list(range(100)))
    with HttpClient() as client:
        message = fails(client, httpserver.url_for("/items"))
    assert message == f"the response from GET {httpserver.url_for('/items')} is larger than the limit of 100 bytes"


def test_an_oversized_body_without_content_length_is_cut_off_while_streaming(
    httpserver: HTTPServer, settings: Any
) -> None:
    sources(settings, MAX_RESPONSE_BYTES=1000)
    chunks = [b"[", *([b"1," * 100] * 1000), b"1]"]  # 200 kB in chunks, no Content-Length
    httpserver.expect_request("/items").respond_with_response(Response(iter(chunks), content_type="application/json"))
    with HttpClient() as client:
        assert "is larger than the limit of 1000 bytes" in fails(client, httpserver.url_for("/items"))


def test_the_size_limit_counts_decompressed_bytes(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, MAX_RESPONSE_BYTES=10_000)
    body = gzip.compress(json.dumps([0] * 100_000).encode())  # about 1 kB, 300 kB once inflated
    httpserver.expect_request("/items").respond_with_data(
        body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    with HttpClient() as client:
        assert "is larger than the limit of 10000 bytes" in fails(client, httpserver.url_for("/items"))


def test_a_gzipped_body_is_decoded(httpserver: HTTPServer) -> None:
    body = gzip.compress(b'{"ok": true}')
    httpserver.expect_request("/items").respond_with_data(
        body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    with HttpClient() as client:
        assert client.request_json("GET", httpserver.url_for("/items")).data == {"ok": True}


# --- redirects


def test_303_turns_a_post_into_a_get_and_307_keeps_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_data(
        "", status=303, headers={"Location": "/results"}
    )
    httpserver.expect_request("/results", method="GET").respond_with_json(["got"])
    httpserver.expect_request("/v1/search", method="POST").respond_with_data(
        "", status=307, headers={"Location": "/v2/search"}
    )
    httpserver.expect_request("/v2/search", method="POST", json={"q": "x"}).respond_with_json(["posted"])
    with HttpClient() as client:
        assert client.request_json("POST", httpserver.url_for("/search"), json_body={"q": "x"}).data == ["got"]
        assert client.request_json("POST", httpserver.url_for("/v1/search"), json_body={"q": "x"}).data == ["posted"]


def test_credentials_do_not_follow_a_redirect_to_another_host(httpserver: HTTPServer) -> None:
    other_origin = f"http://127.0.0.1:{httpserver.port}"  # the same server under another host name
    httpserver.expect_request("/items").respond_with_data(
        "", status=302, headers={"Location": f"{other_origin}/moved?key=s3cret&page=2"}
    )
    httpserver.expect_request("/moved").respond_with_json([])
    with HttpClient() as client:
        response = client.request_json(
            "GET",
            httpserver.url_for("/items"),
            params={"key": "s3cret"},
            headers={"Authorization": "Bearer s3cret", "X-Api-Key": "s3cret", "Accept": "application/json"},
            strip_on_redirect=("X-Api-Key", "key"),
        )
    assert response.url == f"{other_origin}/moved?page=2"
    first, second = (request for request, _ in httpserver.log)
    assert first.headers["Authorization"] == "Bearer s3cret" and first.args["key"] == "s3cret"
    assert "Authorization" not in second.headers and "X-Api-Key" not in second.headers
    assert "key" not in second.args
    assert second.headers["Accept"] == "application/json"


def test_credentials_follow_a_redirect_within_the_same_origin(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_data("", status=301, headers={"Location": "/v2/items"})
    httpserver.expect_request("/v2/items", headers={"Authorization": "Bearer t"}).respond_with_json([])
    with HttpClient() as client:
        client.request_json("GET", httpserver.url_for("/items"), headers={"Authorization": "Bearer t"})


def test_redirects_stop_after_max_redirects(httpserver: HTTPServer, settings: Any) -> None:
    sources(settings, MAX_REDIRECTS=2)
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with HttpClient() as client:
        assert fails(client, httpserver.url_for("/loop")).endswith("redirected more than 2 times")
    assert len(httpserver.log) == 3


def test_a_redirect_to_another_scheme_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_data("", status=302, headers={"Location": "file:///etc/passwd"})
    with HttpClient() as client:
        assert fails(client, httpserver.url_for("/items")) == (
            f"GET {httpserver.url_for('/items')} redirected to a URL that cannot be fetched: "
            "Only http:// and https:// URLs can be fetched, not file://."
        )


# --- secrets and logs


def test_secrets_never_reach_errors_or_logs(
    httpserver: HTTPServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sources(settings, MAX_RETRIES=1)
    secret = "tok/en+1 2"
    httpserver.expect_request(f"/{secret}/items").respond_with_data("", status=500)
    caplog.set_level(logging.DEBUG, logger="ingestion.http")
    with HttpClient(redact=[secret]) as client:
        message = fails(client, httpserver.url_for(f"/{secret}/items"), params={"api_key": secret, "page": 3})
    assert message.startswith("GET http://localhost:") and "/***/items failed after 2 attempts" in message
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ingestion."))
    assert "-> 500 in" in logged and "retry 1 of 1" in logged
    for form in (secret, "tok%2Fen%2B1%202", "tok%2Fen%2B1+2", "api_key", "page=3"):
        assert form not in message
        assert form not in logged


def test_it_logs_each_request_without_its_query_string(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/items").respond_with_json([])
    caplog.set_level(logging.INFO, logger="ingestion.http.client")
    with HttpClient() as client:
        client.request_json("GET", httpserver.url_for("/items"), params={"since": "2024"})
    (record,) = (r for r in caplog.records if r.name.startswith("ingestion."))
    assert record.getMessage().startswith(f"GET {httpserver.url_for('/items')} -> 200 in ")
