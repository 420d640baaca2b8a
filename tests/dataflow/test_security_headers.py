"""Browser-facing security headers on every page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy_and_nosniff(client: Client) -> None:
    response = client.get("/admin/login/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_api_sends_no_cors_headers(client: Client) -> None:
    response = client.options(
        "/api/v1/datasets/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )

    assert "Access-Control-Allow-Origin" not in response


def test_the_api_docs_get_their_own_policy_without_inline_scripts(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/api/docs/")

    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "worker-src 'self' blob:" in policy
    assert "https:" not in policy and "jsdelivr" not in policy
