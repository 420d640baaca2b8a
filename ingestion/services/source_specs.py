"""Sources from a file: ``manage.py source_apply SPEC.json`` creates or updates one source, of any kind.

A spec is one JSON object: ``slug`` (or ``name``), ``dataset`` (its slug),
``kind`` (``http`` when left out) and the kind's fields (ingestion.sourcekinds),
plus ``secret`` for an HTTP source. Credentials in a stream source's URL are
stored encrypted, as HTTP secrets are, and never shown again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Dataset, Source
from ..sourcekinds import DEFAULT_KIND, SECRET_FIELD, SOURCE_KINDS, read_only_fields
from .sources import SOURCE_FIELDS, source_create, source_update

# Largest spec file read.
MAX_SPEC_SIZE = 1024 * 1024


@dataclass
class SourceApplyResult:
    source: Source
    created: bool
    changed: list[str]


def _spec_fields(spec: Any) -> tuple[str, str, dict[str, Any], str | None]:
    if not isinstance(spec, dict):
        raise ValidationError("A source spec is one JSON object.")
    data = dict(spec)
    name = data.pop("slug", None)
    other = data.pop("name", None)
    if name is not None and other is not None and name != other:
        raise ValidationError({"slug": "Give the source's slug once (slug or name)."})
    name = name if name is not None else other
    if not isinstance(name, str) or not name:
        raise ValidationError({"slug": 'Name the source: "slug": "orders-stream".'})
    dataset = data.pop("dataset", None)
    if not isinstance(dataset, str) or not dataset:
        raise ValidationError({"dataset": "Name the dataset (its slug) the records go to."})
    secret = data.pop(SECRET_FIELD, None)
    if secret is not None and not isinstance(secret, str):
        raise ValidationError({SECRET_FIELD: "Must be a string."})
    data.setdefault("kind", DEFAULT_KIND)
    if data["kind"] not in SOURCE_KINDS:
        kinds = ", ".join(SOURCE_KINDS)
        raise ValidationError({"kind": f"Unknown source kind {data['kind']!r}; one of: {kinds}."})
    shown_only = set(data) & set(read_only_fields())
    unknown = set(data) - set(SOURCE_FIELDS) - shown_only
    if unknown:
        raise ValidationError(f"Unknown source fields: {', '.join(sorted(unknown))}.")
    if shown_only:
        raise ValidationError(f"These fields are kept by the source itself, not set: {', '.join(sorted(shown_only))}.")
    return name, dataset, data, secret


@transaction.atomic
def source_apply(*, spec: Any, user: Any = None) -> SourceApplyResult:
    """Create the source a spec names, or bring the existing one to what the spec says."""
    name, dataset_slug, data, secret = _spec_fields(spec)
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise ValidationError({"dataset": f"There is no dataset {dataset_slug!r}."})
    source = Source.objects.select_for_update().filter(name=name).first()
    if source is None:
        created = source_create(dataset=dataset, data={"name": name, **data}, secret=secret, user=user)
        return SourceApplyResult(source=created, created=True, changed=[])
    if source.dataset_id != dataset.pk:
        raise ValidationError({"dataset": "A source cannot move to another dataset; create a new source."})
    before = {k: getattr(source, k) for k in data}
    updated = source_update(source=source, data=data, secret=secret, user=user)
    changed = sorted(k for k in data if getattr(updated, k) != before[k])
    if secret is not None:
        changed.append(SECRET_FIELD)
    return SourceApplyResult(source=updated, created=False, changed=changed)
