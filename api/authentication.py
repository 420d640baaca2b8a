"""How API requests authenticate: simplejwt's access tokens, with the user read by one short statement.

Every request with a token reads its user (so deactivating an account or
changing its password takes effect at once, ``CHECK_USER_IS_ACTIVE`` and
``CHECK_REVOKE_TOKEN``). simplejwt reads it with ``objects.get``, whose query
Django builds and compiles again on every request: that was two thirds of
the lookup's CPU. ``JWTAuthentication`` here runs the same ``SELECT`` from
text written once per process and makes the same instance (the model's own
converters), and refuses exactly what simplejwt refuses, with the same
messages and codes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Model
from django.utils.translation import gettext as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password


@lru_cache(maxsize=8)
def _user_select(model: type[Model], vendor: str, lookup: str) -> str:
    """``SELECT`` every concrete column of the user table ``WHERE lookup = %s`` (as ``objects.get`` reads)."""
    quote = connections[router.db_for_read(model)].ops.quote_name
    table = quote(model._meta.db_table)
    # Concrete fields always have a column (only virtual fields have none).
    columns = ", ".join(f"{table}.{quote(cast(str, field.column))}" for field in model._meta.concrete_fields)
    where = quote(cast(str, cast(Any, model._meta.get_field(lookup)).column))
    return f"SELECT {columns} FROM {table} WHERE {table}.{where} = %s"


def user_get(user_id: Any) -> Any:
    """The user whose ``USER_ID_FIELD`` is ``user_id``, or None: ``objects.get`` without building its query."""
    model = get_user_model()
    alias = router.db_for_read(model)
    connection = connections[alias]
    lookup = api_settings.USER_ID_FIELD
    field = model._meta.get_field(lookup)
    # As the lookup prepares it: a value that is no id raises as it would there.
    value = field.get_db_prep_value(user_id, connection, prepared=False)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(_user_select(model, connection.vendor, lookup), [value])
        rows = cursor.fetchmany(2)
    if len(rows) != 1:
        # None when there is no such user; more than one only if USER_ID_FIELD
        # is not unique, where objects.get raises and so does this.
        if rows:
            raise model.MultipleObjectsReturned(f"more than one user with {lookup}={user_id!r}")
        return None
    fields = model._meta.concrete_fields
    converted = []
    for concrete, raw in zip(fields, rows[0], strict=True):
        col = concrete.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(col) + concrete.get_db_converters(connection):
            raw = convert(raw, col, connection)
        converted.append(raw)
    return model.from_db(alias, [f.attname for f in fields], converted)


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's ``JWTAuthentication`` (the same checks), reading the user with ``user_get``."""

    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as e:
            raise InvalidToken(_("Token contained no recognizable user identification")) from e

        user = user_get(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")

        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")

        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")

        return user


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme drf-spectacular gives simplejwt's class, for this one (the same ``jwtAuth``)."""

    target_class = "api.authentication.JWTAuthentication"
