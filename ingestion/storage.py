"""All file access goes through one Django storage (``STORAGES["dataflow"]``).

Local disk by default; an S3 bucket (``DATA_STORAGE_URL=s3://BUCKET/PREFIX``,
``S3DataStorage`` below) lets workers on several machines share raw,
processed and archived files.

``storage_errors()`` names the ways the data storage refuses a file — full,
or read-only / not writable / unreachable — so the doors can answer 507 or
503 instead of a traceback.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files import File
from django.core.files.storage import Storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

logger = logging.getLogger(__name__)

# What an S3 server answers when a bucket or account has no room left.
S3_FULL_CODES = frozenset({"QuotaExceeded", "XQuotaExceeded", "EntityTooLarge", "InsufficientStorage"})
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
UNAVAILABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class StorageError(Exception):
    """The data storage could not take a file; nothing of it was kept."""


class StorageFull(StorageError):
    """No space left (or the quota is used up) where files are stored."""


class StorageUnavailable(StorageError):
    """The data folder is read-only or not writable by this process, or the bucket is unreachable."""


def s3_error_code(exc: BaseException) -> str:
    """The S3 error code of a ``ClientError`` (``NoSuchBucket``, ``AccessDenied``...), else the exception's name.

    A HEAD request's error has no body, hence no code: its HTTP status stands in (``HTTP 403 Forbidden``).
    """
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "")
        if code and not code.isdigit():
            return code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or code or 0)
        try:
            return f"HTTP {status} {HTTPStatus(status).phrase}"
        except ValueError:
            return f"HTTP {status}"
    return type(exc).__name__


def storage_failure(exc: BaseException) -> str | None:
    """What to tell about an error of the S3 data storage, or None when ``exc`` is not one."""
    if isinstance(exc, (BotoCoreError, ClientError)):
        return f"the data storage failed ({s3_error_code(exc)}): {exc}"
    return None


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the ``OSError`` of a full or read-only data storage into ``StorageFull`` / ``StorageUnavailable``.

    An S3 bucket that refuses a file (server down, wrong credentials, no such
    bucket, quota used up) raises the same two. Other errors pass through
    unchanged. The original error is logged: it names the path and the reason
    an operator needs.
    """
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        code = s3_error_code(exc)
        if code in S3_FULL_CODES:
            logger.error("The data storage bucket is full: %s", exc)
            raise StorageFull(
                "The server has no space left to store this file; nothing was kept. Try again later."
            ) from exc
        logger.error("The data storage bucket refused a request: %s", exc)
        raise StorageUnavailable(
            f"The server cannot store files right now (its object storage answered {code}); "
            "nothing was kept. Try again later."
        ) from exc
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


def data_storage_describe(storage: Storage) -> str:
    """Where a storage keeps its files, for messages: ``s3://BUCKET/PREFIX`` or the local folder (no credentials)."""
    if isinstance(storage, S3DataStorage):
        return f"s3://{storage.bucket_name}/{storage.location}".rstrip("/")
    return str(getattr(storage, "location", type(storage).__name__))


def storage_move(storage: Storage, source: str, target: str) -> str:
    """Move a stored file; a rename on local disk, a copy inside the bucket then a delete on S3."""
    if isinstance(storage, S3DataStorage):
        return storage.move(source, target)
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


class _RangedReader(io.RawIOBase):
    """A stored object read as a seekable stream: one ranged GET from the position on, again after a seek.

    Nothing is downloaded ahead of what is read (beyond the buffer of the
    ``BufferedReader`` around it), so reading the header or one chunk of a
    large raw file costs that part of it, not the whole object.
    """

    def __init__(self, obj: Any, size: int) -> None:
        self._obj = obj
        self._size = size
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or len(buffer) == 0:
            return 0
        if self._body is None:
            self._body = self._obj.get(Range=f"bytes={self._pos}-")["Body"]
        data = self._body.read(len(buffer))
        if not data:
            raise OSError(f"{self._obj.key}: the object ended at byte {self._pos} of {self._size}")
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3DataStorage(S3Storage):
    """django-storages' S3 storage, with streamed ranged reads and in-bucket moves.

    ``open(name, "rb")`` streams the object (``S3Storage`` would download all
    of it first); uploads (``save``) go through boto3's managed transfer, in
    parts for large files, reading the source as they go.
    """

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode != "rb":
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        obj = self.bucket.Object(key)
        try:
            size = obj.content_length  # a HEAD request
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from err
            raise
        return File(io.BufferedReader(_RangedReader(obj, size), 1 << 20), name=name)

    def move(self, source: str, target: str) -> str:
        """Copy ``source`` to ``target`` inside the bucket (server side), then delete ``source``."""
        if self.exists(target):
            raise FileExistsError(target)
        source_key = self._normalize_name(clean_name(source))
        target_key = self._normalize_name(clean_name(target))
        client = self.connection.meta.client
        client.copy({"Bucket": self.bucket_name, "Key": source_key}, self.bucket_name, target_key)
        client.delete_object(Bucket=self.bucket_name, Key=source_key)
        return target
