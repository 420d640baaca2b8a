"""System checks for the job queue and notification configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ValidationError

from ingestion.services import notify_webhooks_clean


@register()
def q_cluster_retry_after_timeout(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    conf = settings.Q_CLUSTER
    if conf.get("sync"):
        return []
    timeout, retry = conf.get("timeout"), conf.get("retry")
    if timeout is not None and retry is not None and retry <= timeout:
        return [
            Error(
                f"Q_RETRY ({retry}s) must be greater than Q_TIMEOUT ({timeout}s).",
                hint="Otherwise a task still running is handed to a second worker. Raise Q_RETRY.",
                id="dataflow.E001",
            )
        ]
    return []


@register()
def notify_webhooks_allowed(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """NOTIFY_WEBHOOKS gets the same checks as a dataset's webhooks, before anything starts."""
    try:
        notify_webhooks_clean(list(settings.NOTIFY_WEBHOOKS))
    except ValidationError as exc:
        return [
            Error(
                f"NOTIFY_WEBHOOKS: {'; '.join(exc.messages)}",
                hint="Remove the URL, or allow its network with SOURCE_ALLOWED_NETWORKS.",
                id="dataflow.E002",
            )
        ]
    return []
