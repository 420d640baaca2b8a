"""System checks for the job queue configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


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
