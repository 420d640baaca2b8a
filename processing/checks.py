"""System checks for the job queue and notification configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from ingestion.http.guard import URLRefused, url_validate


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
    """NOTIFY_WEBHOOKS may not spell an address inside the network (``10.0.0.5``, ``localhost``).

    No DNS query is made: every manage.py command runs this check, and a slow resolver would
    stall each of them. Host names are checked, with fresh DNS, whenever a webhook is sent.
    """
    problems = []
    for url in settings.NOTIFY_WEBHOOKS:
        try:
            url_validate(url, settings.SOURCES["ALLOWED_NETWORKS"], purpose="webhooks", resolve=False)
        except URLRefused as exc:  # its message names the URL already
            problems.append(str(exc))
        except ValueError as exc:
            problems.append(f"{url}: {exc}")
    if problems:
        return [
            Error(
                f"NOTIFY_WEBHOOKS: {'; '.join(problems)}",
                hint="Remove the URL, or allow its network with SOURCE_ALLOWED_NETWORKS.",
                id="dataflow.E002",
            )
        ]
    return []
