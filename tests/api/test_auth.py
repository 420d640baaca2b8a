"""JWT lifecycle: obtain, use, expire, tamper, rotate, revoke, log out."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from ingestion.models import Dataset

from .conftest import API, PASSWORD, bearer, error_of

pytestmark = pytest.mark.django_db


def obtain(username: str, password: str = PASSWORD) -> Any:
    return APIClient().post(f"{API}/auth/token/", {"username": username, "password": password}, format="json")


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_a_user_gets_a_token_pair_that_opens_the_api(viewer: Any) -> None:
    response = obtain("viewer")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert with_token(response.json()["access"]).get(f"{API}/datasets/").status_code == 200


def test_a_wrong_password_is_refused_with_401(viewer: Any) -> None:
    response = obtain("viewer", "guess")

    assert response.status_code == 401
    assert error_of(response)["code"] == "no_active_account"


def test_missing_credentials_are_a_400_naming_the_fields(db: None) -> None:
    response = APIClient().post(f"{API}/auth/token/", {}, format="json")

    assert response.status_code == 400
    assert set(error_of(response)["details"]) == {"username", "password"}


def test_an_inactive_user_cannot_obtain_a_token(viewer: Any) -> None:
    viewer.is_active = False
    viewer.save()

    assert obtain("viewer").status_code == 401


def test_an_inactive_user_s_tokens_stop_working(viewer: Any) -> None:
    refresh = RefreshToken.for_user(viewer)
    viewer.is_active = False
    viewer.save()

    response = with_token(str(refresh.access_token)).get(f"{API}/datasets/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "user_inactive"
    assert APIClient().post(f"{API}/auth/token/refresh/", {"refresh": str(refresh)}, format="json").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/",
        "/datasets/sales/",
        "/datasets/sales/records/",
        "/datasets/sales/records/S1/",
        "/datasets/sales/export/",
        "/datasets/sales/openapi.json",
        "/datasets/sales/grants/",
        "/runs/",
        "/runs/1/",
        "/runs/1/rejected-rows/",
    ],
)
def test_every_endpoint_needs_a_token(sales: Dataset, path: str) -> None:
    response = APIClient().get(API + path)

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/datasets/sales/uploads/", "/runs/1/retry/", "/runs/1/cancel/", "/datasets/"])
def test_every_write_endpoint_needs_a_token(sales: Dataset, path: str) -> None:
    assert APIClient().post(API + path, {}, format="json").status_code == 401


def test_an_expired_access_token_is_refused(viewer: Any) -> None:
    token = AccessToken.for_user(viewer)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))

    response = with_token(str(token)).get(f"{API}/datasets/")

    assert response.status_code == 401
    assert error_of(response)["code"] == "token_not_valid"


def test_a_token_with_a_tampered_signature_is_refused(viewer: Any) -> None:
    header, payload, signature = str(AccessToken.for_user(viewer)).split(".")
    forged = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")

    assert with_token(f"{header}.{payload}.{forged}").get(f"{API}/datasets/").status_code == 401


def test_a_token_with_a_tampered_payload_is_refused(viewer: Any, manager: Any) -> None:
    header, payload, signature = str(AccessToken.for_user(viewer)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["user_id"] = str(manager.pk)

    assert with_token(f"{header}.{b64(claims)}.{signature}").get(f"{API}/datasets/").status_code == 401


def test_an_alg_none_token_is_refused(viewer: Any) -> None:
    claims = dict(AccessToken.for_user(viewer).payload)

    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."

    assert with_token(token).get(f"{API}/datasets/").status_code == 401


def test_a_token_signed_with_the_secret_key_is_refused(viewer: Any, settings: Any) -> None:
    claims = dict(AccessToken.for_user(viewer).payload)

    token = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")

    assert with_token(token).get(f"{API}/datasets/").status_code == 401


def test_a_refresh_token_is_not_an_access_token(viewer: Any) -> None:
    refresh = RefreshToken.for_user(viewer)

    assert with_token(str(refresh)).get(f"{API}/datasets/").status_code == 401


def test_an_access_token_cannot_be_used_to_refresh(viewer: Any) -> None:
    access = RefreshToken.for_user(viewer).access_token

    response = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": str(access)}, format="json")

    assert response.status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_cannot_be_reused(viewer: Any) -> None:
    first = obtain("viewer").json()["refresh"]

    rotated = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": first}, format="json")
    reused = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": first}, format="json")

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first
    assert with_token(rotated.json()["access"]).get(f"{API}/datasets/").status_code == 200
    assert reused.status_code == 401
    assert error_of(reused)["code"] == "token_not_valid"
    second = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": rotated.json()["refresh"]}, format="json")
    assert second.status_code == 200


def test_logout_revokes_the_refresh_token(viewer: Any) -> None:
    refresh = obtain("viewer").json()["refresh"]

    logout = APIClient().post(f"{API}/auth/logout/", {"refresh": refresh}, format="json")
    after = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": refresh}, format="json")
    again = APIClient().post(f"{API}/auth/logout/", {"refresh": refresh}, format="json")

    assert logout.status_code == 204
    assert after.status_code == 401
    assert again.status_code == 401


def test_verify_tells_a_valid_token_from_a_revoked_one(viewer: Any) -> None:
    pair = obtain("viewer").json()
    client = APIClient()

    valid = client.post(f"{API}/auth/token/verify/", {"token": pair["access"]}, format="json")
    client.post(f"{API}/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    revoked = client.post(f"{API}/auth/token/verify/", {"token": pair["refresh"]}, format="json")
    garbage = client.post(f"{API}/auth/token/verify/", {"token": "not.a.token"}, format="json")

    assert valid.status_code == 200
    assert valid.json()["token_type"] == "access"
    assert revoked.status_code == 401
    assert garbage.status_code == 401


def test_a_password_change_revokes_earlier_tokens(viewer: Any) -> None:
    pair = obtain("viewer").json()
    viewer.set_password("a brand new passphrase")
    viewer.save()

    assert with_token(pair["access"]).get(f"{API}/datasets/").status_code == 401
    assert (
        APIClient().post(f"{API}/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401
    )


def test_a_deleted_user_s_refresh_token_is_a_401_not_a_crash(viewer: Any) -> None:
    refresh = str(RefreshToken.for_user(viewer))
    viewer.delete()

    response = APIClient().post(f"{API}/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 401


def test_the_token_endpoint_is_throttled_per_client(viewer: Any, settings: Any) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    statuses = [obtain("viewer", "wrong").status_code for _ in range(3)]
    throttled = obtain("viewer")

    assert statuses == [401, 401, 429]
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0


def test_api_requests_are_throttled_per_user(viewer: Any, settings: Any) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    client = bearer(viewer)

    statuses = [client.get(f"{API}/datasets/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_issued_tokens_name_this_service_as_issuer_and_audience(viewer: Any, settings: Any) -> None:
    pair = obtain("viewer").json()

    for raw in (pair["access"], pair["refresh"]):
        claims = jwt.decode(raw, options={"verify_signature": False})
        assert claims["iss"] == settings.SIMPLE_JWT["ISSUER"] == "dataflow"
        assert claims["aud"] == settings.SIMPLE_JWT["AUDIENCE"] == "dataflow-api"


def signed(claims: dict[str, Any], settings: Any) -> str:
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def claims_of(token: Any) -> dict[str, Any]:
    """The claims of an encoded token, as a client would send them back (``iss`` and ``aud`` included)."""
    return dict(jwt.decode(str(token), options={"verify_signature": False}))


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "another-service"},
        {"aud": None},
        {"iss": "someone-else"},
        {"iss": None},
    ],
    ids=["wrong audience", "no audience", "wrong issuer", "no issuer"],
)
def test_a_token_for_another_audience_or_from_another_issuer_is_refused(
    viewer: Any, settings: Any, change: dict[str, Any]
) -> None:
    refresh = RefreshToken.for_user(viewer)
    access = claims_of(refresh.access_token)
    refresh_claims = claims_of(refresh)
    for claims in (access, refresh_claims):
        for name, value in change.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value

    response = with_token(signed(access, settings)).get(f"{API}/datasets/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_not_valid"
    refreshed = APIClient().post(
        f"{API}/auth/token/refresh/", {"refresh": signed(refresh_claims, settings)}, format="json"
    )
    assert refreshed.status_code == 401
    verified = APIClient().post(f"{API}/auth/token/verify/", {"token": signed(access, settings)}, format="json")
    assert verified.status_code == 401


def test_a_correctly_addressed_token_signed_with_the_key_is_accepted(viewer: Any, settings: Any) -> None:
    """The control for the test above: only the changed claim makes the difference."""
    refresh = RefreshToken.for_user(viewer)

    assert with_token(signed(claims_of(refresh.access_token), settings)).get(f"{API}/datasets/").status_code == 200
    response = APIClient().post(
        f"{API}/auth/token/refresh/", {"refresh": signed(claims_of(refresh), settings)}, format="json"
    )
    assert response.status_code == 200
