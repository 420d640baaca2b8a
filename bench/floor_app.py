"""The records API's floor: a bare WSGI app serving the benchmark's pages with one query each.

Run by bench/api_bench.py under the same gunicorn settings as DataFlow
(``dataflow/gunicorn.conf.py``, same workers and bind), it answers
``GET /api/v1/datasets/<slug>/records/`` with the same JSON as the records
API (``{"next", "previous", "results": [{key, data, schema_version,
first_run, last_run, source_line, created_at, updated_at, url}]}``) from the
same typed table, for the pages the benchmark asks for: the first page, a
page after a keyset cursor on the key (the API's own cursor format), and
either of those filtered on equality of one field (``?country=FR``).

What it leaves out is what the floor measures: no Django, no
authentication, no permission or throttle, no schema look-up per request,
no validation beyond what these pages need. One connection per worker
process (gunicorn's sync workers serve one request at a time), opened on
the first request, in autocommit, without prepared statements; each page
is one ``SELECT`` of 101 rows.

Configuration: ``FLOOR_DATABASE_URL`` (required), ``FLOOR_TABLE_SCHEMA``
(default ``datasets``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import psycopg
from psycopg import sql

PAGE_SIZE = 100
PREFIX = "/api/v1/datasets/"
LINEAGE = ("_key", "_schema_version", "_first_run_id", "_last_run_id", "_source_line", "_created_at", "_updated_at")
UTC_TEXT = 'YYYY-MM-DD"T"HH24:MI:SS.US'
# As the records API reads each type: canonical text of docs/schema.md.
READS = {
    "timestamp with time zone": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "date": "to_char({}, 'YYYY-MM-DD')",
    "numeric": "({})::text",
}
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

Start = Callable[[str, list[tuple[str, str]]], Any]


class Table:
    """One dataset's table: its field columns and the SELECT reading a page of it."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, slug: str) -> None:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, slug],
        ).fetchall()
        self.fields = [name for name, _ in rows if not name.startswith("_")]
        self.columns = {name for name, _ in rows}
        kinds = dict(rows)
        reads = [sql.SQL(READS.get(kinds[f], "{}")).format(sql.Identifier(f)) for f in self.fields]
        lineage = [sql.Identifier(c) for c in LINEAGE[:5]]
        moments = [
            sql.SQL("to_char({} AT TIME ZONE 'UTC', {})").format(sql.Identifier(c), sql.Literal(UTC_TEXT))
            for c in LINEAGE[5:]
        ]
        self.select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join([*reads, *lineage, *moments]), sql.Identifier(schema, slug)
        )

    def page_query(
        self, filters: list[tuple[str, str]], after: str | None, backwards: bool
    ) -> tuple[sql.Composed, list[str]]:
        conditions = [sql.SQL("{} = %s").format(sql.Identifier(name)) for name, _ in filters]
        params = [value for _, value in filters]
        if after is not None:
            conditions.append(sql.SQL("_key < %s" if backwards else "_key > %s"))
            params.append(after)
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        order = sql.SQL(" ORDER BY _key DESC" if backwards else " ORDER BY _key")
        return self.select + where + order + sql.SQL(f" LIMIT {PAGE_SIZE + 1}"), params


_conn: psycopg.Connection[Any] | None = None
_tables: dict[str, Table] = {}


def _connection() -> psycopg.Connection[Any]:
    global _conn
    if _conn is None or _conn.closed:
        # No server-side prepared statements (Django's connection uses none
        # either): after five runs psycopg would switch to a generic plan,
        # which for an equality filter on a rare value walks the whole key
        # index instead of using the field's index.
        _conn = psycopg.connect(os.environ["FLOOR_DATABASE_URL"], autocommit=True, prepare_threshold=None)
        _tables.clear()
    return _conn


def _table(conn: psycopg.Connection[Any], slug: str) -> Table:
    if slug not in _tables:
        _tables[slug] = Table(conn, os.environ.get("FLOOR_TABLE_SCHEMA", "datasets"), slug)
    return _tables[slug]


def _cursor(key: str, backwards: bool) -> str:
    payload = {"o": "key", "v": key, "k": key, "b": backwards}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(raw: str) -> tuple[str, bool]:
    data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)))
    if data.get("o") != "key" or not isinstance(data.get("k"), str):
        raise ValueError("not a key cursor")
    return data["k"], bool(data["b"])


def _moment(text: str) -> str:
    # As DRF renders a UTC datetime: no fraction when it is zero.
    return (text[:19] if text.endswith(".000000") else text) + "Z"


def _link(base: str, params: Iterable[tuple[str, str]], key: str, backwards: bool) -> str:
    return f"{base}?{urlencode([*params, ('cursor', _cursor(key, backwards))])}"


def application(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/health/live/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    slug = path[len(PREFIX) :].removesuffix("/records/") if path.startswith(PREFIX) else ""
    if not slug or "/" in slug:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    conn = _connection()
    table = _table(conn, slug)
    query = parse_qsl(environ.get("QUERY_STRING", ""))
    filters = [(k, v) for k, v in query if k != "cursor"]
    raw_cursor = next((v for k, v in query if k == "cursor"), None)
    if any(k not in table.fields for k, _ in filters):
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"unknown filter"]
    after, backwards = _decode(raw_cursor) if raw_cursor else (None, False)

    statement, params = table.page_query(filters, after, backwards)
    rows = conn.execute(statement, params).fetchall()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if backwards:
        rows.reverse()

    host = f"{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST') or environ['SERVER_NAME']}"
    base = host + path
    width = len(table.fields)
    results = [
        {
            "key": row[width],
            "data": dict(zip(table.fields, row[:width], strict=True)),
            "schema_version": row[width + 1],
            "first_run": row[width + 2],
            "last_run": row[width + 3],
            "source_line": row[width + 4],
            "created_at": _moment(row[width + 5]),
            "updated_at": _moment(row[width + 6]),
            "url": f"{base}{quote(row[width], safe=_PATH_SAFE)}/",
        }
        for row in rows
    ]
    # The links the records API gives: next after the last row when there is
    # more, previous before the first row once a cursor moved forward.
    next_url = previous_url = None
    if rows:
        if more or (backwards and rows):
            next_url = _link(base, filters, rows[-1][width], False)
        if raw_cursor and (not backwards or more):
            previous_url = _link(base, filters, rows[0][width], True)
    elif raw_cursor:
        previous_url = f"{base}?{urlencode(filters)}" if filters else base
    body = _dumps({"next": next_url, "previous": previous_url, "results": results}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
