"""/metrics: Prometheus figures for requests and the pipeline, behind a token or an allow-list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from ingestion.models import Dataset
from processing.services.runs import file_enqueue, file_ingest
from tests.conftest import SALES_HEADER, sales_row

pytestmark = pytest.mark.django_db
TOKEN = "scrape-secret-0123456789"


@pytest.fixture(autouse=True)
def _loopback_may_scrape(settings: Any) -> None:
    """The tests scrape as a Prometheus on this machine that the operator allowed explicitly."""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1/32", "::1/128"]
    settings.METRICS_TOKEN = ""


def scrape(client: Client, **headers: str) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_the_rows_of_a_run_just_made(
    client: Client, sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    text = "\n".join([SALES_HEADER, sales_row(1), sales_row(2), "S3,bad,books,1,1,a@example.com,US,,yes"]) + "\n"
    with csv_file(text).open("rb") as fh:
        file_ingest(dataset=sales, source=fh)
    with csv_file(SALES_HEADER + "\n" + sales_row(9) + "\n").open("rb") as fh:
        file_enqueue(dataset=sales, source=fh)

    samples = scrape(client)

    rows = samples["dataflow_rows_total"]
    assert rows[(("dataset", "sales"), ("outcome", "read"))] == 3
    assert rows[(("dataset", "sales"), ("outcome", "valid"))] == 2
    assert rows[(("dataset", "sales"), ("outcome", "rejected"))] == 1
    assert samples["dataflow_runs"][(("status", "partially_succeeded"),)] == 1
    assert samples["dataflow_runs"][(("status", "queued"),)] == 1
    assert samples["dataflow_queue_depth"][()] == 1
    assert samples["dataflow_run_duration_seconds_count"][()] == 1
    assert samples["dataflow_run_duration_seconds_bucket"][(("le", "+Inf"),)] == 1
    assert (("dataset", "sales"),) in samples["dataflow_last_success_timestamp_seconds"]


def test_metrics_count_http_requests_by_route(client: Client) -> None:
    client.get("/health/live/")
    client.get("/health/live/")
    samples = scrape(client)

    requests = samples["dataflow_http_requests_total"]
    live = requests[(("method", "GET"), ("route", "health/live/"), ("status", "200"))]
    assert live >= 2
    assert samples["dataflow_http_request_duration_seconds_count"][(("method", "GET"), ("route", "health/live/"))] >= 2


def test_metrics_refuse_strangers_and_accept_the_token(client: Client, settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "scrape-secret-0123456789"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_the_grafana_dashboard_only_uses_metrics_we_export(client: Client) -> None:
    import json
    import re

    root = Path(__file__).resolve().parents[2] / "dataflow" / "monitoring"
    dashboard = json.loads((root / "grafana" / "dashboards" / "dataflow.json").read_text())
    text = client.get("/metrics").content.decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"dataflow_[a-z_]+", target["expr"]):
                base = re.sub(r"_(bucket|count|sum|total)$", "", name)
                assert base in families or name in families, name
    assert "web:8000" in (root / "prometheus.yml").read_text()


def test_with_neither_a_token_nor_an_allow_list_metrics_are_closed(client: Client, settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics")  # from 127.0.0.1

    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_FORWARDED": "for=203.0.113.9;proto=https"},
        {"HTTP_X_REAL_IP": "203.0.113.9"},
        {"HTTP_X_FORWARDED_PROTO": "https"},
        {"HTTP_VIA": "1.1 proxy"},
    ],
)
def test_a_request_relayed_by_a_proxy_on_this_host_is_not_local(
    client: Client, settings: Any, header: dict[str, str]
) -> None:
    """A reverse proxy on the same machine connects from 127.0.0.1 on behalf of anyone on the internet."""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **header)

    assert response.status_code == 403
    assert "proxy" in response.content.decode()


def test_a_relayed_request_with_the_token_is_let_in(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200


def test_a_direct_scrape_from_an_allowed_network_needs_no_token(client: Client, settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = ["10.20.0.0/16"]

    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_token_with_non_ascii_characters_is_refused_not_a_crash(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer caf\u00e9").status_code == 403
