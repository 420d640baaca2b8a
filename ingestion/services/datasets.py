"""Datasets from schema files: creating, applying a new schema version, deleting, notification settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from ..audit import audit_record
from ..http.guard import URLRefused, url_validate
from ..models import AuditAction, Dataset, DatasetGrant, DatasetRole, RawFile, SchemaField, SchemaVersion
from ..record_store import StoredRecordsReport, record_store
from ..schema import SchemaSpec
from ..selectors import schema_spec
from .grants import DatasetConflict

# Webhooks one dataset may notify; the installation's NOTIFY_WEBHOOKS come on top.
MAX_DATASET_WEBHOOKS = 10


@dataclass(frozen=True)
class DatasetApplyResult:
    dataset: Dataset
    schema: SchemaVersion
    created: bool
    new_version: bool
    # What the new version did to the stored records (None: no new version).
    records: StoredRecordsReport | None = None


@transaction.atomic
def dataset_apply(*, spec: SchemaSpec, user: Any = None) -> DatasetApplyResult:
    """Create or update a dataset from a schema file.

    A change to the fields or the key creates a new schema version; other
    changes (name, description, delimiter, threshold) update the dataset in
    place. Applying the same file twice changes nothing.

    A new version reaches the stored records in the same transaction (the
    record store, see ``record_store.py``): records that no longer pass are
    quarantined as rejected rows of a ``schema_change`` run, so every stored
    record satisfies the current schema afterwards.
    """
    dataset, created = Dataset.objects.select_for_update().get_or_create(
        slug=spec.slug,
        defaults={"name": spec.name},
    )
    return _dataset_apply(dataset=dataset, created=created, spec=spec, user=user)


def _dataset_apply(*, dataset: Dataset, created: bool, spec: SchemaSpec, user: Any) -> DatasetApplyResult:
    """``dataset_apply`` on a locked dataset row; ``created``: the row is new (audited as a creation)."""
    if not created:
        dataset_key_change_check(dataset=dataset, spec=spec)
    dataset.name = spec.name
    dataset.description = spec.description
    dataset.key_fields = list(spec.key)
    dataset.delimiter = spec.delimiter
    dataset.reject_threshold = spec.reject_threshold
    current = dataset.current_schema
    previous = schema_spec(current) if current is not None else None
    checksum = spec.fields_checksum()
    new_version = current is None or current.checksum != checksum
    records: StoredRecordsReport | None = None
    if new_version:
        number = (current.number if current else 0) + 1
        current = SchemaVersion.objects.create(
            dataset=dataset,
            number=number,
            definition=spec.to_dict(),
            checksum=checksum,
            created_by=user if getattr(user, "pk", None) else None,
        )
        SchemaField.objects.bulk_create(
            SchemaField(
                schema=current,
                position=i,
                name=f.name,
                type=f.type,
                required=f.required,
                source=f.source,
                aliases=list(f.aliases),
                transforms=list(f.transforms),
                null_values=list(f.null_values),
                constraints=f.constraints,
                options=f.options,
            )
            for i, f in enumerate(spec.fields)
        )
        dataset.current_schema = current
        dataset.save()
        records = record_store().schema_applied(dataset=dataset, old=previous, new=spec, version=current, user=user)
    else:
        assert current is not None  # new_version is True whenever there is no schema yet
        # Keep the stored definition's non-field parts in step.
        current.definition = spec.to_dict()
        current.save(update_fields=["definition"])
    dataset.save()
    audit_record(
        action=AuditAction.DATASET_CREATED if created else AuditAction.DATASET_CHANGED,
        actor=user,
        dataset=dataset,
        obj=dataset,
        details={
            "schema_version": current.number,
            "new_schema_version": new_version,
            **({"records_quarantined": records.records_quarantined, "run": records.run_id} if records else {}),
        },
    )
    return DatasetApplyResult(
        dataset=dataset, schema=current, created=created, new_version=new_version, records=records
    )


def dataset_key_change_check(*, dataset: Dataset, spec: SchemaSpec) -> None:
    """Refuse a new key for a dataset that has received files (``ValidationError``).

    Records are stored under their key: a new key would store every row
    again next to the old one. Refuse rather than silently double them.
    """
    if list(spec.key) != list(dataset.key_fields) and dataset.raw_files.exists():
        raise ValidationError(
            f"Dataset {dataset.slug!r} already holds data keyed by {', '.join(dataset.key_fields)}; "
            f"its key cannot change to {', '.join(spec.key)}. Create a new dataset for the new key."
        )


def dataset_apply_preview(*, spec: SchemaSpec) -> StoredRecordsReport:
    """What ``dataset_apply`` would do to the stored records; changes nothing."""
    dataset = Dataset.objects.filter(slug=spec.slug).select_related("current_schema").first()
    if dataset is None or dataset.current_schema is None:
        return StoredRecordsReport(columns_added=[f.name for f in spec.fields])
    if dataset.current_schema.checksum == spec.fields_checksum():
        return StoredRecordsReport()
    return record_store().schema_preview(dataset=dataset, old=schema_spec(dataset.current_schema), new=spec)


def dataset_schema_require(dataset: Dataset, *, refresh: tuple[str, ...] = ("current_schema",)) -> None:
    """Refuse work for a dataset that has no schema yet.

    Reads ``refresh`` from the database first: the caller's instance may be stale.
    """
    dataset.refresh_from_db(fields=list(refresh))
    if dataset.current_schema_id is None:
        raise ValidationError(f"Dataset {dataset.slug!r} has no schema yet; apply a schema file first.")


@transaction.atomic
def dataset_create(*, spec: SchemaSpec, user: Any = None) -> DatasetApplyResult:
    """Create a new dataset from a schema file and make ``user`` its manager.

    Unlike ``dataset_apply`` it never updates: an existing slug is a conflict.
    """
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(slug=spec.slug, name=spec.name)
    except IntegrityError:
        raise DatasetConflict(f"A dataset with the slug {spec.slug!r} already exists.") from None
    result = _dataset_apply(dataset=dataset, created=True, spec=spec, user=user)
    if getattr(user, "pk", None):
        DatasetGrant.objects.create(dataset=result.dataset, user=user, role=DatasetRole.MANAGER)
    return DatasetApplyResult(dataset=result.dataset, schema=result.schema, created=True, new_version=True)


@transaction.atomic
def dataset_delete(*, dataset: Dataset, user: Any = None) -> None:
    """Delete a dataset that has never received a file, with its schema versions and grants.

    Once a file has been received, runs, records and rejected rows point at
    it and at the schema versions (their lineage), so such a dataset is
    refused with ``DatasetConflict`` rather than half-deleted.
    """
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    files = RawFile.objects.filter(dataset=dataset).count()
    if files:
        raise DatasetConflict(
            f"Dataset {dataset.slug!r} has received {files} file{'s' if files != 1 else ''}; its runs and records "
            "keep their lineage, so it cannot be deleted."
        )
    record_store().dataset_deleted(dataset=dataset)
    dataset.current_schema = None
    dataset.save(update_fields=["current_schema"])
    slug = dataset.slug
    try:
        with transaction.atomic():
            dataset.delete()
    except ProtectedError:
        raise DatasetConflict(f"Dataset {dataset.slug!r} still has data that depends on it.") from None
    audit_record(action=AuditAction.DATASET_DELETED, actor=user, details={"dataset": slug})


# --- Notification targets -------------------------------------------------------------
# What a dataset holds besides what its schema file owns (dataset_apply writes the rest).
DATASET_NOTIFICATION_FIELDS = ("notify_webhooks", "notify_emails", "notify_on_success", "notify_reject_rate")


@transaction.atomic
def dataset_notifications_set(*, dataset: Dataset, changes: dict[str, Any], actor: Any = None) -> None:
    """Change a dataset's notification settings, with one audit event naming the changed settings.

    The values are already checked (``notify_webhooks_clean``, ``notify_emails_clean``).
    """
    unknown = set(changes) - set(DATASET_NOTIFICATION_FIELDS)
    if unknown:
        raise ValidationError(f"Not a notification setting: {', '.join(sorted(unknown))} (the schema file owns it).")
    if not changes:
        return
    for name, value in changes.items():
        setattr(dataset, name, value)
    dataset.save(update_fields=[*changes, "updated_at"])
    audit_record(
        action=AuditAction.DATASET_CHANGED,
        actor=actor,
        dataset=dataset,
        obj=dataset,
        details={"changed": sorted(changes)},
    )


def notify_webhooks_clean(value: Any) -> list[str]:
    """A list of webhook URLs, each an allowed http(s) destination (``ValidationError`` otherwise)."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("Enter a JSON list of URLs.")
    if len(value) > MAX_DATASET_WEBHOOKS:
        # Each URL's host name is looked up now (up to SOURCE_DNS_TIMEOUT seconds each).
        raise ValidationError(f"A dataset may have at most {MAX_DATASET_WEBHOOKS} webhooks; {len(value)} were given.")
    for url in value:
        try:
            url_validate(url, settings.SOURCES["ALLOWED_NETWORKS"], purpose="webhooks")
        except URLRefused as exc:  # its message names the URL already
            raise ValidationError(str(exc)) from None
        except ValueError as exc:
            raise ValidationError(f"{url}: {exc}") from None
    return value


def notify_emails_clean(value: Any) -> list[str]:
    """A list of email addresses (``ValidationError`` otherwise)."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("Enter a JSON list of email addresses.")
    for address in value:
        validate_email(address)
    return value
