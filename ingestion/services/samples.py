"""Sample files kept while a dataset is being defined from them ("New dataset from a file").

A sample is stored under ``samples/`` until its dataset is saved (it then
becomes the dataset's first upload, through ``raw_file_receive``) or the
page is left; samples older than ``SAMPLE_MAX_AGE`` are removed whenever a
new one is kept.
"""

from __future__ import annotations

import io
import logging
import uuid
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.utils import timezone

from ..storage import data_storage, storage_delete_quietly
from .raw_files import ByteSource

logger = logging.getLogger(__name__)

SAMPLE_FOLDER = "samples"
SAMPLE_MAX_AGE = timedelta(days=1)
_COPY_CHUNK = 1 << 16


class _Limited(io.RawIOBase):
    """Reads ``source`` and refuses it past ``limit`` bytes (as uploads are refused)."""

    def __init__(self, source: ByteSource, limit: int) -> None:
        self.source, self.limit, self.size = source, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.source.read(min(len(buffer), _COPY_CHUNK))
        self.size += len(chunk)
        if self.size > self.limit:
            raise ValidationError(f"The file is larger than the limit of {self.limit} bytes.")
        buffer[: len(chunk)] = chunk
        return len(chunk)


def sample_keep(*, source: ByteSource) -> str:
    """Store a sample file; returns its name in the data storage."""
    storage = data_storage()
    _samples_expire()
    name = f"{SAMPLE_FOLDER}/{uuid.uuid4().hex}.csv"
    reader = _Limited(source, settings.DATAFLOW["MAX_UPLOAD_SIZE"])
    try:
        return storage.save(name, File(io.BufferedReader(reader, 1 << 20), name=name))
    except BaseException:
        storage_delete_quietly(storage, name)
        raise


def sample_open(name: str) -> IO[bytes]:
    """A kept sample, for reading (``FileNotFoundError`` once it is gone)."""
    _check_name(name)
    return data_storage().open(name, "rb")


def sample_discard(name: str) -> None:
    _check_name(name)
    storage_delete_quietly(data_storage(), name)


def _check_name(name: str) -> None:
    # Names come back from the session; never let one point elsewhere in the storage.
    folder, _, base = name.partition("/")
    if folder != SAMPLE_FOLDER or "/" in base or not base.endswith(".csv") or ".." in base:
        raise ValueError(f"not a sample file: {name!r}")


def _samples_expire() -> None:
    """Remove samples left behind by pages that were never finished."""
    storage = data_storage()
    try:
        _, files = storage.listdir(SAMPLE_FOLDER)
    except (FileNotFoundError, NotImplementedError):
        return
    cutoff = timezone.now() - SAMPLE_MAX_AGE
    for base in files:
        name = f"{SAMPLE_FOLDER}/{base}"
        try:
            if storage.get_modified_time(name) < cutoff:
                storage.delete(name)
        except (OSError, NotImplementedError):
            logger.warning("could not expire the sample %s", name, exc_info=True)
