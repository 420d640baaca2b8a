"""The processed file: the valid, normalised rows of a run as CSV.

Written to local scratch space chunk by chunk (flushed before each chunk
commits, its size kept in the checkpoint so a resumed run can cut off rows
that never committed), then handed to the data storage when the run ends.

The scratch file (``WORK_DIR/run-<id>.csv``) lives exactly as long as its run
can still resume: every way a run ends removes it (``publish`` or
``discard``), and the reaper removes what a dead worker left behind
(``work_files_sweep``). A hand-over that fails half-way (a full disk) leaves
no partial processed file either.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage

from ingestion.csvwrite import csv_writer
from ingestion.storage import data_storage, storage_delete_quietly

from .validate import ValidRow
from .validrows import ValidRows

logger = logging.getLogger(__name__)

_WORK_FILE = re.compile(r"^run-(\d+)\.csv$")


def work_dir() -> Path:
    return Path(settings.DATAFLOW["WORK_DIR"])


def work_path(run_id: int) -> Path:
    """The scratch file of a run's processed output."""
    return work_dir() / f"run-{int(run_id)}.csv"


def work_file_remove(run_id: int) -> bool:
    """Remove a run's scratch file; True when there was one."""
    try:
        work_path(run_id).unlink()
    except FileNotFoundError:
        return False
    return True


def work_files_sweep(still_needed: Callable[[Iterable[int]], set[int]], *, untouched_for: float) -> list[int]:
    """Remove the scratch files of runs that will never use them again; returns their run ids.

    ``still_needed`` gets the run ids found on disk and answers those whose
    file must stay (runs that are running or queued to resume from it). Files
    written to in the last ``untouched_for`` seconds stay whatever it says: a
    run inside a transaction not yet committed is invisible to the question.
    """
    try:
        entries = list(os.scandir(work_dir()))
    except FileNotFoundError:
        return []
    recent = time.time() - untouched_for
    found = {
        int(m.group(1)): e.path
        for e in entries
        if (m := _WORK_FILE.match(e.name)) and e.is_file() and e.stat().st_mtime < recent
    }
    if not found:
        return []
    keep = still_needed(found.keys())
    removed: list[int] = []
    for run_id, path in sorted(found.items()):
        if run_id in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(run_id)
    return removed


class ProcessedWriter:
    def __init__(self, *, dataset_slug: str, run_id: int, fields: Sequence[str], resume_at: int = 0) -> None:
        self.fields = list(fields)
        self.target = f"processed/{dataset_slug}/{run_id}.csv"
        work_dir().mkdir(parents=True, exist_ok=True)
        self.path = work_path(run_id)
        self.incomplete = False
        if resume_at and self.path.exists() and self.path.stat().st_size >= resume_at:
            self.fh = open(self.path, "r+", newline="", encoding="utf-8")  # noqa: SIM115
            self.fh.truncate(resume_at)
            self.fh.seek(resume_at)
        else:
            # A resumed run on another machine cannot see the earlier part.
            self.incomplete = bool(resume_at)
            self.fh = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            csv_writer(self.fh).writerow(["_line", *self.fields])
        self.finished = False  # published or discarded

    def write(self, rows: Sequence[ValidRow]) -> int:
        """Append rows and flush; returns the file's size for the checkpoint."""
        if isinstance(rows, ValidRows):
            # Already UTF-8: straight to the bytes under the text layer (flushed first, so nothing is reordered).
            self.fh.flush()
            cast(BinaryIO, self.fh.buffer).write(rows.processed_text())
        else:
            self.fh.write("".join([r.processed for r in rows]))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return cast(BinaryIO, self.fh.buffer).tell()

    def publish(self) -> str:
        """Move the finished file into the data storage; returns its name.

        The scratch file is gone afterwards whatever happens; when the hand-over
        fails (e.g. the disk is full) the partial processed file is removed too
        and the error propagates.
        """
        self.finished = True
        storage = data_storage()
        try:
            self.fh.close()
            if storage.exists(self.target):
                storage.delete(self.target)
            name = self._hand_over(storage)
        except BaseException:
            storage_delete_quietly(storage, self.target)
            raise
        finally:
            self.path.unlink(missing_ok=True)
        return name

    def _hand_over(self, storage: Storage) -> str:
        try:
            target_path = Path(storage.path(self.target))
        except NotImplementedError:
            target_path = None
        if target_path is not None:
            # Local storage: a rename needs no second copy of the file (the work
            # folder sits under DATA_DIR), which matters when the disk is nearly full.
            target_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(self.path, target_path)
                return self.target
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # WORK_DIR is on another filesystem: copy below.
        with open(self.path, "rb") as fh:
            return storage.save(self.target, File(fh, name=self.target))

    def discard(self) -> None:
        """Drop the scratch file (the run ended without a processed file worth keeping)."""
        self.finished = True
        try:
            self.fh.close()
        except OSError:
            # Closing flushes; on a full disk that can fail, and the file goes anyway.
            logger.warning("could not close %s cleanly", self.path, exc_info=True)
        finally:
            self.path.unlink(missing_ok=True)
