"""Reading the tables of the docs, so tests can hold a registry and its documentation to each other."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _cells(line: str) -> list[str]:
    # A cell may hold an escaped pipe (`csv\|json`).
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def markdown_table(page: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the first table in ``docs/<page>`` whose first column is headed ``first_header``."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    for at, line in enumerate(lines):
        separator = lines[at + 1] if at + 1 < len(lines) else ""
        if line.startswith("|") and separator.startswith("|---") and _cells(line)[0] == first_header:
            headers = _cells(line)
            rows = []
            for row in lines[at + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(headers, _cells(row), strict=True)))
            return rows
    raise AssertionError(f"docs/{page} has no table headed {first_header!r}")


def code_names(cell: str) -> list[str]:
    """The names written as code in a cell: "`csv` (default)" gives ["csv"]."""
    return re.findall(r"`([^`]+)`", cell)
