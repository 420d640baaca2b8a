"""The admin as operations console: upload, runs, records, rejected rows."""

from . import datasets, rejected, runs, sources  # noqa: F401
