"""The processed file: the valid, normalised rows of a run as CSV.

Written to local scratch space chunk by chunk (flushed before each chunk
commits, its size kept in the checkpoint so a resumed run can cut off rows
that never committed), then handed to the data storage when the run ends.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.files import File

from ingestion.csvwrite import csv_writer
from ingestion.storage import data_storage

from .validate import ValidRow


class ProcessedWriter:
    def __init__(self, *, dataset_slug: str, run_id: int, fields: Sequence[str], resume_at: int = 0) -> None:
        self.fields = list(fields)
        self.target = f"processed/{dataset_slug}/{run_id}.csv"
        work_dir = Path(settings.DATAFLOW["WORK_DIR"])
        work_dir.mkdir(parents=True, exist_ok=True)
        self.path = work_dir / f"run-{run_id}.csv"
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

    def write(self, rows: Sequence[ValidRow]) -> int:
        """Append rows and flush; returns the file's size for the checkpoint."""
        self.fh.write("".join([r.processed for r in rows]))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.fh.tell()

    def publish(self) -> str:
        """Move the finished file into the data storage; returns its name."""
        self.fh.close()
        storage = data_storage()
        if storage.exists(self.target):
            storage.delete(self.target)
        with open(self.path, "rb") as fh:
            name = storage.save(self.target, File(fh, name=self.target))
        self.path.unlink(missing_ok=True)
        return name

    def discard(self) -> None:
        self.fh.close()
        self.path.unlink(missing_ok=True)
