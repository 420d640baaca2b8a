"""Tokens: obtain, refresh (rotating), verify, log out.

Refreshing claims the old refresh token in the blacklist inside a
transaction, so a refresh token works once: a second use, even a
concurrent one, is refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from ..authentication import JWTAuthentication


def username_max_length() -> int:
    """The longest username an account can have (150 for Django's user model)."""
    User = get_user_model()
    field = User._meta.get_field(User.USERNAME_FIELD)
    return int(getattr(field, "max_length", None) or 150)


def _user_of(token: Any) -> Any:
    """The token's user, refused when deleted, inactive or their password changed since."""
    return JWTAuthentication().get_user(token)


def _read_token(cls: type, raw: str) -> Any:
    try:
        return cls(raw)
    except TokenError as exc:
        raise InvalidToken(str(exc)) from None


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(write_only=True, max_length=username_max_length())
    password = serializers.CharField(write_only=True, trim_whitespace=False)


class ObtainSerializer(TokenObtainPairSerializer):
    """simplejwt's obtain-pair serializer, refusing a username no account can have (400).

    Such a name never reaches ``authenticate()``, whose failure handlers
    (django-axes' attempt log, the audit trail) store it in bounded columns.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=username_max_length())


class RefreshSerializer(serializers.Serializer):
    """Trade a refresh token for a new access token and a new refresh token."""

    refresh = serializers.CharField()
    access = serializers.CharField(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        with transaction.atomic():
            old = _read_token(RefreshToken, attrs["refresh"])  # signature, expiry, type, blacklist
            user = _user_of(old)
            _, claimed = old.blacklist()
            if not claimed:
                raise InvalidToken("Token is blacklisted")
            new = RefreshToken.for_user(user)
        return {"refresh": str(new), "access": str(new.access_token)}


class VerifySerializer(serializers.Serializer):
    """Check a token (access or refresh) without using it."""

    token = serializers.CharField(write_only=True)
    token_type = serializers.CharField(read_only=True)
    expires_at = serializers.IntegerField(read_only=True, help_text="Expiry as a Unix timestamp.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        token = _read_token(UntypedToken, attrs["token"])
        jti = token.get("jti")
        if BlacklistedToken.objects.filter(token__jti=jti).exists():
            raise InvalidToken("Token is blacklisted")
        _user_of(token)
        return {"token_type": str(token.get("token_type", "")), "expires_at": int(token["exp"])}


class LogoutSerializer(serializers.Serializer):
    """Blacklist a refresh token; access tokens already issued expire on their own."""

    refresh = serializers.CharField(write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        with transaction.atomic():
            token = _read_token(RefreshToken, attrs["refresh"])
            token.blacklist()
        return {}
