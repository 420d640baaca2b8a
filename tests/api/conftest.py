"""Personas and helpers for the REST API tests.

``sales`` (from tests/conftest.py) has a manager, an ingester and a viewer;
the stranger has no grant on it but manages a dataset of their own,
``other``, so "sees nothing" is tested against a user who does see things.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from processing.models import Run
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, SALES_SCHEMA, sales_row
from tests.factories import UserFactory

User = get_user_model()
PASSWORD = "correct horse battery staple"
API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    """Throttle counters live in the cache, which outlives a test."""
    cache.clear()


def bearer(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def grant(dataset: Dataset, user: Any, role: str) -> DatasetGrant:
    return DatasetGrant.objects.create(dataset=dataset, user=user, role=role)


@pytest.fixture
def other(db: None) -> Dataset:
    schema = {**json.loads(json.dumps(SALES_SCHEMA)), "slug": "other", "name": "Someone else's sales"}
    return dataset_apply(spec=schema_parse(schema)).dataset


@pytest.fixture
def manager(sales: Dataset) -> Any:
    user = UserFactory(username="manager")
    grant(sales, user, DatasetRole.MANAGER)
    return user


@pytest.fixture
def ingester(sales: Dataset) -> Any:
    user = UserFactory(username="ingester")
    grant(sales, user, DatasetRole.INGESTER)
    return user


@pytest.fixture
def viewer(sales: Dataset) -> Any:
    user = UserFactory(username="viewer")
    grant(sales, user, DatasetRole.VIEWER)
    return user


@pytest.fixture
def stranger(sales: Dataset, other: Dataset) -> Any:
    user = UserFactory(username="stranger")
    grant(other, user, DatasetRole.MANAGER)
    return user


@pytest.fixture
def as_manager(manager: Any) -> APIClient:
    return bearer(manager)


@pytest.fixture
def as_ingester(ingester: Any) -> APIClient:
    return bearer(ingester)


@pytest.fixture
def as_viewer(viewer: Any) -> APIClient:
    return bearer(viewer)


@pytest.fixture
def as_stranger(stranger: Any) -> APIClient:
    return bearer(stranger)


@pytest.fixture
def persona(request: pytest.FixtureRequest) -> APIClient:
    """Parametrise with indirect=True and a persona name: manager, ingester, viewer or stranger."""
    return request.getfixturevalue(f"as_{request.param}")


def sales_csv(rows: list[str]) -> str:
    return "\n".join([SALES_HEADER, *rows]) + "\n"


@pytest.fixture
def ingest(csv_file: Callable[..., Path]) -> Callable[..., Run]:
    """Load CSV text into a dataset through the pipeline, as a command would."""

    def load(dataset: Dataset, text: str, **kwargs: Any) -> Run:
        path = csv_file(text)
        with path.open("rb") as fh:
            return file_ingest(dataset=dataset, source=fh, original_name=path.name, **kwargs)

    return load


@pytest.fixture
def loaded(sales: Dataset, ingest: Callable[..., Run]) -> Run:
    """Sales with 12 records S1..S12 (quantity = n % 4) and one rejected row."""
    rows = [sales_row(n, quantity=n % 4) for n in range(1, 13)]
    rows.append("BAD,not-a-date,books,1,1,x@example.com,US,,yes")
    return ingest(sales, sales_csv(rows))


@pytest.fixture
def other_run(other: Dataset, ingest: Callable[..., Run]) -> Run:
    return ingest(other, sales_csv([sales_row(900), "BAD,not-a-date,books,1,1,x@example.com,US,,yes"]))


def error_of(response: Any) -> dict[str, Any]:
    """The error object of a response, checking the one error shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]
