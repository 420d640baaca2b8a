"""Datasets, their versioned schemas and the raw files received for them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .dialect import delimiter_text, encoding_text
from .http.pagination import DEFAULT_STYLE, pagination_choices
from .sourcekinds import DEFAULT_KIND, source_kind_choices


class FieldType(models.TextChoices):
    """The field types, as model choices and migrations know them.

    Each type is declared in ``ingestion.fieldtypes``; this list must say the
    same (a system check, ``ingestion.E001``, and tests/ingestion/test_fieldtypes.py hold it to that).
    """

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    EMAIL = "email"
    URL = "url"


class Dataset(models.Model):
    """A named collection of records that share one schema and a natural key."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    key_fields = models.JSONField(default=list, help_text="Names of the fields that form the natural key.")
    delimiter = models.CharField(
        max_length=1, blank=True, help_text="CSV delimiter; empty means detect it from each file."
    )
    reject_threshold = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fail a run when the share of rejected rows passes this fraction (0 to 1). Empty: never.",
    )
    current_schema = models.ForeignKey(
        "SchemaVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notify_webhooks = models.JSONField(
        default=list, blank=True, help_text="URLs that receive a JSON POST when a run of this dataset fails."
    )
    notify_emails = models.JSONField(
        default=list, blank=True, help_text="Addresses emailed when a run of this dataset fails."
    )
    notify_on_success = models.BooleanField(
        default=False, help_text="Also notify when a run succeeds (or partially succeeds)."
    )
    notify_reject_rate = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Also notify when a run rejects more than this share of its rows (0 to 1). Empty: never.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class SchemaVersion(models.Model):
    """An immutable snapshot of a dataset's fields.

    Changing the fields creates a new version; records and rejected rows keep
    the version they were validated with.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="schema_versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The schema file this version was created from, normalised.")
    checksum = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="uniq_schema_version_number")]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.number}"


class SchemaField(models.Model):
    """One field of a schema version, in file order."""

    schema = models.ForeignKey(SchemaVersion, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=FieldType.choices)
    required = models.BooleanField(default=False)
    source = models.CharField(max_length=200, blank=True, help_text="File header, when it differs from the name.")
    aliases = models.JSONField(default=list, blank=True)
    transforms = models.JSONField(default=list, blank=True)
    null_values = models.JSONField(default=list, blank=True)
    constraints = models.JSONField(
        default=dict, blank=True, help_text="min, max, min_length, max_length, pattern, choices, unique."
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="Type options such as thousands_separator or default_timezone."
    )

    class Meta:
        ordering = ["schema", "position"]
        constraints = [
            models.UniqueConstraint(fields=["schema", "name"], name="uniq_schema_field_name"),
            models.UniqueConstraint(fields=["schema", "position"], name="uniq_schema_field_position"),
        ]

    def __str__(self) -> str:
        return self.name


class RawFile(models.Model):
    """A file as received, stored under a server-generated name.

    ``original_name`` is metadata only and never used to build a path.
    """

    class State(models.TextChoices):
        RAW = "raw"
        ARCHIVED = "archived"

    class Format(models.TextChoices):
        CSV = "csv"
        NDJSON = "ndjson", "NDJSON (one JSON object per line)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="raw_files")
    storage_name = models.CharField(max_length=300, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RAW)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    encoding = models.CharField(max_length=32)
    # Where the encoding came from (the name predates the score below).
    encoding_confidence = models.CharField(
        max_length=16,
        blank=True,
        help_text="How the encoding was chosen: exact (valid UTF-8 or UTF-16 with a byte-order mark), given "
        "(with the upload), declared (by the dataset), detected, damaged (UTF-8 with invalid bytes) or unsure.",
    )
    encoding_score = models.FloatField(
        null=True, blank=True, help_text="For a detected encoding: the detector's confidence, 0 to 1."
    )
    encoding_candidates = models.JSONField(
        default=list, blank=True, help_text="When the encoding could not be decided: what the file could be."
    )
    delimiter = models.CharField(max_length=1, blank=True, help_text="Empty for NDJSON files.")
    delimiter_source = models.CharField(
        max_length=16, blank=True, help_text="given (with the upload), declared (by the dataset) or detected."
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name or self.storage_name

    def dialect(self) -> dict[str, Any]:
        """How the file is read, with where each choice came from: the one shape every door shows."""
        return {
            "encoding": self.encoding,
            "encoding_source": self.encoding_confidence,
            "encoding_confidence": self.encoding_score,
            "encoding_candidates": list(self.encoding_candidates or []),
            "encoding_text": encoding_text(
                self.encoding, self.encoding_confidence, self.encoding_score, self.encoding_candidates or ()
            ),
            "delimiter": self.delimiter,
            "delimiter_source": self.delimiter_source,
            "delimiter_text": delimiter_text(self.delimiter, self.delimiter_source, self.dataset.delimiter),
        }


class DatasetRole(models.TextChoices):
    """Roles granted per dataset, each including the ones before it."""

    VIEWER = "viewer"  # read records, runs, rejected rows
    INGESTER = "ingester"  # + upload, retry, cancel, push rows
    MANAGER = "manager"  # + change the schema, grants, delete


ROLE_RANK = {DatasetRole.VIEWER: 1, DatasetRole.INGESTER: 2, DatasetRole.MANAGER: 3}


class DatasetAction(models.TextChoices):
    """What a user may do to a dataset, whatever the door (API or console); ``ACTION_ROLE`` says with which role."""

    VIEW = "view"  # the dataset, its records, runs, rejected rows, files, sources; exports
    UPLOAD = "upload"  # upload a file (and its dry run), push rows
    PULL = "pull"  # pull a source now, or preview a pull
    RETRY = "retry"
    CANCEL = "cancel"
    REPLAY = "replay"
    FIX_REJECTED = "fix_rejected"  # edit rejected rows and load them again
    CHANGE = "change"  # the schema, the notification settings
    DELETE = "delete"
    MANAGE_GRANTS = "manage_grants"
    MANAGE_SOURCES = "manage_sources"
    AUDIT = "audit"  # read the dataset's audit events


ACTION_ROLE: dict[str, DatasetRole] = {
    DatasetAction.VIEW: DatasetRole.VIEWER,
    DatasetAction.UPLOAD: DatasetRole.INGESTER,
    DatasetAction.PULL: DatasetRole.INGESTER,
    DatasetAction.RETRY: DatasetRole.INGESTER,
    DatasetAction.CANCEL: DatasetRole.INGESTER,
    DatasetAction.REPLAY: DatasetRole.INGESTER,
    DatasetAction.FIX_REJECTED: DatasetRole.INGESTER,
    DatasetAction.CHANGE: DatasetRole.MANAGER,
    DatasetAction.DELETE: DatasetRole.MANAGER,
    DatasetAction.MANAGE_GRANTS: DatasetRole.MANAGER,
    DatasetAction.MANAGE_SOURCES: DatasetRole.MANAGER,
    DatasetAction.AUDIT: DatasetRole.MANAGER,
}


class DatasetGrant(models.Model):
    """A role on one dataset, granted to a user or to a group (exactly one)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="dataset_grants"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="dataset_grants"
    )
    role = models.CharField(max_length=16, choices=DatasetRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True) | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="grant_user_xor_group",
            ),
            models.UniqueConstraint(fields=["dataset", "user"], name="uniq_grant_dataset_user"),
            models.UniqueConstraint(fields=["dataset", "group"], name="uniq_grant_dataset_group"),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} is {self.role} of {self.dataset_id}"


class AuditAction(models.TextChoices):
    DATASET_CREATED = "dataset_created"
    DATASET_CHANGED = "dataset_changed"
    DATASET_DELETED = "dataset_deleted"
    GRANT_CHANGED = "grant_changed"
    GRANT_DELETED = "grant_deleted"
    FILE_UPLOADED = "file_uploaded"
    RUN_RETRIED = "run_retried"
    RUN_REPLAYED = "run_replayed"
    RUN_CANCELLED = "run_cancelled"
    REJECTED_ROWS_FIXED = "rejected_rows_fixed"
    REJECTED_ROWS_EDITED = "rejected_rows_edited"
    REJECTED_ROWS_DISCARDED = "rejected_rows_discarded"
    SOURCE_CREATED = "source_created"
    SOURCE_CHANGED = "source_changed"
    SOURCE_DELETED = "source_deleted"
    SOURCE_PULLED = "source_pulled"
    ROWS_PUSHED = "rows_pushed"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"


class AuditEvent(models.Model):
    """Who did what, when, from where: an append-only trail for operators and managers."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="The username as it was (kept if the user goes)."
    )
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    dataset_slug = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["dataset", "-at"], name="audit_dataset_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or '-'} {self.action}"


def _registry_choices(name: str, members: list[tuple[str, tuple[str, str]]]) -> type[models.TextChoices]:
    """A ``TextChoices`` of ``Source`` with one member per registered entry, as a nested class would be."""
    # django-stubs types only the single-member form of Enum's functional API.
    return models.TextChoices(name, members, module=__name__, qualname=f"Source.{name}")  # type: ignore[call-overload]


class Source(models.Model):
    """A place a dataset takes records from: an HTTP JSON API pulled on demand or on a schedule,
    or a stream (Redis Streams, NATS JetStream) that ``manage.py consume`` reads.

    Which fields a source of each ``kind`` uses is declared in ``ingestion.sourcekinds``.

    The secret (bearer token, API key or password) is stored encrypted with
    ``ENCRYPTION_KEYS`` (see ``ingestion.crypto``) and never shown again.
    """

    # One member per registered kind (ingestion/sourcekinds), e.g. ``Source.Kind.HTTP``.
    Kind = _registry_choices("Kind", source_kind_choices())

    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"

    class Auth(models.TextChoices):
        NONE = "none", "No authentication"
        BEARER = "bearer", "Bearer token"
        API_KEY_HEADER = "api_key_header", "API key in a header"
        API_KEY_QUERY = "api_key_query", "API key in the query string"
        BASIC = "basic", "HTTP basic"

    # One member per registered style (ingestion/http/pagination), e.g. ``Source.Pagination.CURSOR``.
    Pagination = _registry_choices("Pagination", pagination_choices())

    class Schedule(models.TextChoices):
        NONE = "none", "Not scheduled"
        INTERVAL = "interval", "Every N minutes"
        CRON = "cron", "Cron expression"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="sources")
    name = models.SlugField(max_length=64, unique=True, help_text="Used by `manage.py pull_source NAME`.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=DEFAULT_KIND)
    url = models.CharField(max_length=2000, help_text="http or https URL of the first page.")
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.GET)
    params = models.JSONField(default=dict, blank=True, help_text="Query parameters sent with every request.")
    headers = models.JSONField(
        default=dict, blank=True, help_text="Extra request headers (not secret: put credentials in the auth fields)."
    )
    body = models.JSONField(null=True, blank=True, help_text="JSON body sent with POST requests.")

    auth = models.CharField(max_length=16, choices=Auth.choices, default=Auth.NONE)
    auth_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="The API key's header or query parameter name, or the basic-auth username.",
    )
    secret_encrypted = models.TextField(blank=True, help_text="The token, key or password, encrypted.")

    records_path = models.CharField(
        max_length=200, blank=True, help_text="Dotted path to the list of records; empty when the body is the list."
    )
    pagination = models.CharField(max_length=16, choices=Pagination.choices, default=DEFAULT_STYLE)
    page_param = models.CharField(
        max_length=100, default="page", help_text="Query parameter carrying the page number, offset or cursor."
    )
    size_param = models.CharField(
        max_length=100, blank=True, help_text="Query parameter carrying the page size or limit (empty: not sent)."
    )
    page_size = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    first_page = models.IntegerField(default=1, help_text="Number of the first page (page pagination).")
    next_path = models.CharField(
        max_length=200, blank=True, help_text="Dotted path to the next cursor or next-page URL in the response."
    )
    max_pages = models.PositiveIntegerField(default=1000, validators=[MinValueValidator(1)])
    max_records = models.PositiveIntegerField(default=1_000_000, validators=[MinValueValidator(1)])

    cursor_field = models.CharField(
        max_length=200,
        blank=True,
        help_text="Incremental pulls: the record field whose largest value is kept as the watermark.",
    )
    watermark_param = models.CharField(
        max_length=100, blank=True, help_text="Query parameter that sends the stored watermark."
    )
    watermark = models.CharField(
        max_length=500, blank=True, help_text="The largest cursor value loaded so far; empty: pull everything."
    )
    watermark_updated_at = models.DateTimeField(null=True, blank=True)

    # Stream kinds (ingestion.streams): where the messages come from, and how far they were committed.
    stream = models.CharField(max_length=200, blank=True, help_text="The Redis stream's key, or the JetStream stream.")
    group = models.CharField(max_length=200, blank=True, help_text="The Redis consumer group this source reads as.")
    subject = models.CharField(
        max_length=200, blank=True, help_text="The NATS subject (filter) the durable consumer reads."
    )
    durable = models.CharField(max_length=200, blank=True, help_text="The JetStream durable pull consumer's name.")
    position = models.CharField(
        max_length=100,
        blank=True,
        help_text="The last message committed (a Redis entry id or a stream sequence), stored with its records.",
    )
    position_updated_at = models.DateTimeField(null=True, blank=True)
    lag = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Messages waiting in the broker for this source, when its consumer last looked.",
    )
    lag_checked_at = models.DateTimeField(null=True, blank=True)
    consumer_error = models.TextField(
        blank=True, help_text="Why the consumer cannot reach its broker right now; empty when it can."
    )

    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.NONE)
    interval_minutes = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. '15 * * * *' (minute hour day month weekday).")
    enabled = models.BooleanField(default=True, help_text="Scheduled pulls run only while enabled.")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    @property
    def schedule_name(self) -> str:
        """The name of this source's django-q2 schedule."""
        return f"source:{self.pk}"
