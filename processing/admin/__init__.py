"""The admin as operations console: upload, runs, records, rejected rows."""

from . import records, rejected, runs, sources  # noqa: F401
