"""Pulling records from a JSON API, page by page, into NDJSON.

:func:`records_pull` turns what a source stores (a :class:`PullSpec`) into one NDJSON line
per record, so the pipeline can read a pull like any uploaded file. Only one page is held in
memory at a time, and one :class:`~ingestion.http.client.Deadline` covers the whole pull.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from .. import jsontext
from .client import Deadline, FetchPolicy, HttpClient, JsonResponse
from .guard import FetchError, origin, url_label, url_with_params
from .pagination import PAGINATION_STYLES, Page, pagination_style
from .paths import MISSING, value_at

logger = logging.getLogger(__name__)

AUTH_KINDS = ("none", "bearer", "api_key_header", "api_key_query", "basic")
PAGINATION_KINDS = tuple(PAGINATION_STYLES)
METHODS = ("GET", "POST")


@dataclass(frozen=True)
class PullSpec:
    """Everything needed to pull one source; ``secret`` is already decrypted."""

    url: str
    method: str = "GET"  # GET or POST
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None  # JSON body for POST
    auth_kind: str = "none"
    # API key header name (default "X-API-Key") / query parameter (default "api_key") / basic username
    auth_name: str = ""
    secret: str = ""  # bearer token, API key or basic password
    records_path: str = ""  # dotted path to the list of records; "" = the body is the list
    pagination: str = "none"  # a style of ingestion.http.pagination
    page_param: str = "page"  # query parameter for the page number, the offset or the cursor
    size_param: str = ""  # query parameter for the page size / limit ("" = not sent)
    page_size: int = 100
    first_page: int = 1
    next_path: str = ""  # dotted path to the next cursor (cursor) or next-page URL (next_url)
    max_pages: int = 100
    max_records: int = 100_000
    cursor_field: str = ""  # incremental pulls: the record field whose maximum becomes the new watermark
    watermark_param: str = ""  # query parameter that sends the stored watermark
    watermark: str = ""  # the stored watermark ("" on the first pull)

    def __post_init__(self) -> None:
        # A bad spec is a bug in whoever built it (forms check these), so it fails loudly.
        if self.method.upper() not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.auth_kind not in AUTH_KINDS:
            raise ValueError(f"auth_kind must be one of {', '.join(AUTH_KINDS)}, not {self.auth_kind!r}")
        if self.pagination not in PAGINATION_KINDS:
            raise ValueError(f"pagination must be one of {', '.join(PAGINATION_KINDS)}, not {self.pagination!r}")
        for name in pagination_style(self.pagination).missing(vars(self)):
            raise ValueError(f"{self.pagination} pagination needs {name}")
        if min(self.page_size, self.max_pages, self.max_records) < 1:
            raise ValueError("page_size, max_pages and max_records must be at least 1")


@dataclass
class PullResult:
    records: int
    pages: int
    bytes_received: int
    # The new watermark: the maximum of cursor_field over the records (numeric if all are
    # numbers), or the old watermark when no record carries the field.
    watermark: str
    stopped: str  # "" when the API ran out of pages, else why the pull stopped early


def ndjson_line(record: Any) -> bytes:
    """One record as an NDJSON line; key order and number spellings are kept, so equal payloads give equal bytes."""
    return jsontext.dumps_line(record)


_NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?\Z")


class _Watermark:
    """The running maximum of the cursor field, without keeping the values.

    Numbers (kept as their JSON text) compare as numbers, everything else as
    text. ``ordered`` stays true while each value is at least the one before:
    a pull cut short by a cap may only move the watermark when the API sent
    its records in cursor order, or the records after the cut would be
    skipped for good.
    """

    def __init__(self, field_path: str, old: str) -> None:
        self.field_path, self.old = field_path, old
        self.numeric = True
        self.ordered = True
        self.number_max: Decimal | None = None
        self.number_text = ""
        self.text_max: str | None = None
        self.last: Decimal | str | None = None

    def add(self, record: Any) -> None:
        if not self.field_path or not isinstance(record, Mapping):
            return
        value = value_at(record, self.field_path)
        if value is MISSING or value is None:
            return
        text = value if isinstance(value, str) else jsontext.dumps(value)
        # Numbers, and numbers sent as strings ("10" must come after "9"), compare as numbers.
        number = jsontext.JsonNumber(value).decimal() if isinstance(value, str) and _NUMERIC.match(value) else None
        if number is None:
            self.numeric = False
        elif self.number_max is None or number > self.number_max:
            self.number_max, self.number_text = number, str(value)
        key = number if number is not None and self.numeric else text
        last = self.last  # a number and a text do not compare: the values turned out not numeric
        if (isinstance(key, Decimal) and isinstance(last, Decimal) and key < last) or (
            isinstance(key, str) and isinstance(last, str) and key < last
        ):
            self.ordered = False
        self.last = key
        self.text_max = text if self.text_max is None else max(self.text_max, text)

    def value(self, *, truncated: bool = False) -> str:
        """The new watermark: never below the stored one (an API that ignores the filter must not rewind it)."""
        if self.text_max is None or (truncated and not self.ordered):
            return self.old
        if self.numeric and self.number_max is not None:
            old = jsontext.JsonNumber(self.old).decimal() if self.old else None
            if old is not None and old > self.number_max:
                return self.old
            return self.number_text
        return max(self.text_max, self.old)


def _credentials(spec: PullSpec) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
    """Auth headers, auth query parameters, and the names to strip on a cross-origin redirect."""
    secret = spec.secret
    if spec.auth_kind == "bearer":
        return {"Authorization": f"Bearer {secret}"}, {}, ()
    if spec.auth_kind == "api_key_header":
        name = spec.auth_name or "X-API-Key"
        return {name: secret}, {}, (name,)
    if spec.auth_kind == "api_key_query":
        name = spec.auth_name or "api_key"
        return {}, {name: secret}, (name,)
    if spec.auth_kind == "basic":
        token = base64.b64encode(f"{spec.auth_name}:{secret}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}, {}, ()
    return {}, {}, ()


def _scrub(message: str, secret: str) -> str:
    return message.replace(secret, "***") if secret else message


class BytesSink(Protocol):
    """Where a pull writes its NDJSON: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> int: ...


def records_pull(spec: PullSpec, out: BytesSink, *, client: HttpClient | None = None) -> PullResult:
    """Pull every page of ``spec`` and write its records to ``out`` as NDJSON.

    Without ``client``, one is made from the settings with a deadline of
    ``SOURCES["DEADLINE"]`` for the whole pull. Raises :class:`FetchError` with a message
    fit for users; the secret never appears in it.
    """
    owned = client is None
    if client is None:
        policy = FetchPolicy.from_settings()
        client = HttpClient(policy, deadline=Deadline(policy.deadline), redact=[spec.secret])
    try:
        return _Pull(spec, out, client).run()
    except FetchError as e:
        # A caller's client may not know the secret, so it is scrubbed here as well.
        raise type(e)(_scrub(str(e), spec.secret)) from None
    finally:
        if owned:
            client.close()


class _Pull:
    def __init__(self, spec: PullSpec, out: BytesSink, client: HttpClient) -> None:
        self.spec, self.out, self.client = spec, out, client
        self.auth_headers, self.auth_params, self.strip = _credentials(spec)
        self.result = PullResult(records=0, pages=0, bytes_received=0, watermark=spec.watermark, stopped="")
        self.watermark = _Watermark(spec.cursor_field, spec.watermark)
        self.seen: set[str] = set()  # next URLs or cursors already followed

    def _url(self, **extra: Any) -> str:
        """The source's URL with its parameters (the watermark and page size included) and ``extra``."""
        spec = self.spec
        params: dict[str, Any] = dict(spec.params)
        if spec.watermark and spec.watermark_param:
            params[spec.watermark_param] = spec.watermark
        if spec.size_param and pagination_style(spec.pagination).sends_size:
            params[spec.size_param] = spec.page_size
        params.update(extra)
        return url_with_params(spec.url, params)

    def run(self) -> PullResult:
        spec = self.spec
        pager = pagination_style(spec.pagination).pager(spec, self._url, self.seen)
        url = pager.first()
        self.seen.add(url)
        while True:
            response = self._fetch(url)
            label = f"{spec.method.upper()} {url_label(response.url)}"
            records = self._records(label, response.data)
            if not self._write(records):
                break
            next_url = pager.next(Page(response=response, records=records, label=label))
            if next_url is None:
                break
            if self.result.records >= spec.max_records:
                self.result.stopped = f"max_records ({spec.max_records}) reached"
                break
            if self.result.pages >= spec.max_pages:
                self.result.stopped = f"max_pages ({spec.max_pages}) reached"
                break
            url = next_url
        self.result.watermark = self.watermark.value(truncated=bool(self.result.stopped))
        logger.info(
            _scrub(
                f"Pulled {self.result.records} records in {self.result.pages} pages "
                f"({self.result.bytes_received} bytes) from {url_label(spec.url)}",
                spec.secret,
            )
        )
        return self.result

    def _fetch(self, url: str) -> JsonResponse:
        spec = self.spec
        # Credentials go only to the source's own origin, never to a host a next link names.
        own = origin(url) == origin(spec.url)
        response = self.client.request_json(
            spec.method,
            url,
            params=self.auth_params if own else None,
            headers={**spec.headers, **(self.auth_headers if own else {})},
            json_body=spec.body if spec.method.upper() == "POST" else None,
            strip_on_redirect=self.strip,
        )
        self.result.pages += 1
        self.result.bytes_received += response.size
        return response

    def _records(self, label: str, data: Any) -> list[Any]:
        path = self.spec.records_path
        records = value_at(data, path)
        if records is MISSING:
            raise FetchError(f"the response from {label} has no '{path}' (the records path)")
        if not isinstance(records, list):
            where = f"'{path}' in the response" if path else "the response body"
            raise FetchError(
                f"{where} from {label} is {type(records).__name__ if records is not None else 'null'}, "
                "not a list of records; check the records path"
            )
        return records

    def _write(self, records: list[Any]) -> bool:
        """Write what fits under max_records; False when the limit cut the page short."""
        room = self.spec.max_records - self.result.records
        for record in records[:room]:
            self.out.write(ndjson_line(record))
            self.watermark.add(record)
        self.result.records += min(room, len(records))
        if len(records) > room:
            self.result.stopped = f"max_records ({self.spec.max_records}) reached"
            return False
        return True
