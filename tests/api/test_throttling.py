"""Throttles count atomically in a shared Redis, and degrade to per-process counting when it is gone."""

from __future__ import annotations

import logging
import multiprocessing
import re
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from api import throttling
from api.throttling import UserThrottle
from tests.conftest import RedisServer

from .conftest import API, PASSWORD

pytestmark = pytest.mark.django_db


def set_rate(settings: Any, scope: str, rate: str) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope: rate}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def _count_passes(start: Any, attempts: int, passed: Any) -> None:
    """In a child process: ask the user throttle ``attempts`` times for user 7 and report how many passed."""
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=7))
    start.wait()
    passed.put(sum(UserThrottle().allow_request(request, None) for _ in range(attempts)))


@pytest.fixture(autouse=True)
def metrics_open_to_the_test_client(settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1/32"]  # the test client's address


def cache_errors(client: Client) -> float:
    """dataflow_cache_errors_total{operation="throttle"} as /metrics reports it (0 before the first error)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    text = response.content.decode()
    match = re.search(r'^dataflow_cache_errors_total\{operation="throttle"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_processes_sharing_redis_never_let_one_user_past_the_rate(redis_cache: RedisServer, settings: Any) -> None:
    set_rate(settings, "user", "50/minute")
    ctx = multiprocessing.get_context("fork")
    processes, attempts = 4, 40
    start, passed = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_count_passes, args=(start, attempts, passed)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    counts = [passed.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)

    assert sum(counts) == 50, counts
    assert redis_cache.client().zcard(cache.make_key("throttle_user_7")) == 50


# Committed rows, so the client threads' own connections see the user; the
# serialized rollback leaves the database as the later transactional tests expect.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_token_from_many_threads_gets_exactly_the_rate_through_the_api(
    viewer: Any, redis_cache: RedisServer, settings: Any
) -> None:
    set_rate(settings, "user", "20/minute")
    token = str(RefreshToken.for_user(viewer).access_token)

    def hit(_: int) -> list[int]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            return [client.get(f"{API}/datasets/").status_code for _ in range(8)]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = Counter(status for batch in pool.map(hit, range(6)) for status in batch)

    assert statuses == {200: 20, 429: 28}


def test_the_local_memory_cache_still_throttles_with_retry_after(viewer: Any, settings: Any) -> None:
    set_rate(settings, "user", "2/minute")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")

    statuses = [client.get(f"{API}/datasets/").status_code for _ in range(3)]
    throttled = client.get(f"{API}/datasets/")

    assert statuses == [200, 200, 429]
    assert 55 <= int(throttled["Retry-After"]) <= 60


def test_retry_after_from_redis_is_the_time_until_the_oldest_request_leaves_the_period(
    viewer: Any, redis_cache: RedisServer, settings: Any
) -> None:
    set_rate(settings, "user", "2/minute")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")

    statuses = [client.get(f"{API}/datasets/").status_code for _ in range(3)]
    throttled = client.get(f"{API}/datasets/")

    assert statuses == [200, 200, 429]
    assert throttled.json()["error"]["code"] == "throttled"
    assert 55 <= int(throttled["Retry-After"]) <= 60


def test_while_redis_is_down_the_api_answers_and_throttles_per_process_then_shares_again(
    viewer: Any,
    redis_cache: RedisServer,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ask Redis on every request, so the log's own rate limit is what keeps it to one line.
    monkeypatch.setattr(throttling, "REDIS_RETRY_SECONDS", 0)
    set_rate(settings, "user", "5/minute")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
    metrics = Client()
    assert [client.get(f"{API}/datasets/").status_code for _ in range(2)] == [200, 200]
    errors_before = cache_errors(metrics)

    redis_cache.stop()
    with caplog.at_level(logging.WARNING, logger="api.throttling"):
        during = [client.get(f"{API}/datasets/").status_code for _ in range(6)]
        stranger = APIClient(HTTP_AUTHORIZATION="Bearer not-a-token").get(f"{API}/datasets/").status_code
        wrong = APIClient().post(f"{API}/auth/token/", {"username": "viewer", "password": "nope"}, format="json")
        right = APIClient().post(f"{API}/auth/token/", {"username": "viewer", "password": PASSWORD}, format="json")

    # This process's own count starts afresh: 5 pass, the sixth is throttled.
    assert during == [200, 200, 200, 200, 200, 429]
    assert (stranger, wrong.status_code, right.status_code) == (401, 401, 200)
    warnings = [r.getMessage() for r in caplog.records if r.name == "api.throttling"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("cache unreachable (ConnectionError: Error 111 connecting to 127.0.0.1:")
    assert warnings[0].endswith("Connection refused.): API throttles count per process until it answers again")
    # Each throttled request asked Redis once: six reads and two tokens (a bad token is refused before throttling).
    assert cache_errors(metrics) - errors_before == 8

    redis_cache.start()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="api.throttling"):
        after = [client.get(f"{API}/datasets/").status_code for _ in range(6)]

    # A restarted Redis holds no log: 5 pass, counted in Redis again.
    assert after == [200, 200, 200, 200, 200, 429]
    assert redis_cache.client().zcard(cache.make_key(f"throttle_user_{viewer.pk}")) == 5
    assert [r.getMessage() for r in caplog.records if r.name == "api.throttling"] == [
        "cache reachable again: API throttles are shared again"
    ]


def test_after_a_failure_redis_is_left_alone_for_a_few_seconds(
    viewer: Any, redis_cache: RedisServer, settings: Any, client: Client
) -> None:
    set_rate(settings, "user", "100/minute")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
    errors_before = cache_errors(client)

    redis_cache.stop()
    statuses = [api.get(f"{API}/datasets/").status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert cache_errors(client) - errors_before == 1


def test_a_redis_that_accepts_but_never_answers_slows_one_request_not_all(
    viewer: Any, settings: Any, client: Client, throttle_state: None
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3},
            }
        }
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
        errors_before = cache_errors(client)

        timings, statuses = [], []
        for _ in range(4):
            started = time.monotonic()
            statuses.append(api.get(f"{API}/datasets/").status_code)
            timings.append(time.monotonic() - started)

    assert statuses == [200] * 4
    assert 0.3 <= timings[0] < 1.5  # waited for the socket timeout once…
    assert max(timings[1:]) < 0.3  # …then counted locally without asking again
    assert cache_errors(client) - errors_before == 1
