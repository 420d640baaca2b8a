"""What an export format is: one ``ExportFormat`` declaring everything the doors need about it.

Each format lives in its own module of this package and is registered once
in ``processing.exports.EXPORT_FORMATS``. The API's export (its ``format``
choices, media types and OpenAPI responses), the ``export_records`` and
``export_rejected`` commands (their ``--format`` choices) ask the registry
(docs/development.md, "Adding an export format").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from ingestion.models import Dataset

from ..models import RejectedRow
from ..record_queries import RecordSelection

# Rows fetched from the database at a time.
ITER_CHUNK = 2000


class RecordsWriter(Protocol):
    """Writes a dataset's records: all of them, or those of ``selection``."""

    def __call__(self, dataset: Dataset, selection: RecordSelection | None = None, /) -> Iterator[Any]: ...


@dataclass(frozen=True)
class RejectedSelection:
    """Rejected rows to export (ordered), the columns of their files, and whether to name each row's run.

    A run's export names no run; a dataset's (across its runs) adds the run
    to each row (``_run`` in CSV, ``run`` in JSON).
    """

    rows: QuerySet[RejectedRow]
    headers: list[str]
    with_run: bool = False


@dataclass(frozen=True)
class ExportFormat:
    """Everything about one export format, declared once.

    ``name`` is the ``format`` the API and the commands take; ``media_type``
    (with ``charset`` for text) the response's ``Content-Type``;
    ``extension`` the downloaded file's. ``binary`` formats yield bytes and
    are only written to a file; text formats yield ``str``. ``records``
    writes a dataset's records (all of them, or those of a ``RecordSelection``:
    the records API's filters, a data page's search and run), ``rejected`` (None: not offered) a
    selection of rejected rows (a run's or a dataset's). ``description`` (of the export) and ``openapi`` with
    ``openapi_description`` (the JSON schema of the body and what it is)
    document the API's response.
    """

    name: str
    label: str
    media_type: str
    extension: str
    description: str
    records: RecordsWriter
    rejected: Callable[[RejectedSelection], Iterator[str]] | None = None
    binary: bool = False
    charset: str = ""
    openapi: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    openapi_description: str = ""

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset={self.charset}" if self.charset else self.media_type


def chain(*parts: Iterable[list[str]]) -> Iterator[list[str]]:
    for part in parts:
        yield from part


def json_array(items: Iterable[Any]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield ("\n" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder, ensure_ascii=False)
        first = False
    yield "\n]\n"
