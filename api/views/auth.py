"""Token endpoints (djangorestframework-simplejwt), throttled per client address."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenViewBase

from ingestion.audit import audit_record
from ingestion.models import AuditAction

from ..serializers.auth import (
    CredentialsSerializer,
    LogoutSerializer,
    ObtainSerializer,
    RefreshSerializer,
    TokenPairSerializer,
    VerifySerializer,
)
from ..throttling import AuthThrottle
from .base import StrictQueryMixin


class _TokenView(StrictQueryMixin, TokenViewBase):
    throttle_classes = [AuthThrottle]


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        summary="Obtain an access and a refresh token",
        operation_id="auth_token_obtain",
        request=CredentialsSerializer,
        responses={200: TokenPairSerializer},
        auth=[],
    )
)
class TokenObtainView(_TokenView):
    """Username and password in, an access token (short-lived) and a refresh token out. Inactive users are refused."""

    serializer_class = ObtainSerializer

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            # A 200 means the serializer took the body: a JSON object or a form.
            data = request.data if isinstance(request.data, dict) else {}
            username = str(data.get("username", ""))
            user = get_user_model().objects.filter(username=username).first()
            audit_record(action=AuditAction.LOGIN, actor=user, actor_name=username, details={"via": "api token"})
        return response


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        summary="Rotate a refresh token",
        operation_id="auth_token_refresh",
        request=RefreshSerializer,
        responses={200: TokenPairSerializer},
        auth=[],
    )
)
class TokenRefreshView(_TokenView):
    """A refresh token in, a new access token and a new refresh token out; the old refresh token stops working."""

    serializer_class = RefreshSerializer


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        summary="Check a token",
        operation_id="auth_token_verify",
        request=VerifySerializer,
        responses={200: VerifySerializer},
        auth=[],
    )
)
class TokenVerifyView(_TokenView):
    """200 when the token is valid, unexpired, not revoked and its user may still log in; 401 otherwise."""

    serializer_class = VerifySerializer


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        summary="Log out: revoke a refresh token",
        operation_id="auth_logout",
        request=LogoutSerializer,
        responses={204: None},
        auth=[],
    )
)
class LogoutView(_TokenView):
    """Blacklists the refresh token. Access tokens already issued stay valid until they expire."""

    serializer_class = LogoutSerializer

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)
