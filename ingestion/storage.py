"""All file access goes through one Django storage (``STORAGES["dataflow"]``).

Local disk by default; an S3-compatible backend lets workers on several
machines share raw and archived files.
"""

from __future__ import annotations

import logging
import os
import shutil

from django.core.files.storage import Storage, storages


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
