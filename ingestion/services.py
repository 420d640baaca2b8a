"""Writes for the ingestion app: applying schemas and receiving raw files."""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from .audit import audit_record
from .dialect import (
    SNIFF_BYTES,
    EncodingGuess,
    EncodingProbe,
    binary_sniff,
    delimiter_matching_header,
    delimiter_sniff,
    sample_text,
    text_encoding,
)
from .http.guard import URLRefused, url_validate
from .models import AuditAction, Dataset, DatasetGrant, DatasetRole, RawFile, SchemaField, SchemaVersion
from .record_store import StoredRecordsReport, record_store
from .schema import SchemaSpec
from .selectors import schema_spec
from .storage import data_storage, storage_move

# Webhooks one dataset may notify; the installation's NOTIFY_WEBHOOKS come on top.
MAX_DATASET_WEBHOOKS = 10


class ByteSource(Protocol):
    """What an upload is read from: a binary file, a request body, or anything with its ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


class UploadTooLarge(ValidationError):
    """The file is larger than ``MAX_UPLOAD_SIZE``."""


class NotTextFile(ValidationError):
    """The file is not text (an archive, a spreadsheet, an image, binary data): nothing is stored."""


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
    if not created and list(spec.key) != list(dataset.key_fields) and dataset.raw_files.exists():
        # Records are stored under their key: a new key would store every row
        # again next to the old one. Refuse rather than silently double them.
        raise ValidationError(
            f"Dataset {dataset.slug!r} already holds data keyed by {', '.join(dataset.key_fields)}; "
            f"its key cannot change to {', '.join(spec.key)}. Create a new dataset for the new key."
        )
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


class _DigestingReader(io.RawIOBase):
    """Passes bytes through while hashing, counting and probing them.

    Stops with ``UploadTooLarge`` as soon as more than ``limit`` bytes have
    gone by, so an oversized upload is refused while it streams, and with
    ``NotTextFile`` once its first block (``SNIFF_BYTES``) shows it is not text.
    """

    def __init__(self, source: ByteSource, limit: int, *, encoding: str | None = None, sniff: bool = True) -> None:
        self.source = source
        self.limit = limit
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.probe = EncodingProbe()
        self.encoding = encoding
        self.sniffed = not sniff

    def _sniff(self) -> None:
        self.sniffed = True
        problem = binary_sniff(bytes(self.probe.sample[:SNIFF_BYTES]), encoding=self.encoding)
        if problem is not None:
            raise NotTextFile(f"This is {problem}.")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        if not data:
            if not self.sniffed:
                self._sniff()
            return 0
        if isinstance(data, str):
            raise ValidationError("The file must be opened in binary mode.")
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge(f"The file is larger than the limit of {self.limit} bytes.")
        self.sha256.update(data)
        self.probe.feed(data)
        if not self.sniffed and self.size >= SNIFF_BYTES:
            self._sniff()
        n = len(data)
        buffer[:n] = data
        return n


def _sanitise_name(name: str) -> str:
    """Keep only a printable base name; it is metadata, never a path."""
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    return cleaned.strip()[:255]


def raw_file_receive(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    user: Any = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    max_size: int | None = None,
    format: str = RawFile.Format.CSV,
) -> RawFile:
    """Store an incoming file under ``raw/`` and describe it.

    The SHA-256, size and encoding are computed in the same single pass that
    writes the file; a file whose first block is not text (an archive, a
    spreadsheet, an image, binary data) is refused with ``NotTextFile`` and
    nothing is kept. The encoding is, in this order: the one given with the
    upload; the one a byte-order mark states; the dataset's declared
    ``encoding``, unless the file is strict UTF-8 with non-ASCII text (then
    UTF-8, as ``valid-utf8``: never garble it); UTF-8 when the file is valid UTF-8; a legacy encoding
    detection is sure of; otherwise it is left undecided (``unsure``, with
    the candidates) and runs of the file fail before loading anything. The
    delimiter is the one given, else the dataset's (or, when the dataset
    allows ``detect_delimiter``, the one its header fits), else sniffed.
    NDJSON files (HTTP pulls and pushed rows) are UTF-8 by definition and
    have no delimiter.
    """
    if format not in RawFile.Format.values:
        raise ValidationError(f"Unknown file format {format!r}.")
    if format == RawFile.Format.NDJSON:
        encoding, delimiter = "utf-8", None
    if encoding:
        try:
            encoding = text_encoding(encoding)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValidationError("The delimiter must be one character other than a quote or newline.")
    options = dataset_reading_options(dataset)
    limit = max_size if max_size is not None else settings.DATAFLOW["MAX_UPLOAD_SIZE"]
    storage = data_storage()
    reader = _DigestingReader(
        source, limit, encoding=encoding or options.get("encoding"), sniff=format == RawFile.Format.CSV
    )
    name = f"raw/{dataset.slug}/{uuid.uuid4().hex}.{format}"
    try:
        stored_name = storage.save(name, File(io.BufferedReader(reader, 1 << 20), name=name))
    except BaseException:
        if storage.exists(name):
            storage.delete(name)
        raise
    reader.probe.finish()
    guess = _encoding_choose(reader.probe, given=encoding, declared=options.get("encoding") or "")
    delimiter_source = ""
    if format == RawFile.Format.NDJSON:
        delimiter = ""
    elif delimiter:
        delimiter_source = "given"
    else:
        text = sample_text(bytes(reader.probe.sample), guess.encoding or "utf-8")
        if dataset.delimiter:
            delimiter, delimiter_source = dataset.delimiter, "declared"
            if options.get("detect_delimiter") and guess.source != "unsure":
                better = delimiter_matching_header(text, dataset.delimiter, _known_headers(dataset))
                if better is not None:
                    delimiter, delimiter_source = better, "detected"
        else:
            delimiter, delimiter_source = delimiter_sniff(text), "detected"
    return RawFile.objects.create(
        dataset=dataset,
        format=format,
        storage_name=stored_name,
        sha256=reader.sha256.hexdigest(),
        size=reader.size,
        original_name=_sanitise_name(original_name),
        encoding=guess.encoding,
        encoding_confidence=guess.source,
        encoding_score=guess.confidence,
        encoding_candidates=list(guess.candidates),
        delimiter=delimiter,
        delimiter_source=delimiter_source,
        uploaded_by=user if getattr(user, "pk", None) else None,
    )


def _encoding_choose(probe: EncodingProbe, *, given: str | None, declared: str) -> EncodingGuess:
    if given:
        return EncodingGuess(given, "given")
    guess = probe.guess()
    if not declared:
        return guess
    if guess.source == "exact" and guess.encoding in ("utf-8-sig", "utf-16", "utf-32"):
        return guess  # the dataset's declaration never wins over a byte-order mark in the file itself
    if guess.source == "exact" and probe.valid_multibyte and _canonical_name(declared) != "utf-8":
        # Strict UTF-8 with multi-byte characters is almost never legacy text by chance; reading it
        # as the declared legacy encoding would garble every such character without a word.
        return EncodingGuess("utf-8", "valid-utf8", candidates=(declared,))
    return EncodingGuess(declared, "declared")


def _canonical_name(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name


def dataset_reading_options(dataset: Dataset) -> dict[str, Any]:
    """The current schema's ``encoding`` and ``detect_delimiter`` options (read fresh: they change in place)."""
    if dataset.current_schema_id is None:
        return {}
    definition = (
        SchemaVersion.objects.filter(pk=dataset.current_schema_id).values_list("definition", flat=True).first()
    ) or {}
    return {k: definition[k] for k in ("encoding", "detect_delimiter") if k in definition}


def _known_headers(dataset: Dataset) -> list[str]:
    fields = SchemaField.objects.filter(schema_id=dataset.current_schema_id)
    return [h for f in fields for h in (f.source or f.name, *f.aliases)]


def raw_file_set_dialect(*, raw_file: RawFile, encoding: str | None = None, delimiter: str | None = None) -> RawFile:
    """Override the detected encoding or delimiter of a file not yet processed."""
    if raw_file.state != RawFile.State.RAW:
        raise ValidationError("This file has already been processed.")
    if encoding:
        try:
            raw_file.encoding = text_encoding(encoding)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        raw_file.encoding_confidence = "given"
        raw_file.encoding_score = None
        raw_file.encoding_candidates = []
    if delimiter:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationError("The delimiter must be one character other than a quote or newline.")
        if delimiter != raw_file.delimiter:
            raw_file.delimiter = delimiter
            raw_file.delimiter_source = "given"
    raw_file.save(
        update_fields=[
            "encoding",
            "encoding_confidence",
            "encoding_score",
            "encoding_candidates",
            "delimiter",
            "delimiter_source",
        ]
    )
    return raw_file


def raw_file_discard(*, raw_file: RawFile) -> None:
    """Delete a received file that will not be processed (e.g. after a preview)."""
    storage = data_storage()
    if storage.exists(raw_file.storage_name):
        storage.delete(raw_file.storage_name)
    raw_file.delete()


def raw_file_archive(*, raw_file: RawFile) -> RawFile:
    """Move a processed file from ``raw/`` to ``archive/<dataset>/``."""
    if raw_file.state == RawFile.State.ARCHIVED:
        return raw_file
    target = f"archive/{raw_file.dataset.slug}/{raw_file.storage_name.rsplit('/', 1)[-1]}"
    raw_file.storage_name = storage_move(data_storage(), raw_file.storage_name, target)
    raw_file.state = RawFile.State.ARCHIVED
    raw_file.save(update_fields=["storage_name", "state"])
    return raw_file


# --- Dataset lifecycle and grants (the REST API's doors) -----------------------------
class DatasetConflict(ValidationError):
    """The dataset's state does not allow the change: it exists, holds data, or would lose its last manager."""


@transaction.atomic
def dataset_create(*, spec: SchemaSpec, user: Any = None) -> DatasetApplyResult:
    """Create a new dataset from a schema file and make ``user`` its manager.

    Unlike ``dataset_apply`` it never updates: an existing slug is a conflict.
    """
    try:
        with transaction.atomic():
            Dataset.objects.create(slug=spec.slug, name=spec.name)
    except IntegrityError:
        raise DatasetConflict(f"A dataset with the slug {spec.slug!r} already exists.") from None
    result = dataset_apply(spec=spec, user=user)
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


def _dataset_keeps_a_manager(dataset: Dataset, *, losing: DatasetGrant) -> None:
    others = DatasetGrant.objects.filter(dataset=dataset, role=DatasetRole.MANAGER).exclude(pk=losing.pk)
    if not others.exists():
        raise _last_manager(dataset)


def dataset_grants_check(dataset: Dataset, *, managers_left: bool) -> None:
    """The rule every change of a dataset's grants keeps: a dataset that has a manager keeps one.

    For a form that changes several grants at once (the console), checked on
    what it would leave before anything is saved.
    """
    if not managers_left and DatasetGrant.objects.filter(dataset=dataset, role=DatasetRole.MANAGER).exists():
        raise _last_manager(dataset)


def _last_manager(dataset: Dataset) -> DatasetConflict:
    return DatasetConflict(
        f"This is the last manager grant of dataset {dataset.slug!r}; grant manager to someone else first."
    )


def dataset_grantee_check(*, user: Any, group: Any) -> None:
    if (user is None) == (group is None):
        raise ValidationError("A grant is for exactly one user or one group.")


@transaction.atomic
def dataset_grant_set(
    *, dataset: Dataset, role: str, user: Any = None, group: Any = None, actor: Any = None
) -> tuple[DatasetGrant, bool]:
    """Give a user or a group (exactly one) a role on a dataset, replacing any role they had.

    Returns the grant and whether it was created. Taking the manager role
    away from the last manager is a ``DatasetConflict``.
    """
    dataset_grantee_check(user=user, group=group)
    if role not in DatasetRole.values:
        raise ValidationError(f"Unknown role {role!r} (expected one of {', '.join(DatasetRole.values)}).")
    # Serialise grant changes per dataset, so two requests cannot remove the last two managers.
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    who = {"user": user} if user is not None else {"group": group}
    grant = DatasetGrant.objects.filter(dataset=dataset, **who).first()
    created = grant is None
    if grant is None:
        grant = DatasetGrant.objects.create(dataset=dataset, role=role, **who)
    else:
        if grant.role == DatasetRole.MANAGER and role != DatasetRole.MANAGER:
            _dataset_keeps_a_manager(dataset, losing=grant)
        grant.role = role
        grant.save(update_fields=["role"])
    grantee = f"user:{user.get_username()}" if user is not None else f"group:{group.name}"
    audit_record(
        action=AuditAction.GRANT_CHANGED,
        actor=actor,
        dataset=dataset,
        obj=grant,
        details={"grantee": grantee, "role": role, "created": created},
    )
    return grant, created


@transaction.atomic
def dataset_grant_delete(*, grant: DatasetGrant, actor: Any = None) -> None:
    """Remove a grant; removing the last manager grant is a ``DatasetConflict``."""
    Dataset.objects.select_for_update().filter(pk=grant.dataset_id).first()
    if grant.role == DatasetRole.MANAGER:
        _dataset_keeps_a_manager(grant.dataset, losing=grant)
    if grant.user is not None:
        grantee = f"user:{grant.user.get_username()}"
    else:
        assert grant.group is not None  # a grant names a user or a group (grant_user_xor_group)
        grantee = f"group:{grant.group.name}"
    details = {"grantee": grantee, "role": grant.role, "grant": grant.pk}
    grant.delete()
    audit_record(action=AuditAction.GRANT_DELETED, actor=actor, dataset=grant.dataset, details=details)


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
