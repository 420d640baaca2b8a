"""What every DataFlow management command shares.

``--json`` prints exactly one JSON object on stdout (and nothing else);
otherwise a short human summary. A progress bar is drawn on stderr only
when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder


def validation_message(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


class DataflowCommand(BaseCommand):
    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout instead of a summary.")

    def emit_json(self, payload: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False))

    def fail(self, message: str) -> CommandError:
        return CommandError(message)


class ProgressBar:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: Any = None, enabled: bool | None = None) -> None:
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()

    def update(self, done: int, rows: int) -> None:
        if not self.enabled:
            return
        share = min(done / self.total, 1.0)
        width = 30
        filled = int(share * width)
        elapsed = time.monotonic() - self.started
        rate = rows / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {share:6.1%}  {rows:,} rows  {rate:,.0f} rows/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def write_chunks(command: BaseCommand, chunks: Any, output: str | None) -> None:
    """Write streamed text to ``output`` (a path) or to standard output."""
    if not output:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.writelines(chunks)
    except OSError as exc:
        raise CommandError(f"Cannot write {output}: {exc.strerror}") from None
    command.stderr.write(f"Wrote {output}")
