"""Brute force on the admin login and the API token endpoint is locked out per account and address."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
ATTACKER, COLLEAGUE = "203.0.113.9", "198.51.100.7"


def admin_login(username: str, password: str, ip: str) -> int:
    response = Client(REMOTE_ADDR=ip).post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )
    return response.status_code


def token(username: str, password: str, ip: str) -> int:
    client = APIClient(REMOTE_ADDR=ip)
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json").status_code


def test_an_admin_brute_force_is_locked_out_without_locking_out_others() -> None:
    UserFactory(username="ops", is_staff=True)
    UserFactory(username="ana", is_staff=True)
    for _ in range(4):
        assert admin_login("ops", "guess", ATTACKER) == 200  # the form again, with an error
    assert admin_login("ops", "guess", ATTACKER) == 429  # the fifth failure locks

    assert admin_login("ops", PASSWORD, ATTACKER) == 429  # locked, even with the right password
    assert admin_login("ops", PASSWORD, COLLEAGUE) == 302  # the real user elsewhere is not
    assert admin_login("ana", PASSWORD, ATTACKER) == 302  # nor other accounts from that address


def test_the_token_endpoint_is_locked_out_the_same_way() -> None:
    UserFactory(username="bot")
    for _ in range(5):
        assert token("bot", "guess", ATTACKER) == 401

    # Locked: the right password gets the same answer as a wrong one (nothing to learn).
    assert token("bot", PASSWORD, ATTACKER) == 401
    assert token("bot", PASSWORD, COLLEAGUE) == 200


LONG_NAME = "x" * 300  # past the 255 characters of the failed-attempt log's username column


def test_an_overlong_username_at_the_token_endpoint_is_a_400_not_a_500() -> None:
    client = APIClient(REMOTE_ADDR=ATTACKER)

    response = client.post("/api/v1/auth/token/", {"username": LONG_NAME, "password": "guess"}, format="json")

    assert response.status_code == 400, response.content
    assert "username" in response.json()["error"]["details"]


def test_an_overlong_username_at_the_admin_login_is_a_form_error() -> None:
    response = Client(REMOTE_ADDR=ATTACKER).post(
        "/admin/login/", {"username": LONG_NAME, "password": "guess", "next": "/admin/"}
    )

    assert response.status_code == 200
    assert "username" in response.context["form"].errors


def test_overlong_usernames_still_count_towards_nothing_and_lock_nobody_out() -> None:
    UserFactory(username="ops", is_staff=True)
    for _ in range(10):
        assert token(LONG_NAME, "guess", ATTACKER) == 400
        assert admin_login(LONG_NAME, "guess", ATTACKER) == 200

    assert token("ops", PASSWORD, ATTACKER) == 200
    assert admin_login("ops", PASSWORD, ATTACKER) == 302
