"""Writes and reads for HTTP sources: their configuration, secret, schedule and watermark.

Pulling a source (fetching its records and running the pipeline over them)
is an operation on runs and lives in ``processing.services.sources``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..audit import audit_record
from ..crypto import secret_decrypt, secret_encrypt, secret_rotate
from ..http.guard import origin, url_validate
from ..http.pagination import PAGINATION_STYLES
from ..http.pull import PullSpec
from ..models import AuditAction, Dataset, Source
from ..sourcekinds import source_fields, source_kind, stream_kinds
from ..streams import StreamConfig
from ..streams.urls import stream_config_errors, url_credentials_split, url_with_secret

# What a client may set on a source (the secret is set apart, write-only), from the kinds' declarations.
SOURCE_FIELDS = source_fields()

# django-q2 names a scheduled function by its dotted path; ingestion never
# imports processing, so the task is named here as a string.
SOURCE_PULL_TASK = "processing.tasks.source_pull_task"

_DEFAULT_AUTH_NAMES: dict[str, str] = {Source.Auth.API_KEY_HEADER: "X-API-Key", Source.Auth.API_KEY_QUERY: "api_key"}


def _string_map(value: Any, label: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError({label: "Must be a JSON object of names to values."})
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, (dict, list)) or v is None:
            raise ValidationError({label: f"The value of {k!r} must be a string or a number."})
        out[str(k)] = json.dumps(v) if isinstance(v, bool) else str(v)
    return out


def _header_safe(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ch in text for ch in "\r\n\x00")


def _stream_source_clean(source: Source) -> None:
    """Check a stream source (``manage.py consume`` reads it): its URL, stream and consumer names."""
    errors: dict[str, list[str]] = {}
    try:
        source.full_clean(exclude=["secret_encrypted"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    found = stream_config_errors(
        source.kind,
        url=source.url or "",
        stream=source.stream,
        group=source.group,
        subject=source.subject,
        durable=source.durable,
    )
    for name, message in found.items():
        errors.setdefault(name, []).append(message)
    if source.schedule != Source.Schedule.NONE:
        errors.setdefault("schedule", []).append("A stream source is read continuously by `manage.py consume`.")
    previous = Source.objects.filter(pk=source.pk).first() if source.pk else None
    if previous is not None and previous.dataset_id != source.dataset_id:
        errors.setdefault("dataset", []).append("A source cannot move to another dataset; create a new source.")
    if errors:
        raise ValidationError(errors)


def source_clean(source: Source, *, secret: str | None) -> None:
    """Check a source's configuration as a whole; raises ``ValidationError`` by field."""
    if source.kind in stream_kinds():
        _stream_source_clean(source)
        return
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    try:
        source.full_clean(exclude=["secret_encrypted"])
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for m in messages:
                add(name, m)
    try:
        url_validate(source.url or "", settings.SOURCES["ALLOWED_NETWORKS"])
    except ValueError as exc:
        add("url", str(exc))
    for label in ("params", "headers"):
        try:
            setattr(source, label, _string_map(getattr(source, label) or {}, label))
        except ValidationError as exc:
            for m in exc.message_dict[label]:
                add(label, m)
    if source.body is not None and source.method != Source.Method.POST:
        add("body", "A body is only sent with POST.")
    has_secret = bool(secret) if secret is not None else source.has_secret
    previous = Source.objects.filter(pk=source.pk).first() if source.pk else None
    if (
        previous is not None
        and previous.has_secret
        and secret is None
        and source.auth != Source.Auth.NONE
        and (
            origin(previous.url) != origin(source.url or "")
            or (previous.auth, previous.auth_name) != (source.auth, source.auth_name)
        )
    ):
        add(
            "secret",
            "The URL's host or the authentication changed: enter the secret again "
            "(a stored secret is only ever sent where it was entered for).",
        )
    if previous is not None and previous.dataset_id != source.dataset_id:
        add("dataset", "A source cannot move to another dataset; create a new source.")
    for label, values in (("headers", (source.headers or {}).items()), ("secret", [("", secret or "")])):
        for name, value in values:
            if label == "secret" and source.auth == Source.Auth.API_KEY_QUERY:
                continue  # goes in the query string, percent-encoded
            if not _header_safe(str(name)) or not _header_safe(str(value)):
                add(label, "Header names, values and credentials must be Latin-1 text without line breaks.")
    if source.auth in (Source.Auth.API_KEY_HEADER, Source.Auth.BASIC) and not _header_safe(source.auth_name):
        add("auth_name", "Must be Latin-1 text without line breaks.")
    if source.auth == Source.Auth.BASIC and not source.auth_name:
        add("auth_name", "Basic authentication needs a username.")
    if source.auth != Source.Auth.NONE and not has_secret:
        add("secret", "This authentication needs a secret (token, key or password).")
    style = PAGINATION_STYLES.get(source.pagination)  # full_clean reported an unknown one
    if style is not None:
        for name, message in style.missing(vars(source)).items():
            add(name, message)
    if bool(source.cursor_field) != bool(source.watermark_param):
        add(
            "cursor_field" if not source.cursor_field else "watermark_param",
            "Incremental pulls need both the cursor field and the query parameter that sends the watermark.",
        )
    if source.schedule == Source.Schedule.INTERVAL and not source.interval_minutes:
        add("interval_minutes", "An interval schedule needs the number of minutes between pulls.")
    if source.schedule == Source.Schedule.CRON:
        from croniter import croniter

        if not source.cron or not croniter.is_valid(source.cron):
            add("cron", "Enter a valid cron expression, e.g. '15 * * * *'.")
    if errors:
        raise ValidationError(errors)


def _source_save(source: Source, *, secret: str | None) -> None:
    if source.kind in stream_kinds():
        # Credentials typed into the URL are kept encrypted, never in the URL that is shown.
        source.url, in_url = url_credentials_split(source.kind, source.url or "")
        if in_url is not None:
            secret = in_url
        source_clean(source, secret=secret)
        if secret is not None:
            source.secret_encrypted = secret_encrypt(secret) if secret else ""
        source.save()
        source_schedule_sync(source)
        return
    if source.auth in _DEFAULT_AUTH_NAMES and not source.auth_name:
        source.auth_name = _DEFAULT_AUTH_NAMES[source.auth]
    source_clean(source, secret=secret)
    if secret is not None:
        source.secret_encrypted = secret_encrypt(secret)
    if source.auth == Source.Auth.NONE:
        # Clears the stored secret; bandit reads the empty string as a password.
        source.secret_encrypted = ""  # nosec B105
    source.save()
    source_schedule_sync(source)


@transaction.atomic
def source_create(*, dataset: Dataset, data: dict[str, Any], secret: str | None = None, user: Any = None) -> Source:
    """Create a source for ``dataset`` from field values (see ``SOURCE_FIELDS``) and its secret."""
    unknown = set(data) - set(SOURCE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown source fields: {', '.join(sorted(unknown))}.")
    source = Source(dataset=dataset, created_by=user if getattr(user, "pk", None) else None)
    for name, value in data.items():
        if name != "dataset":
            setattr(source, name, value)
    _source_save(source, secret=secret)
    audit_record(
        action=AuditAction.SOURCE_CREATED,
        actor=user,
        dataset=dataset,
        obj=source,
        details={"name": source.name, "url": _url_for_audit(source.url)},
    )
    return source


@transaction.atomic
def source_update(*, source: Source, data: dict[str, Any], secret: str | None = None, user: Any = None) -> Source:
    """Change a source. ``secret=None`` keeps the stored secret; ``""`` clears it."""
    unknown = set(data) - set(SOURCE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown source fields: {', '.join(sorted(unknown))}.")
    changed = sorted(name for name, value in data.items() if getattr(source, name) != value)
    for name, value in data.items():
        setattr(source, name, value)
    if "watermark" in changed:
        source.watermark_updated_at = timezone.now()
    _source_save(source, secret=secret)
    if secret is not None:
        changed.append("secret")
    audit_record(
        action=AuditAction.SOURCE_CHANGED,
        actor=user,
        dataset=source.dataset,
        obj=source,
        details={"name": source.name, "changed": changed},
    )
    return source


@transaction.atomic
def source_delete(*, source: Source, user: Any = None) -> None:
    """Delete a source and its schedule; its runs keep their files and records."""
    from django_q.models import Schedule

    Schedule.objects.filter(name=source.schedule_name).delete()
    details = {"name": source.name, "url": _url_for_audit(source.url)}
    dataset = source.dataset
    source.delete()
    audit_record(action=AuditAction.SOURCE_DELETED, actor=user, dataset=dataset, details=details)


def _url_for_audit(url: str) -> str:
    # The query string may carry an API key the user typed into the URL.
    return url.split("?", 1)[0]


def source_schedule_sync(source: Source) -> None:
    """Make the source's django-q2 schedule match its settings (create, change or remove it)."""
    from django_q.models import Schedule

    wanted = source.enabled and source.schedule != Source.Schedule.NONE
    if not wanted:
        Schedule.objects.filter(name=source.schedule_name).delete()
        return
    values: dict[str, Any] = {
        "func": SOURCE_PULL_TASK,
        "args": repr((source.pk,)),
        "repeats": -1,
    }
    if source.schedule == Source.Schedule.INTERVAL:
        values.update(schedule_type=Schedule.MINUTES, minutes=source.interval_minutes, cron=None)
    else:
        values.update(schedule_type=Schedule.CRON, cron=source.cron, minutes=None)
    schedule = Schedule.objects.filter(name=source.schedule_name).first()
    timing = ("schedule_type", "minutes", "cron")
    if schedule is not None and all(getattr(schedule, k) == values[k] for k in timing):
        return  # unchanged: an edit of anything else must not move (or fire) the next pull
    values["next_run"] = _next_run(source)
    if schedule is None:
        Schedule.objects.create(name=source.schedule_name, **values)
        return
    for name, value in values.items():
        setattr(schedule, name, value)
    schedule.save()


def _next_run(source: Source) -> Any:
    now = timezone.now()
    if source.schedule == Source.Schedule.INTERVAL:
        return now + timedelta(minutes=source.interval_minutes or 1)
    from croniter import croniter

    return croniter(source.cron, timezone.localtime(now)).get_next(datetime)


def source_pull_spec(source: Source) -> PullSpec:
    """What the fetcher needs to pull ``source``, with its secret decrypted."""
    return PullSpec(
        url=source.url,
        method=source.method,
        params=dict(source.params or {}),
        headers=dict(source.headers or {}),
        body=source.body,
        auth_kind=source.auth,
        auth_name=source.auth_name,
        secret=secret_decrypt(source.secret_encrypted),
        records_path=source.records_path,
        pagination=source.pagination,
        page_param=source.page_param,
        size_param=source.size_param,
        page_size=source.page_size,
        first_page=source.first_page,
        next_path=source.next_path,
        max_pages=source.max_pages,
        max_records=source.max_records,
        cursor_field=source.cursor_field,
        watermark_param=source.watermark_param,
        watermark=source.watermark,
    )


def source_stream_config(source: Source, *, consumer: str, claim_idle: float) -> StreamConfig:
    """What a stream adapter (ingestion.streams) needs to read ``source``, with its secret decrypted."""
    if not source_kind(source.kind).stream:
        raise ValueError(f"source {source.name!r} is of kind {source.kind!r}, not a stream")
    return StreamConfig(
        url=url_with_secret(source.kind, source.url, secret_decrypt(source.secret_encrypted)),
        stream=source.stream,
        group=source.group,
        subject=source.subject,
        durable=source.durable,
        consumer=consumer,
        claim_idle=claim_idle,
    )


def watermark_after(new: str, old: str) -> bool:
    """Whether ``new`` is past ``old``: as numbers when both are, otherwise as text."""
    if not old:
        return True
    try:
        return Decimal(new) > Decimal(old)
    except InvalidOperation:
        return new > old


def source_watermark_set(*, source_id: int, watermark: str) -> None:
    """Store a new watermark if it is past the stored one.

    Call it inside the transaction that commits the records it covers. A
    replayed older pull never rewinds it.
    """
    source = Source.objects.select_for_update().filter(pk=source_id).only("watermark").first()
    if source is not None and watermark_after(watermark, source.watermark):
        Source.objects.filter(pk=source_id).update(watermark=watermark, watermark_updated_at=timezone.now())


def sources_secrets_rotate() -> int:
    """Re-encrypt every stored secret under the first key of ``ENCRYPTION_KEYS``; returns how many."""
    count = 0
    with transaction.atomic():
        # "" is "no secret", not a password (bandit's B106).
        for source in Source.objects.select_for_update().exclude(secret_encrypted=""):  # nosec B106
            source.secret_encrypted = secret_rotate(source.secret_encrypted)
            source.save(update_fields=["secret_encrypted"])
            count += 1
    return count
