"""Helpers shared by the console's admin modules."""

from __future__ import annotations

import json

from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Run


def pretty_json(value: object) -> SafeString:
    return format_html('<pre class="df-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def status_badge(run: Run) -> SafeString:
    """The status as a coloured badge; a no-op run says which run already loaded its file."""
    badge = format_html('<span class="df-badge df-{}">{}</span>', run.status, run.get_status_display())
    if run.noop_of_id is None:
        return badge
    return format_html('{} <span class="df-noop">no-op: file loaded by run #{}</span>', badge, run.noop_of_id)


def errors_text(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())
