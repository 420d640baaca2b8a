"""Datasets, their versioned schemas and the raw files received for them."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class FieldType(models.TextChoices):
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
        return f"{self.dataset_id}:v{self.number}"


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

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="raw_files")
    storage_name = models.CharField(max_length=300, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RAW)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    encoding = models.CharField(max_length=32)
    encoding_confidence = models.CharField(
        max_length=16, blank=True, help_text="'exact' when the file decodes cleanly, otherwise how it was chosen."
    )
    delimiter = models.CharField(max_length=1)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name or self.storage_name


class DatasetRole(models.TextChoices):
    """Roles granted per dataset, each including the ones before it."""

    VIEWER = "viewer"  # read records, runs, rejected rows
    INGESTER = "ingester"  # + upload, retry, cancel, push rows
    MANAGER = "manager"  # + change the schema, grants, delete


ROLE_RANK = {DatasetRole.VIEWER: 1, DatasetRole.INGESTER: 2, DatasetRole.MANAGER: 3}


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
