"""The console shows the product, not the plumbing: the System section, numbers, the runs list, primary
actions, no-op runs, and the progress line of the commands on a real terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import tty
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from core.commands import CLEAR_LINE, ProgressBar
from ingestion.models import Dataset, RawFile
from processing.models import Run, RunStatus
from tests.conftest import SALES_HEADER, sales_row
from tests.processing.test_admin import BAD_ROW, client_for, upload

pytestmark = pytest.mark.django_db

SYSTEM_APPS = {"axes", "django_q", "token_blacklist"}


def sales_file(csv_file: Callable[..., Path], rows: list[str], name: str | None = None) -> Path:
    return csv_file("\n".join([SALES_HEADER, *rows]) + "\n", name=name)


def ingest(path: Path, dataset: str = "sales") -> int:
    out = io.StringIO()
    call_command("ingest_csv", str(path), dataset=dataset, json=True, stdout=out, stderr=io.StringIO())
    run_id: int = json.loads(out.getvalue())["id"]
    return run_id


def app_labels(response: Any) -> list[str]:
    return [app["app_label"] for app in response.context["app_list"]]


# --- The System section -----------------------------------------------------------------


def test_a_superuser_finds_the_plumbing_under_one_system_section_last(sales: Dataset) -> None:
    response = client_for(superuser=True).get(reverse("admin:index"))

    labels = app_labels(response)
    assert labels[-1] == "system" and not SYSTEM_APPS & set(labels)
    assert {"ingestion", "processing"} <= set(labels)
    system = response.context["app_list"][-1]
    names = [model["name"] for model in system["models"]]
    assert "Access attempts (Axes)" in names
    assert "Scheduled tasks (Django Q)" in names
    assert "Outstanding Tokens (Token Blacklist)" in names
    page = response.content.decode()
    assert ">System</a>" in page
    # Each entry still opens that app's own list.
    assert reverse("admin:axes_accessattempt_changelist") in page
    assert client_for(superuser=True).get(reverse("admin:axes_accessattempt_changelist")).status_code == 200


def test_an_operator_sees_no_system_section(sales: Dataset) -> None:
    response = client_for("Operators").get(reverse("admin:index"))

    labels = app_labels(response)
    assert "processing" in labels
    assert "system" not in labels and not SYSTEM_APPS & set(labels)
    assert ">System</a>" not in response.content.decode()


def test_an_apps_own_page_is_left_as_django_builds_it(sales: Dataset) -> None:
    response = client_for(superuser=True).get(reverse("admin:app_list", args=["axes"]))

    assert response.status_code == 200
    assert app_labels(response) == ["axes"]


# --- Numbers, the runs list, primary actions ---------------------------------------------


def test_counts_are_shown_with_thousands_separators(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    rows = [sales_row(n) for n in range(1, 1235)] + [BAD_ROW.replace("S9", f"B{n}") for n in range(1, 1003)]
    run_id = ingest(sales_file(csv_file, rows))
    admin = client_for(superuser=True)

    run_page = admin.get(reverse("admin:processing_run_change", args=[run_id])).content.decode()
    assert '<strong data-counter="rows_read">2,236</strong>' in run_page
    assert '<strong data-counter="rows_inserted">1,234</strong>' in run_page
    assert "Rejected rows (1,002" in run_page
    assert "×1,002" in run_page  # the error group

    runs_list = admin.get(reverse("admin:processing_run_changelist")).content.decode()
    assert '<td class="field-read">2,236</td>' in runs_list
    assert '<td class="field-rejected">1,002</td>' in runs_list

    dashboard = admin.get(reverse("admin:index")).content.decode()
    assert '<td class="df-num">2,236</td>' in dashboard and '<td class="df-num">1,002</td>' in dashboard

    facets = admin.get(reverse("admin:processing_data", args=["sales"])).content.decode()
    assert '<span class="df-count">(1,234)</span>' in facets  # every record's category is books


def test_the_runs_list_shows_the_file_name_and_filters_by_dataset(
    sales: Dataset, notes: Dataset, csv_file: Callable[..., Path]
) -> None:
    sales_run = ingest(sales_file(csv_file, [sales_row(1)], name="march-sales.csv"))
    notes_run = ingest(csv_file("id,text,count,flag\nn1,hello,1,true\n", name="notes-export.csv"), dataset="notes")
    admin = client_for(superuser=True)
    changelist = reverse("admin:processing_run_changelist")

    everything = admin.get(changelist)
    page = everything.content.decode()
    assert '<td class="field-file_name">march-sales.csv</td>' in page
    assert '<td class="field-file_name">notes-export.csv</td>' in page
    # The dataset filter lists the datasets of the runs, and narrows the list to one.
    assert f"?dataset__id__exact={sales.pk}" in page and f"?dataset__id__exact={notes.pk}" in page
    only_sales = admin.get(changelist, {"dataset__id__exact": sales.pk})
    shown = [run.pk for run in only_sales.context["cl"].result_list]
    assert shown == [sales_run] and notes_run not in shown
    assert "notes-export.csv" not in only_sales.content.decode()
    # Sorting by the file name works (the column is the file's original name).
    column = list(django_admin.site._registry[Run].list_display).index("file_name")  # "o" counts from 0
    by_name = admin.get(changelist, {"o": str(column)})
    assert [run.pk for run in by_name.context["cl"].result_list] == [sales_run, notes_run]
    by_name_descending = admin.get(changelist, {"o": f"-{column}"})
    assert [run.pk for run in by_name_descending.context["cl"].result_list] == [notes_run, sales_run]

    # The dashboard's datasets table links each dataset's runs.
    dashboard = admin.get(reverse("admin:index")).content.decode()
    assert f'href="{changelist}?dataset__id__exact={sales.pk}" class="df-runs-link"' in dashboard


def test_the_primary_action_of_each_page_looks_primary(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    operator = client_for("Operators", grants={sales: "ingester"})
    upload(operator, sales, sales_file(csv_file, [sales_row(1), BAD_ROW]))
    preview = operator.get(reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk])).content.decode()
    assert re.search(r'<button [^>]*class="button default" id="confirm"', preview)
    assert re.search(r'<button [^>]*value="discard" class="button"', preview)

    operator.post(reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk]), {"action": "confirm"})
    run = Run.objects.get()
    operator.post(reverse("admin:processing_run_cancel", args=[run.pk]))
    run_page = operator.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()
    assert '<button type="submit" id="action-retry" class="button default">Retry</button>' in run_page
    assert '<button type="submit" id="action-replay" class="button"' in run_page  # secondary

    dashboard = operator.get(reverse("admin:index")).content.decode()
    assert 'class="button default df-primary" id="dashboard-upload"' in dashboard
    data_page = operator.get(reverse("admin:processing_data", args=["sales"])).content.decode()
    assert '<button type="submit" class="button default">Add filter</button>' in data_page
    assert '<button type="submit" class="button">Search</button>' in data_page


# --- A no-op run -------------------------------------------------------------------------


def test_a_no_op_run_says_which_run_already_loaded_the_file(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = sales_file(csv_file, [sales_row(1), sales_row(2)])
    first = ingest(path)
    again = ingest(path)
    assert Run.objects.get(pk=again).noop_of_id == first
    admin = client_for(superuser=True)

    run_page = admin.get(reverse("admin:processing_run_change", args=[again])).content.decode()
    first_url = reverse("admin:processing_run_change", args=[first])
    assert re.search(
        rf'id="run-noop">— nothing to do: this exact file was already loaded by <a href="{first_url}">run #{first}</a>',
        run_page,
    )
    runs_list = admin.get(reverse("admin:processing_run_changelist")).content.decode()
    assert f"no-op: file loaded by run #{first}" in runs_list
    dashboard = admin.get(reverse("admin:index")).content.decode()
    assert f"no-op: file loaded by run #{first}" in dashboard

    out = io.StringIO()
    call_command("run_status", again, stdout=out, stderr=io.StringIO())
    assert f"nothing to do: the same file was already loaded by run {first}" in out.getvalue()
    # The API's and --json's names are as they were.
    as_json = io.StringIO()
    call_command("run_status", again, json=True, stdout=as_json, stderr=io.StringIO())
    assert json.loads(as_json.getvalue())["noop_of"] == first


# --- The progress line on a real terminal ------------------------------------------------


class Terminal:
    """A pseudo-terminal: the commands see a tty on the writing side; the test reads what they drew."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no newline translation: the bytes as written
        self.writer = os.fdopen(slave, "w", buffering=1, encoding="utf-8")
        os.set_blocking(self.master, False)

    def read(self) -> str:
        self.writer.flush()
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()

    def close(self) -> None:
        self.writer.close()
        os.close(self.master)


def screen(text: str) -> list[str]:
    """The lines a terminal would show: a carriage return starts the line over, ESC[K erases the rest."""
    lines = []
    for raw in text.split("\n"):
        line = ""
        for part in re.split(r"(\r|\x1b\[K)", raw):
            if part == "\r":
                line = ""  # good enough: every redraw in this program is followed by an erase
            elif part != "\x1b[K":
                line += part
        lines.append(line)
    return lines


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    yield term
    term.close()


@pytest.fixture
def logs_on_terminal(terminal: Terminal) -> Iterator[logging.Handler]:
    """The configured log handler, writing to the terminal as it does to a console's stderr."""
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(terminal.writer)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    yield handler
    logging.getLogger().setLevel(level)
    handler.setStream(previous)


def test_run_status_wait_reports_the_runs_own_rate_and_clears_its_line(
    sales: Dataset, terminal: Terminal, csv_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = ingest(sales_file(csv_file, [sales_row(1)]))
    # A run that has read 50,000 rows in the 100 seconds since it started.
    Run.objects.filter(pk=run_id).update(
        status=RunStatus.RUNNING,
        finished_at=None,
        started_at=timezone.now() - timedelta(seconds=100),
        rows_read=50_000,
        bytes_read=500,
        bytes_total=1000,
    )

    # Here, not in a fixture: pytest sets its own sys.stderr again when the test itself starts.
    monkeypatch.setattr(sys, "stderr", terminal.writer)
    with pytest.raises(CommandError, match="still running"):
        call_command("run_status", run_id, wait=True, timeout=0.3, interval=0.1, stdout=io.StringIO())
    drawn = terminal.read()

    assert re.search(r"\[#{15}-{15}\]  50\.0%  50,000 rows  (49\d|500) rows/s", drawn), drawn
    assert drawn.endswith(CLEAR_LINE)
    assert screen(drawn) == [""]  # nothing left on the line when the command ends


def test_a_log_line_never_runs_on_from_the_progress_bar(
    sales: Dataset,
    terminal: Terminal,
    logs_on_terminal: logging.Handler,
    csv_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = sales_file(csv_file, [sales_row(n) for n in range(1, 301)])
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal.writer)
    call_command("ingest_csv", str(path), dataset="sales", chunk_size=100, stdout=out)
    drawn = terminal.read()

    assert "rows/s" in drawn  # the bar was drawn, chunk by chunk
    shown = screen(drawn)
    logged = [line for line in shown if "run succeeded" in line]
    assert len(logged) == 1 and "rows/s" not in logged[0] and logged[0].startswith("{")
    assert shown[-1] == ""  # the bar is gone at the end
    assert "Run " in out.getvalue() and "succeeded" in out.getvalue()
    assert logs_on_terminal.filters == [f for f in logs_on_terminal.filters if not hasattr(f, "bar")]


def test_the_bar_is_silent_off_a_terminal(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as stream:
        bar = ProgressBar(100, stream=stream)
        bar.update(50, 10)
        bar.close()
    assert (tmp_path / "log").read_text() == ""


# --- The data page's field sorts read values and nulls apart ----------------------------


@pytest.mark.parametrize("sort", ["value", "-value"])
def test_paging_a_field_sort_with_nulls_gives_the_whole_view_in_order_both_ways(
    sales: Dataset, csv_file: Callable[..., Path], sort: str
) -> None:
    # Values that repeat (ties broken by key) and 5 records without one.
    rows = [
        f"S{n},2024-01-02T03:04:05Z,books,{'' if n % 4 == 0 else n % 3},1,u{n}@example.com,FR,,yes"
        for n in range(1, 21)
    ]
    ingest(sales_file(csv_file, rows))
    valued = sorted(((Decimal(n % 3), f"S{n}") for n in range(1, 21) if n % 4), reverse=sort.startswith("-"))
    nulls = sorted((f"S{n}" for n in range(1, 21) if n % 4 == 0), reverse=sort.startswith("-"))
    expected = [key for _, key in valued] + nulls  # nulls last either way
    viewer = client_for(superuser=True)
    url = reverse("admin:processing_data", args=["sales"])

    html = viewer.get(url, {"_sort": sort, "country": "FR", "_size": 3}).content.decode()
    seen: list[str] = []
    while True:
        seen += data_keys(html)
        found = re.search(r'href="([^"]+)" id="data-next"', html)
        if found is None:
            break
        html = viewer.get(url + found.group(1).replace("&amp;", "&")).content.decode()
    assert seen == expected
    back: list[str] = []
    while True:
        back = data_keys(html) + back
        found = re.search(r'href="([^"]+)" id="data-previous"', html)
        if found is None:
            break
        html = viewer.get(url + found.group(1).replace("&amp;", "&")).content.decode()
    assert back == expected


def data_keys(html: str) -> list[str]:
    return re.findall(r'title="Record ([^"]+) and its lineage"', html)


def test_facets_of_a_view_larger_than_the_sample_are_counted_over_the_whole_view(
    sales: Dataset, csv_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("processing.data_page.FACET_SAMPLE_ROWS", 4)
    monkeypatch.setattr("processing.data_page.FACET_MAX_VALUES", 4)
    rows = [sales_row(n, category="toys" if n % 3 == 0 else "books") for n in range(1, 31)]
    ingest(sales_file(csv_file, rows))
    admin = client_for(superuser=True)
    url = reverse("admin:processing_data", args=["sales"])

    html = admin.get(url).content.decode()
    facets = set(re.findall(r'data-facet="([^"]+)"', html))
    assert "category" in facets and "email" not in facets  # 5 e-mails already in the sample of 5
    assert re.search(r'href="\?category=books">books</a> <span class="df-count">\(20\)</span>', html)
    assert re.search(r'href="\?category=toys">toys</a> <span class="df-count">\(10\)</span>', html)
    # Above the bound: no facets, and the page says why.
    monkeypatch.setattr("processing.data_page.FACET_MAX_ROWS", 29)
    assert 'id="data-facets-skipped"' in admin.get(url).content.decode()
    # Later pages do not count them again.
    monkeypatch.setattr("processing.data_page.FACET_MAX_ROWS", 20_000)
    second = admin.get(url, {"_size": 10}).content.decode()
    next_url = re.search(r'href="([^"]+)" id="data-next"', second)
    assert next_url is not None
    later = admin.get(url + next_url.group(1).replace("&amp;", "&")).content.decode()
    assert "data-facet=" not in later and 'id="data-facets-skipped"' not in later
