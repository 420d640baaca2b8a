"""The export commands in a shell pipeline whose reader stops early (``… | head -1``).

A Unix tool whose reader has gone stops without a word; the shell reports
status 141 (killed by SIGPIPE). Python raises ``BrokenPipeError`` instead, which
used to end the export with a traceback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from core.commands import PIPE_CLOSED_STATUS
from ingestion.models import Dataset
from tests.cluster import ROOT, manage_py_env
from tests.conftest import SALES_HEADER, all_apps, sales_row

# Far more than a pipe holds (64 KiB on Linux) plus the writer's and the
# reader's buffers, so the command is still writing when the reader leaves.
ROWS = 3000

in_another_process = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="the command runs in another process, which needs the test database on Postgres: set DATABASE_URL",
)


def ingest(csv_file: Callable[..., Path], rows: list[str]) -> int:
    out = io.StringIO()
    path = csv_file("\n".join([SALES_HEADER, *rows]) + "\n")
    call_command("ingest_csv", str(path), dataset="sales", json=True, stdout=out, stderr=io.StringIO())
    run_id: int = json.loads(out.getvalue())["id"]
    return run_id


class ReaderGone(io.StringIO):
    """Standard output whose reader leaves after the first write, as ``head -1`` does."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@in_another_process
# Committed, so the command's own process sees the rows; available_apps leaves
# the database as the serialized transactional tests expect (see all_apps).
@pytest.mark.django_db(transaction=True, available_apps=all_apps())
@pytest.mark.parametrize("command", ["export_records", "export_rejected"])
def test_an_export_piped_into_head_stops_quietly(
    command: str, sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    good = [sales_row(i) for i in range(1, ROWS + 1)]
    bad = [f"R{i},2024-01-02,books,1,not-a-number,r{i}@example.com,US,,yes" for i in range(1, ROWS + 1)]
    run_id = ingest(csv_file, good + bad)
    args = ["--dataset", "sales"] if command == "export_records" else ["--run", str(run_id)]

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), command, *args],
        env=manage_py_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its first line
    stderr = proc.stderr.read().decode()
    status = proc.wait(timeout=60)

    assert first.decode().startswith("_line,_errors,id," if command == "export_rejected" else "id,timestamp,")
    assert stderr == ""
    assert status == PIPE_CLOSED_STATUS == 141


@pytest.mark.django_db
def test_an_export_whose_reader_leaves_exits_with_the_status_of_a_closed_pipe(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    ingest(csv_file, [sales_row(i) for i in range(1, 50)])
    stdout: Any = ReaderGone()

    with pytest.raises(SystemExit) as exit_:
        call_command("export_records", dataset="sales", stdout=stdout, stderr=io.StringIO())

    assert exit_.value.code == PIPE_CLOSED_STATUS
    assert stdout.getvalue() == SALES_HEADER + "\r\n"  # the CSV dialect ends lines with CRLF


@pytest.mark.django_db
def test_an_export_to_stdout_writes_every_record_through_the_commands_stream(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    ingest(csv_file, [sales_row(i) for i in range(1, 50)])
    out = io.StringIO()

    call_command("export_records", dataset="sales", stdout=out, stderr=io.StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0] == SALES_HEADER
    assert len(lines) == 50
