"""What every DataFlow management command shares.

``--json`` prints exactly one JSON object on stdout (and nothing else);
otherwise a short human summary. A progress bar is drawn on stderr only
when stderr is a terminal. A command that streams to stdout stops quietly
when its reader goes away (``… | head``), as Unix tools do.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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

    def read_bounded(self, path: str, limit: int, what: str) -> bytes:
        """The bytes of ``path`` (``-``: standard input), refused past ``limit`` bytes with a one-line error.

        One byte past the limit is enough to refuse a file, so a huge one is never read whole.
        """
        try:
            if path == "-":
                data = sys.stdin.buffer.read(limit + 1)
            else:
                with open(path, "rb") as fh:
                    data = fh.read(limit + 1)
        except OSError as exc:
            raise self.fail(f"Cannot read {path}: {exc.strerror}") from None
        if len(data) > limit:
            raise self.fail(f"Invalid {what} in {path}: the file is larger than {limit} bytes.")
        return data


# Back to the start of the line and erase it: the bar is redrawn in place, and leaves nothing behind.
CLEAR_LINE = "\r\033[K"


class ProgressBar:
    """A one-line progress bar on a terminal; silent otherwise.

    The line is redrawn in place and erased by ``close()``, so what is printed
    next starts on a clean line. While the bar is shown, a log record going to
    a terminal first erases it (the bar comes back with the next ``update``):
    log lines never run on from the bar's text.

    The rate is rows over the time since ``started`` (a ``time.monotonic()``
    value; by default when the bar was made): a command that joins work begun
    earlier, as ``run_status --wait`` does, passes when it began.
    """

    def __init__(
        self, total: int, stream: Any = None, enabled: bool | None = None, started: float | None = None
    ) -> None:
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic() if started is None else started
        self.drawn = False
        self._hooked: list[logging.Handler] = []
        self._filter = _ClearBarFilter(self)
        if self.enabled:
            for handler in _terminal_handlers():
                handler.addFilter(self._filter)
                self._hooked.append(handler)

    def update(self, done: int, rows: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(total, 1)
        if not self.enabled:
            return
        share = min(done / self.total, 1.0)
        width = 30
        filled = int(share * width)
        elapsed = time.monotonic() - self.started
        rate = rows / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"{CLEAR_LINE}[{bar}] {share:6.1%}  {rows:,} rows  {rate:,.0f} rows/s")
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the bar's line (drawn again by the next ``update``)."""
        if self.drawn:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.drawn = False

    def close(self) -> None:
        self.clear()
        for handler in self._hooked:
            handler.removeFilter(self._filter)
        self._hooked = []


class _ClearBarFilter(logging.Filter):
    """Erases a progress bar before its handler writes a record (a filter runs just before ``emit``)."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar

    def filter(self, record: logging.LogRecord) -> bool:
        self.bar.clear()
        return True


def _terminal_handlers() -> list[logging.Handler]:
    """The logging handlers that write to a terminal, on the root logger and on every named logger."""
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found: list[logging.Handler] = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            stream = getattr(handler, "stream", None)
            isatty = getattr(stream, "isatty", None)
            try:
                terminal = bool(isatty and isatty())
            except (OSError, ValueError):
                terminal = False  # a closed stream
            if terminal and handler not in found:
                found.append(handler)
    return found


# What a shell reports for a Unix tool that its reader left (``yes | head -1``
# under ``set -o pipefail``): killed by SIGPIPE, 128 + 13.
PIPE_CLOSED_STATUS = 128 + signal.SIGPIPE


@contextmanager
def quiet_on_closed_stdout(command: BaseCommand) -> Iterator[None]:
    """Exit with ``PIPE_CLOSED_STATUS`` and no traceback when standard output's reader has gone.

    Python ignores SIGPIPE and raises ``BrokenPipeError`` instead; Unix tools
    simply stop. The rest of the output is thrown away: standard output is
    pointed at /dev/null, or the interpreter's final flush of what is still
    buffered would fail again and print "Exception ignored …" on its way out.
    """
    try:
        yield
        command.stdout.flush()
    except BrokenPipeError:
        _stdout_discard(command)
        raise SystemExit(PIPE_CLOSED_STATUS) from None


def _stdout_discard(command: BaseCommand) -> None:
    try:
        fd = command.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a stream given to call_command): nothing will flush it at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def write_chunks(command: BaseCommand, chunks: Iterable[str], output: str | None) -> None:
    """Write streamed text to ``output`` (a path) or to the command's standard output."""
    if not output:
        iterator = iter(chunks)
        try:
            with quiet_on_closed_stdout(command):
                for chunk in iterator:
                    command.stdout.write(chunk, ending="")
        finally:
            # Closing the generator now ends its database cursor while the
            # connection is still open, not at garbage collection after exit.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.writelines(chunks)
    except OSError as exc:
        raise CommandError(f"Cannot write {output}: {exc.strerror}") from None
    command.stderr.write(f"Wrote {output}")
