"""Fixtures for the processing tests: a partner JSON API on 127.0.0.1 and sources pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.models import Dataset, Source
from ingestion.services.sources import source_create

TOKEN = "s3cr3t-partner-token"


def record(n: int) -> dict[str, Any]:
    return {
        "id": f"P{n}",
        "timestamp": "2024-03-04T05:06:07Z",
        "category": "Books",
        "value": n + 0.5,
        "quantity": n % 5,
        "customer_email": f"p{n}@example.com",
        "country": "de",
        "is_active": True,
        "updated": n,
    }


class PartnerAPI:
    """A token-protected JSON API with page-number pagination and a ``since`` filter."""

    def __init__(self, server: HTTPServer, count: int) -> None:
        self.server = server
        self.records = [record(n) for n in range(1, count + 1)]
        self.requests: list[dict[str, str]] = []
        self.fail_from_page: int | None = None
        server.expect_request("/v1/sales").respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/v1/sales")

    def handle(self, request: Request) -> Response:
        self.requests.append(dict(request.args))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response('{"error": "unauthorised"}', status=401, content_type="application/json")
        page = int(request.args.get("page", "1"))
        size = int(request.args.get("per_page", "10"))
        if self.fail_from_page is not None and page >= self.fail_from_page:
            return Response('{"error": "upstream down"}', status=503, content_type="application/json")
        since = int(request.args.get("since", "0"))
        matching = [r for r in self.records if r["updated"] > since]
        body = {"data": {"items": matching[(page - 1) * size : page * size]}, "page": page}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def partner(httpserver: HTTPServer) -> PartnerAPI:
    return PartnerAPI(httpserver, 25)


@pytest.fixture
def make_source(sales: Dataset, partner: PartnerAPI) -> Callable[..., Source]:
    def make(**overrides: Any) -> Source:
        secret = overrides.pop("secret", TOKEN)
        data: dict[str, Any] = {
            "name": "partner",
            "url": partner.url,
            "auth": Source.Auth.BEARER,
            "records_path": "data.items",
            "pagination": Source.Pagination.PAGE,
            "page_param": "page",
            "size_param": "per_page",
            "page_size": 10,
            "cursor_field": "updated",
            "watermark_param": "since",
            **overrides,
        }
        return source_create(dataset=sales, data=data, secret=secret)

    return make
