"""Reads for the ingestion app."""

from __future__ import annotations

from functools import lru_cache

from .models import Dataset, SchemaVersion
from .schema import SchemaSpec, schema_parse


@lru_cache(maxsize=128)
def _spec(version_id: int, checksum: str) -> SchemaSpec:
    return schema_parse(SchemaVersion.objects.get(pk=version_id).definition)


def schema_spec(version: SchemaVersion) -> SchemaSpec:
    """The parsed schema of a version (versions are immutable, so it is cached)."""
    return _spec(version.pk, version.checksum)


def dataset_get(slug: str) -> Dataset:
    return Dataset.objects.select_related("current_schema").get(slug=slug)
