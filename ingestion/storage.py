"""All file access goes through one Django storage (``STORAGES["dataflow"]``).

Local disk by default; an S3-compatible backend lets workers on several
machines share raw and archived files.

``storage_errors()`` names the two ways a local data folder refuses a file
— full, or read-only / not writable — so the doors can answer 507 or 503
instead of a traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.storage import Storage, storages

logger = logging.getLogger(__name__)

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
UNAVAILABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StorageError(Exception):
    """The data storage could not take a file; nothing of it was kept."""


class StorageFull(StorageError):
    """No space left (or the quota is used up) where files are stored."""


class StorageUnavailable(StorageError):
    """The data folder is read-only or not writable by this process."""


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the ``OSError`` of a full or read-only data storage into ``StorageFull`` / ``StorageUnavailable``.

    Other errors pass through unchanged. The original error is logged: it
    names the path and the reason an operator needs.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            logger.error("The data storage is full: %s", exc)
            raise StorageFull(
                "The server has no space left to store this file; nothing was kept. Try again later."
            ) from exc
        if exc.errno in UNAVAILABLE_ERRNOS:
            logger.error("The data storage is not writable: %s", exc)
            raise StorageUnavailable(
                "The server cannot store files right now (its storage is read-only); nothing was kept. Try again later."
            ) from exc
        raise


def data_storage() -> Storage:
    return storages["dataflow"]


def storage_move(storage: Storage, source: str, target: str) -> str:
    """Move a stored file; a rename on local disk, copy and delete elsewhere."""
    try:
        src_path, dst_path = storage.path(source), storage.path(target)
    except NotImplementedError:
        with storage.open(source, "rb") as fh:
            name = storage.save(target, fh)
        storage.delete(source)
        return name
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    if os.path.exists(dst_path):
        raise FileExistsError(target)
    shutil.move(src_path, dst_path)
    return target


def storage_delete_quietly(storage: Storage, name: str) -> None:
    """Delete a stored file if it is there, for clean-up paths that must not raise themselves."""
    try:
        if storage.exists(name):
            storage.delete(name)
    except Exception:
        logging.getLogger(__name__).warning("could not delete %s from the data storage", name, exc_info=True)
