"""Push ingestion: rows posted as JSON become an NDJSON raw file and a run like any upload.

Small batches are processed within the request and answered row by row;
larger ones are queued.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.http import parse_header_parameters

from core.encodings import UTF8_ENCODINGS, encoding_canonical
from ingestion import jsontext
from ingestion.models import RawFile
from ingestion.services.datasets import dataset_schema_require
from ingestion.services.raw_files import UploadTooLarge, raw_file_receive
from ingestion.storage import data_storage

from ..models import LOADED_STATUSES, RejectedRow, Run, RunTrigger
from .runs import run_create, run_enqueue, run_execute

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
JSON_TYPES = ("application/json",)
PUSH_MEDIA_TYPES = JSON_TYPES + NDJSON_TYPES


@dataclass
class PushResult:
    run: Run
    rows: int
    queued: bool
    results: list[dict[str, Any]] = field(default_factory=list)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _declared_charset(content_type: str) -> str | None:
    """The canonical name of the ``charset`` the body declares, or None when it declares none.

    The API's parsers have already refused (415) a charset that is not a text
    encoding or not allowed for the media type.
    """
    declared = parse_header_parameters(content_type or "")[1].get("charset")
    if declared is None:
        return None
    name = encoding_canonical(declared)
    if name is None:
        raise ValidationError(f"The charset {declared[:40]!r} is not a supported text encoding.")
    return name


def _copy_limited(source: IO[bytes], out: IO[bytes], limit: int, *, utf8: bool = False) -> None:
    """Copy at most ``limit`` bytes; with ``utf8``, refuse a body that is not valid UTF-8 as it streams."""
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict") if utf8 else None
    while chunk := source.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        if decoder is not None:
            _utf8_check(decoder, chunk, size - len(chunk))
        out.write(chunk)
    if decoder is not None:
        _utf8_check(decoder, b"", size, final=True)


def _utf8_check(decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, *, final: bool = False) -> None:
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"An NDJSON body must be UTF-8; byte {offset + exc.start} is not ({exc.reason}). Nothing was kept."
        ) from None


def _json_array_to_ndjson(body: IO[bytes], out: IO[bytes], *, charset: str | None = None) -> int:
    """Write each element of a JSON array as an NDJSON line, numbers and text exactly as sent.

    A body that declares a charset is decoded with it (and refused when it
    does not decode); one without is detected as RFC 8259 and json.loads do
    (UTF-8, UTF-16 or UTF-32 from its first bytes).
    """
    raw = body.read()
    if charset is not None:
        try:
            # utf-8-sig: a byte-order mark is allowed before a body declared UTF-8, as when detected.
            text: str | bytes = raw.decode("utf-8-sig" if charset == "utf-8" else charset)
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"The body does not decode as its declared charset {charset} (byte {exc.start}: {exc.reason})."
            ) from None
    else:
        text = raw
    try:
        rows = jsontext.loads(text)
    except RecursionError:
        raise ValidationError("The body is not valid JSON: nesting too deep.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
        raise ValidationError(f"The body is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise ValidationError("Send a JSON array of row objects (or NDJSON with Content-Type application/x-ndjson).")
    for row in rows:
        out.write(jsontext.dumps_line(row))
    return len(rows)


def _count_lines(fh: IO[bytes]) -> int:
    # The same lines the NDJSON reader sees: split on "\n" only.
    return sum(1 for line in fh if line.strip().removeprefix(b"\xef\xbb\xbf").strip())


def rows_push(*, dataset: Any, body: IO[bytes], content_type: str, user: Any = None) -> PushResult:
    """Receive pushed rows for ``dataset`` and process them (now, or queued when there are many).

    A JSON array is stored as NDJSON, one element per line; an NDJSON body is
    stored as sent, so a line that is not a JSON object is rejected with its
    line number and reason rather than failing the batch. A push is always
    processed, even when the same rows came before (they count as unchanged).
    """
    media_type = _media_type(content_type)
    if media_type not in JSON_TYPES + NDJSON_TYPES:
        raise ValidationError(
            f"Unsupported content type {media_type or '(none)'!r}: send application/json (an array of row objects) "
            "or application/x-ndjson (one object per line)."
        )
    charset = _declared_charset(content_type)
    if media_type in NDJSON_TYPES and charset is not None and charset not in UTF8_ENCODINGS:
        raise ValidationError(f"An NDJSON body must be UTF-8; charset {charset!r} is not.")
    dataset_schema_require(dataset)
    work_dir = settings.DATAFLOW["WORK_DIR"]
    os.makedirs(work_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=work_dir) as received, tempfile.TemporaryFile(dir=work_dir) as ndjson:
        # NDJSON is stored as sent and read as UTF-8: refuse other bytes now, before any run exists.
        _copy_limited(body, received, settings.PUSH_MAX_BYTES, utf8=media_type in NDJSON_TYPES)
        received.seek(0)
        if media_type in JSON_TYPES:
            rows = _json_array_to_ndjson(received, ndjson, charset=charset)
            stored = ndjson
        else:
            rows = _count_lines(received)
            stored = received
        if rows == 0:
            raise ValidationError("The body holds no rows.")
        stored.seek(0)
        raw_file = raw_file_receive(
            dataset=dataset,
            source=stored,
            original_name=f"push.{RawFile.Format.NDJSON}",
            user=user,
            format=RawFile.Format.NDJSON,
            max_size=settings.PUSH_MAX_BYTES * 2,  # a JSON array grows a little as NDJSON
        )
    if rows > settings.PUSH_SYNC_MAX_ROWS:
        run = run_enqueue(dataset=dataset, raw_file=raw_file, trigger=RunTrigger.API, user=user, force=True)
        return PushResult(run=run, rows=rows, queued=True)
    run = run_create(dataset=dataset, raw_file=raw_file, trigger=RunTrigger.API, user=user, force=True)
    finished = run_execute(run_id=run.pk)
    assert finished is not None  # we just created it, nobody else can hold it
    return PushResult(run=finished, rows=rows, queued=False, results=_row_results(finished))


def _row_results(run: Run) -> list[dict[str, Any]]:
    """One entry per pushed row, in order: ``accepted`` or ``rejected`` with its errors."""
    if run.status not in LOADED_STATUSES:
        return []
    rejected = dict(RejectedRow.objects.filter(run=run).values_list("line_number", "errors"))
    results: list[dict[str, Any]] = []
    assert run.raw_file is not None  # a pushed run is created with its file
    with data_storage().open(run.raw_file.storage_name, "rb") as fh:
        index = 0
        for line_number, line in enumerate(fh, start=1):
            if not line.strip().removeprefix(b"\xef\xbb\xbf").strip():
                continue
            errors = rejected.get(line_number)
            status = "rejected" if errors else "accepted"
            entry: dict[str, Any] = {"index": index, "line": line_number, "status": status}
            if errors:
                entry["errors"] = errors
            results.append(entry)
            index += 1
    return results
