"""Structured logs carry the request id, the user and the run id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client

from dataflow.logging import ContextFilter, JsonFormatter
from ingestion.models import Dataset
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.factories import UserFactory


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Capture what the production handler would write, for the root and django loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(), logging.getLogger("django")]
    for logger in loggers:
        logger.addHandler(handler)
    old_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)
    logging.getLogger().setLevel(old_level)


def parse(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_request_id_is_taken_from_the_header_and_echoed(client: Client) -> None:
    response = client.get("/health/live/", HTTP_X_REQUEST_ID="req-2024.abc:1")

    assert response["X-Request-ID"] == "req-2024.abc:1"


@pytest.mark.parametrize("incoming", ["", "has spaces", "x" * 200, "<script>"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_fresh_one(client: Client, incoming: str) -> None:
    response = client.get("/health/live/", HTTP_X_REQUEST_ID=incoming)

    assert len(response["X-Request-ID"]) == 32
    assert response["X-Request-ID"] != incoming


@pytest.mark.django_db
def test_every_log_line_of_a_request_carries_its_request_id_and_user(client: Client, json_lines: io.StringIO) -> None:
    client.force_login(UserFactory(username="ada", is_staff=True))
    client.get("/admin/no-such-page/", HTTP_X_REQUEST_ID="trace-42")

    lines = [line for line in parse(json_lines) if line["logger"] == "django.request"]
    assert lines, json_lines.getvalue()
    for line in lines:
        assert line["request_id"] == "trace-42"
        assert line["user"] == "ada"
        assert line["level"] == "WARNING"
        assert "Not Found" in line["message"]


@pytest.mark.django_db
def test_pipeline_log_lines_carry_the_run_id(
    sales: Dataset, csv_file: Callable[..., Path], json_lines: io.StringIO
) -> None:
    with csv_file(f"{SALES_HEADER}\n{sales_row(1)}\n").open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)

    finished = [line for line in parse(json_lines) if line["message"] == "run succeeded"]
    assert finished == [
        {
            "time": finished[0]["time"],
            "level": "INFO",
            "logger": "processing.services.runs",
            "message": "run succeeded",
            "run_id": run.pk,
            "dataset": "sales",
            "status": "succeeded",
            "rows_read": 1,
            "rows_rejected": 0,
            "rows_inserted": 1,
            "rows_updated": 0,
            "attempt": 1,
        }
    ]
