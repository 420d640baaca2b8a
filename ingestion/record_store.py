"""The port through which a schema change reaches the stored records.

A dataset's records live in the ``processing`` app (one typed table per
dataset), which sits above this one: ``ingestion`` must not import it. So
``processing`` registers its ``RecordStore`` here when the project starts
(``ProcessingConfig.ready``), and ``dataset_apply`` calls it in the same
transaction that writes the new schema version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .models import Dataset, SchemaVersion
    from .schema import SchemaSpec


@dataclass
class StoredRecordsReport:
    """What a schema change does (or would do) to the stored records."""

    records_checked: int = 0
    records_failing: int = 0
    records_quarantined: int = 0
    run_id: int | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    columns_dropped: list[str] = field(default_factory=list)
    columns_converted: list[str] = field(default_factory=list)


class RecordStore(Protocol):
    def schema_preview(self, *, dataset: Dataset, old: SchemaSpec | None, new: SchemaSpec) -> StoredRecordsReport:
        """Check the stored records against ``new`` and change nothing."""

    def schema_applied(
        self, *, dataset: Dataset, old: SchemaSpec | None, new: SchemaSpec, version: SchemaVersion, user: Any
    ) -> StoredRecordsReport:
        """Bring the stored records to ``new``, which was just written as ``version``."""

    def dataset_deleted(self, *, dataset: Dataset) -> None:
        """Drop what holds the dataset's records (it has none: only empty datasets are deleted)."""


_store: RecordStore | None = None


def record_store_register(store: RecordStore) -> None:
    global _store
    _store = store


def record_store() -> RecordStore:
    if _store is None:
        raise ImproperlyConfigured("No record store is registered: is 'processing' in INSTALLED_APPS?")
    return _store
