"""A stream source's lag and broker trouble, where operators look: /health/, /metrics, the API and the console."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from ingestion.models import Source
from processing.services.streams import stream_consume
from tests.dataflow.test_health import check, health, worker_ran_reaper

from .conftest import RedisStream, sale

pytestmark = pytest.mark.django_db


def scrape(client: Client, settings: Any) -> dict[str, dict[tuple[Any, ...], float]]:
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1/32"]
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_lag_is_measured_and_shown_in_metrics_and_the_api(
    redis_source: Source, redis_stream: RedisStream, client: Client, settings: Any
) -> None:
    redis_stream.add(*(sale(n) for n in range(1, 6)))
    stream_consume(source=redis_source, until_idle=0.3)
    # Five more arrive after the consumer stopped: they wait in the broker.
    redis_stream.add(*(sale(n) for n in range(6, 11)))
    settings.STREAMS = {**settings.STREAMS, "BATCH_ROWS": 1, "BATCH_SECONDS": 0.05}
    stream_consume(source=redis_source, should_stop=iter([False, True]).__next__)

    redis_source.refresh_from_db()
    assert redis_source.lag == 4  # it stopped after one batch of one
    samples = scrape(client, settings)
    assert samples["dataflow_stream_lag"][(("source", "sales-stream"),)] == 4
    assert samples["dataflow_stream_consumer_up"][(("source", "sales-stream"),)] == 1

    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    api = APIClient()
    api.force_authenticate(admin)
    shown = api.get(f"/api/v1/sources/{redis_source.pk}/").json()
    assert shown["lag"] == 4 and shown["kind"] == "redis_stream" and shown["consumer_error"] == ""
    assert shown["position"] == redis_source.position and shown["has_secret"] is False
    client.force_login(admin)
    page = client.get(f"/admin/ingestion/source/{redis_source.pk}/change/")
    assert page.status_code == 200 and redis_source.position in page.content.decode()


def test_a_consumer_that_cannot_reach_its_broker_turns_health_red_until_it_can(
    redis_source: Source, client: Client, settings: Any
) -> None:
    worker_ran_reaper()
    good_url = redis_source.url
    Source.objects.filter(pk=redis_source.pk).update(url="redis://127.0.0.1:1/13")
    redis_source.refresh_from_db()
    stream_consume(source=redis_source, until_idle=0.5)

    status, results = health(client)
    assert status == 503
    assert "sales-stream" in check(results, "StreamConsumers") and "Redis" in check(results, "StreamConsumers")
    assert scrape(client, settings)["dataflow_stream_consumer_up"][(("source", "sales-stream"),)] == 0

    Source.objects.filter(pk=redis_source.pk).update(url=good_url)
    redis_source.refresh_from_db()
    stream_consume(source=redis_source, until_idle=0.3)
    _, results = health(client)
    # (Only this check: on SQLite the Database check, in another thread, cannot read
    # the schema while this test's transaction holds the dataset's new table.)
    assert check(results, "StreamConsumers") == "OK"
