"""api/authentication.py: simplejwt's checks, with the user read by a hand-written statement."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt import authentication as simplejwt
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

from api.authentication import JWTAuthentication, user_get
from ingestion.models import Dataset
from tests.factories import UserFactory

from .conftest import API, bearer, error_of

pytestmark = pytest.mark.django_db


def fields_of(user: Any) -> dict[str, Any]:
    return {f.attname: getattr(user, f.attname) for f in get_user_model()._meta.concrete_fields}


def test_the_user_read_is_the_instance_objects_get_gives() -> None:
    user = UserFactory(username="ada", is_staff=True, first_name="Ada", email="ada@example.com")
    user.last_login = timezone.now()
    user.save()

    read = user_get(user.pk)

    expected = get_user_model().objects.get(pk=user.pk)
    assert type(read) is type(expected)
    assert fields_of(read) == fields_of(expected)
    assert read.last_login.tzinfo is not None and read.is_staff is True
    assert read._state.db == expected._state.db and read._state.adding is False


def test_an_unknown_user_is_none_and_a_value_that_is_no_id_raises_as_the_orm_does() -> None:
    assert user_get(10**9) is None
    with pytest.raises(ValueError):
        user_get("not a number")
    with pytest.raises(ValueError):
        get_user_model().objects.get(pk="not a number")


def test_it_accepts_and_refuses_what_simplejwt_does(viewer: Any) -> None:
    ours, theirs = JWTAuthentication(), simplejwt.JWTAuthentication()
    token = AccessToken.for_user(viewer)
    assert ours.get_user(token).pk == theirs.get_user(token).pk == viewer.pk

    def refusal(auth: Any, token: Any) -> tuple[type, str, str]:
        with pytest.raises((AuthenticationFailed, InvalidToken)) as caught:
            auth.get_user(token)
        detail = cast(dict[str, Any], caught.value.detail)
        return type(caught.value), str(detail["detail"]), str(detail["code"])

    no_user = AccessToken.for_user(viewer)
    del no_user["user_id"]
    assert refusal(ours, no_user) == refusal(theirs, no_user)

    viewer.set_password("another passphrase entirely")
    viewer.save()
    assert refusal(ours, token)[2] == refusal(theirs, token)[2] == "password_changed"

    fresh = AccessToken.for_user(viewer)
    viewer.is_active = False
    viewer.save()
    assert refusal(ours, fresh) == refusal(theirs, fresh)
    assert refusal(ours, fresh)[2] == "user_inactive"

    viewer.delete()
    assert refusal(ours, fresh) == refusal(theirs, fresh)
    assert refusal(ours, fresh)[2] == "user_not_found"


def test_a_deleted_user_s_access_token_is_a_401(viewer: Any, sales: Dataset) -> None:
    client = bearer(viewer)
    assert client.get(f"{API}/datasets/sales/").status_code == 200
    viewer.delete()

    response = client.get(f"{API}/datasets/sales/")

    assert response.status_code == 401
    assert error_of(response)["code"] == "user_not_found"


def test_the_api_reads_the_user_in_one_statement(viewer: Any, sales: Dataset) -> None:
    client = bearer(viewer)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"{API}/datasets/sales/").status_code == 200

    table = get_user_model()._meta.db_table
    assert len([q for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]) == 1
