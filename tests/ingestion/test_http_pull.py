"""records_pull against a small real API: every pagination and auth style, limits, NDJSON."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.http import FetchError, PullResult, PullSpec, records_pull

RECORDS = [{"id": n, "name": f"item {n}", "updated": n * 10} for n in range(1, 8)]  # seven records


def ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records)


def pull(spec: PullSpec) -> tuple[PullResult, bytes]:
    out = io.BytesIO()
    result = records_pull(spec, out)
    return result, out.getvalue()


def json_response(data: Any, **headers: str) -> Response:
    return Response(json.dumps(data), content_type="application/json", headers=headers)


def newer(request: Request, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The API's incremental filter: records updated after ?since=."""
    since = int(request.args.get("since", 0))
    return [r for r in records if r["updated"] > since]


def page_api(request: Request) -> Response:
    page, size = int(request.args["page"]), int(request.args["per_page"])
    return json_response({"data": newer(request, RECORDS)[(page - 1) * size : page * size]})


def offset_api(request: Request) -> Response:
    offset, limit = int(request.args["offset"]), int(request.args["limit"])
    return json_response(newer(request, RECORDS)[offset : offset + limit])


def cursor_api(request: Request) -> Response:
    start = int(request.args.get("cursor", "c0")[1:])
    end = start + 3
    return json_response({"items": RECORDS[start:end], "meta": {"next": f"c{end}" if end < len(RECORDS) else None}})


def next_url_api(request: Request) -> Response:
    page = int(request.args.get("p", 1))
    following = f"/items?p={page + 1}" if page * 3 < len(RECORDS) else None
    return json_response({"results": RECORDS[(page - 1) * 3 : page * 3], "next": following})


def link_api(request: Request) -> Response:
    page = int(request.args.get("p", 1))
    response = json_response(RECORDS[(page - 1) * 3 : page * 3])
    if page * 3 < len(RECORDS):
        response.headers["Link"] = f'</items?p={page + 1}>; rel="next", </items?p=1>; rel="first"'
    return response


def seen(httpserver: HTTPServer) -> list[Request]:
    return [request for request, _ in httpserver.log]


@pytest.mark.parametrize(
    ("api", "options", "pages"),
    [
        (page_api, {"pagination": "page", "records_path": "data", "size_param": "per_page", "page_size": 3}, 4),
        (
            offset_api,
            {"pagination": "offset", "page_param": "offset", "size_param": "limit", "page_size": 3},
            4,
        ),  # a short page is not the end: only an empty one is
        (
            cursor_api,
            {"pagination": "cursor", "page_param": "cursor", "records_path": "items", "next_path": "meta.next"},
            3,
        ),
        (next_url_api, {"pagination": "next_url", "records_path": "results", "next_path": "next"}, 3),
        (link_api, {"pagination": "link_header"}, 3),
    ],
)
def test_every_pagination_style_pulls_every_record_once(
    httpserver: HTTPServer, api: Any, options: dict[str, Any], pages: int
) -> None:
    httpserver.expect_request("/items").respond_with_handler(api)
    result, body = pull(PullSpec(url=httpserver.url_for("/items"), **options))
    assert body == ndjson(RECORDS)
    assert (result.records, result.pages, result.stopped) == (7, pages, "")
    assert result.bytes_received == sum(len(response.get_data()) for _, response in httpserver.log)


def test_without_pagination_one_request_is_made(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items", query_string={"status": "open"}).respond_with_handler(
        lambda request: json_response(RECORDS)
    )
    result, body = pull(PullSpec(url=httpserver.url_for("/items") + "?status=closed", params={"status": "open"}))
    assert body == ndjson(RECORDS)
    assert (result.records, result.pages) == (7, 1)


def test_offset_pagination_stops_on_a_short_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(offset_api)
    spec = PullSpec(
        url=httpserver.url_for("/items"), pagination="offset", page_param="offset", size_param="limit", page_size=7
    )
    result, _ = pull(spec)
    assert result.pages == 2  # seven records fill the first page exactly; the second is empty
    assert [r.args["offset"] for r in seen(httpserver)] == ["0", "7"]


def test_page_pagination_starts_at_first_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(
        lambda request: json_response([] if int(request.args["page"]) > 1 else [{"id": 1}])
    )
    result, _ = pull(PullSpec(url=httpserver.url_for("/items"), pagination="page", first_page=0))
    assert [r.args["page"] for r in seen(httpserver)] == ["0", "1", "2"]
    assert result.records == 2


def test_a_post_source_sends_its_body_with_every_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/search", method="POST", json={"q": "books"}).respond_with_handler(page_api)
    spec = PullSpec(
        url=httpserver.url_for("/search"),
        method="POST",
        body={"q": "books"},
        pagination="page",
        size_param="per_page",
        page_size=5,
        records_path="data",
    )
    assert pull(spec)[0].records == 7


# --- authentication


@pytest.mark.parametrize(
    ("auth_kind", "auth_name", "header", "param", "expected"),
    [
        ("bearer", "", "Authorization", "", "Bearer s3cret"),
        ("api_key_header", "", "X-API-Key", "", "s3cret"),
        ("api_key_header", "X-Token", "X-Token", "", "s3cret"),
        ("api_key_query", "", "", "api_key", "s3cret"),
        ("api_key_query", "key", "", "key", "s3cret"),
        ("basic", "ana", "Authorization", "", "Basic " + base64.b64encode(b"ana:s3cret").decode()),
    ],
)
def test_every_auth_style_sends_the_credentials_with_every_page(
    httpserver: HTTPServer, auth_kind: str, auth_name: str, header: str, param: str, expected: str
) -> None:
    httpserver.expect_request("/items").respond_with_handler(next_url_api)
    spec = PullSpec(
        url=httpserver.url_for("/items"),
        auth_kind=auth_kind,
        auth_name=auth_name,
        secret="s3cret",
        pagination="next_url",
        records_path="results",
        next_path="next",
    )
    assert pull(spec)[0].records == 7
    requests = seen(httpserver)
    assert len(requests) == 3
    for request in requests:
        assert (request.headers.get(header) if header else request.args.get(param)) == expected
        assert list(request.args).count(param) <= 1  # a follow-up link never carries the key twice


def test_credentials_do_not_follow_a_next_link_to_another_origin(httpserver: HTTPServer) -> None:
    other_origin = f"http://127.0.0.1:{httpserver.port}"  # the same server, another origin
    httpserver.expect_request("/items").respond_with_handler(
        lambda request: json_response({"results": [1], "next": f"{other_origin}/elsewhere"})
    )
    httpserver.expect_request("/elsewhere").respond_with_handler(lambda request: json_response({"results": [2]}))
    for auth_kind in ("bearer", "api_key_query"):
        spec = PullSpec(
            url=httpserver.url_for("/items"),
            auth_kind=auth_kind,
            secret="s3cret",
            pagination="next_url",
            records_path="results",
            next_path="next",
        )
        assert pull(spec)[0].records == 2
    own_bearer, foreign_bearer, own_key, foreign_key = seen(httpserver)
    assert own_bearer.headers["Authorization"] == "Bearer s3cret" and own_key.args["api_key"] == "s3cret"
    assert "Authorization" not in foreign_bearer.headers
    assert "api_key" not in foreign_key.args


# --- incremental pulls


def test_an_incremental_pull_sends_the_watermark_and_gets_only_new_records(httpserver: HTTPServer) -> None:
    records = list(RECORDS)

    def api(request: Request) -> Response:
        page = int(request.args["page"])
        return json_response({"data": newer(request, records)[(page - 1) * 3 : page * 3]})

    httpserver.expect_request("/items").respond_with_handler(api)
    spec = PullSpec(
        url=httpserver.url_for("/items"),
        pagination="page",
        records_path="data",
        cursor_field="updated",
        watermark_param="since",
    )
    first, body = pull(spec)
    assert (first.records, first.watermark) == (7, "70")
    assert all("since" not in r.args for r in seen(httpserver))

    records += [{"id": 8, "updated": 80}, {"id": 9, "updated": 90}]
    httpserver.clear_log()
    second, body = pull(PullSpec(**{**spec.__dict__, "watermark": first.watermark}))
    assert body == ndjson(records[7:])
    assert (second.records, second.watermark) == (2, "90")
    assert [r.args.get("since") for r in seen(httpserver)] == ["70", "70"]  # the first page and the follow-up


def test_an_empty_incremental_pull_keeps_the_old_watermark(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(lambda request: json_response(newer(request, RECORDS)))
    spec = PullSpec(url=httpserver.url_for("/items"), cursor_field="updated", watermark_param="since", watermark="70")
    assert pull(spec)[0] == PullResult(records=0, pages=1, bytes_received=2, watermark="70", stopped="")


@pytest.mark.parametrize(
    ("values", "watermark"),
    [
        ([9, 10, 2.5], "10"),  # numbers compare as numbers, not as text
        (["2024-01-09T00:00:00Z", "2024-01-10T00:00:00Z"], "2024-01-10T00:00:00Z"),
        ([9, "10"], "10"),  # a number sent as a string is still a number
        ([9, "a"], "a"),  # mixed with text: compared as text
        ([None], "0"),  # no record carries a value: the stored one stays
    ],
)
def test_the_watermark_is_the_maximum_of_the_cursor_field(
    httpserver: HTTPServer, values: list[Any], watermark: str
) -> None:
    records = [{"meta": {"ts": value}} for value in values] + ["not an object", {"other": 1}]
    httpserver.expect_request("/items").respond_with_handler(lambda request: json_response(records))
    spec = PullSpec(url=httpserver.url_for("/items"), cursor_field="meta.ts", watermark="0")
    assert pull(spec)[0].watermark == watermark


# --- limits and loops


def test_max_pages_stops_the_pull_without_failing_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(page_api)
    spec = PullSpec(
        url=httpserver.url_for("/items"),
        pagination="page",
        records_path="data",
        size_param="per_page",
        page_size=3,
        max_pages=2,
    )
    result, body = pull(spec)
    assert body == ndjson(RECORDS[:6])
    assert (result.records, result.pages, result.stopped) == (6, 2, "max_pages (2) reached")


def test_max_records_stops_the_pull_mid_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(offset_api)
    spec = PullSpec(
        url=httpserver.url_for("/items"),
        pagination="offset",
        page_param="offset",
        size_param="limit",
        page_size=3,
        max_records=4,
    )
    result, body = pull(spec)
    assert body == ndjson(RECORDS[:4])
    assert (result.records, result.pages, result.stopped) == (4, 2, "max_records (4) reached")


def test_a_next_link_seen_before_is_a_loop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(
        lambda request: json_response({"results": [1], "next": "/items?p=2"})
    )
    spec = PullSpec(url=httpserver.url_for("/items"), pagination="next_url", records_path="results", next_path="next")
    with pytest.raises(FetchError, match="pointed to a page it had already given; stopped to avoid a loop"):
        pull(spec)
    assert len(httpserver.log) == 2


def test_a_cursor_seen_before_is_a_loop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items").respond_with_handler(lambda request: json_response({"d": [1], "next": "abc"}))
    spec = PullSpec(url=httpserver.url_for("/items"), pagination="cursor", records_path="d", next_path="next")
    with pytest.raises(FetchError, match="sent a cursor it had sent before; stopped to avoid a loop"):
        pull(spec)
    assert [r.args.get("page") for r in seen(httpserver)] == [None, "abc"]


def test_one_deadline_covers_the_whole_pull(httpserver: HTTPServer, settings: Any) -> None:
    settings.SOURCES = {**settings.SOURCES, "DEADLINE": 1.0}

    def slow_page(request: Request) -> Response:
        time.sleep(0.3)
        return page_api(request)

    httpserver.expect_request("/items").respond_with_handler(slow_page)
    spec = PullSpec(url=httpserver.url_for("/items"), pagination="page", records_path="data", size_param="per_page")
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^the pull passed its deadline of 1 s"):
        pull(PullSpec(**{**spec.__dict__, "page_size": 1}))
    assert time.monotonic() - started < 1.5


# --- the records and the NDJSON written


def test_identical_payloads_give_identical_bytes_in_upstream_key_order(httpserver: HTTPServer) -> None:
    records = [{"z": 1, "a": "café ☕", "n": None}, 7, "text", None, [1, 2], {"lone": "\ud800"}]
    httpserver.expect_request("/items").respond_with_data(
        json.dumps(records), content_type="application/json; charset=utf-8"
    )
    spec = PullSpec(url=httpserver.url_for("/items"))
    first, second = pull(spec)[1], pull(spec)[1]
    assert first == second
    assert first.decode().splitlines() == [
        '{"z":1,"a":"café ☕","n":null}',
        "7",
        '"text"',
        "null",
        "[1,2]",
        '{"lone":"\\ud800"}',  # a lone surrogate cannot be UTF-8, so it stays escaped
    ]


@pytest.mark.parametrize(
    ("payload", "records_path", "message"),
    [
        ({"data": []}, "items", "has no 'items' (the records path)"),
        ({"data": {"items": {"a": 1}}}, "data.items", "'data.items' in the response from GET http://"),
        ({"data": None}, "data", "is null, not a list of records; check the records path"),
        ({"results": []}, "", "the response body from GET http://"),
    ],
)
def test_a_records_path_that_is_missing_or_not_a_list_fails(
    httpserver: HTTPServer, payload: Any, records_path: str, message: str
) -> None:
    httpserver.expect_request("/items").respond_with_json(payload)
    with pytest.raises(FetchError) as excinfo:
        pull(PullSpec(url=httpserver.url_for("/items"), records_path=records_path))
    assert message in str(excinfo.value)


def test_the_secret_never_appears_in_errors_or_logs(
    httpserver: HTTPServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SOURCES = {**settings.SOURCES, "MAX_RETRIES": 1}
    httpserver.expect_request("/items").respond_with_data("down", status=503)
    caplog.set_level(logging.DEBUG, logger="ingestion.http")
    spec = PullSpec(url=httpserver.url_for("/items"), auth_kind="api_key_query", secret="k3y-v@lue/+")
    with pytest.raises(FetchError) as excinfo:
        pull(spec)
    assert seen(httpserver)[0].args["api_key"] == "k3y-v@lue/+"  # it was sent, as the query parameter
    message = str(excinfo.value)
    assert message == f"GET {httpserver.url_for('/items')} failed after 2 attempts: answered 503 Service Unavailable"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ingestion."))
    assert "retry 1 of 1" in logged
    for form in ("k3y-v@lue/+", "k3y-v%40lue%2F%2B", "api_key"):
        assert form not in message and form not in logged


@pytest.mark.parametrize(
    "options",
    [
        {"auth_kind": "oauth"},
        {"pagination": "scroll"},
        {"method": "DELETE"},
        {"pagination": "cursor"},  # without next_path
        {"page_size": 0},
    ],
)
def test_an_impossible_spec_is_refused_when_built(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PullSpec(url="https://api.example.com/items", **options)


def test_the_watermark_never_moves_backwards(httpserver: HTTPServer, tmp_path: Any) -> None:
    """An API that ignores the watermark filter and returns older records must not rewind it."""
    httpserver.expect_request("/old").respond_with_json([{"id": 1, "seq": 3}, {"id": 2, "seq": 5}])
    httpserver.expect_request("/old-text").respond_with_json([{"id": 1, "at": "2024-01-01T00:00:00Z"}])
    with (tmp_path / "a.ndjson").open("wb") as out:
        numeric = records_pull(
            PullSpec(url=httpserver.url_for("/old"), cursor_field="seq", watermark_param="since", watermark="9"), out
        )
        text = records_pull(
            PullSpec(
                url=httpserver.url_for("/old-text"),
                cursor_field="at",
                watermark_param="since",
                watermark="2025-06-01T00:00:00Z",
            ),
            out,
        )

    assert numeric.watermark == "9"
    assert text.watermark == "2025-06-01T00:00:00Z"


def test_numbers_sent_as_strings_compare_as_numbers_for_the_watermark(httpserver: HTTPServer, tmp_path: Any) -> None:
    httpserver.expect_request("/ids").respond_with_json([{"seq": "9"}, {"seq": "10"}])
    with (tmp_path / "ids.ndjson").open("wb") as out:
        result = records_pull(
            PullSpec(url=httpserver.url_for("/ids"), cursor_field="seq", watermark_param="after", watermark="8"), out
        )

    assert result.watermark == "10"
