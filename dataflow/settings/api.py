"""REST API settings: Django REST framework, JWT, OpenAPI. Imported by base.py.

Star-imported at the end of ``base.py``, so only the names in ``__all__``
become settings; everything else here is private. Values come from the
environment like every other setting (``.env.example``, section "REST API").
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_required, env_str

__all__ = ["REST_FRAMEWORK", "SIMPLE_JWT", "SPECTACULAR_SETTINGS"]

_DEBUG = env_bool("DEBUG", False)

# --- JWT ---------------------------------------------------------------------
# Tokens are signed with their own key, so rotating it logs every API client
# out without touching sessions, and leaking it does not leak SECRET_KEY.
# Required, like SECRET_KEY: start-up stops with a clear message without it.
_jwt_key = env_required("JWT_SIGNING_KEY")
if len(_jwt_key) < 32:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must be at least 32 characters long")

# Every token names who issued it and whom it is for, and both are checked:
# a token another service signed (even with a shared key) is refused.
_jwt_issuer = env_str("JWT_ISSUER", "dataflow").strip()
_jwt_audience = env_str("JWT_AUDIENCE", "dataflow-api").strip()
if not _jwt_issuer or not _jwt_audience:
    raise ImproperlyConfigured("JWT_ISSUER and JWT_AUDIENCE must not be blank")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_LIFETIME_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_REFRESH_LIFETIME_MINUTES", 24 * 60, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": _jwt_key,
    "VERIFYING_KEY": "",
    "ISSUER": _jwt_issuer,
    "AUDIENCE": _jwt_audience,
    "LEEWAY": 0,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "CHECK_USER_IS_ACTIVE": True,
    # A password change revokes the tokens issued before it.
    # bandit reads the next two as passwords: a flag and a class path.
    "CHECK_REVOKE_TOKEN": True,  # nosec B105
    "TOKEN_REFRESH_SERIALIZER": "api.serializers.auth.RefreshSerializer",  # nosec B105
}

# --- Throttling --------------------------------------------------------------
_RATE_RE = re.compile(r"^[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)$")


def _rate(name: str, default: str) -> str:
    value = env_str(name, default).strip()
    if not _RATE_RE.match(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate (use e.g. 60/minute, 1000/hour, 5/second)")
    return value


_renderers = ["rest_framework.renderers.JSONRenderer"]
# simplejwt's check with a cheaper user read (api/authentication.py).
_authentication = ["api.authentication.JWTAuthentication"]
if _DEBUG:
    # The browsable API and session logins are for local development only.
    _renderers.append("rest_framework.renderers.BrowsableAPIRenderer")
    _authentication.append("rest_framework.authentication.SessionAuthentication")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": _authentication,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": _renderers,
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.AnonThrottle", "api.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _rate("API_THROTTLE_ANON", "60/minute"),
        "user": _rate("API_THROTTLE_USER", "1200/minute"),
        # Token, refresh, verify and logout, per client address: slows password guessing.
        "auth": _rate("API_THROTTLE_AUTH", "20/minute"),
        "uploads": _rate("API_THROTTLE_UPLOADS", "60/hour"),
    },
    # Clients behind this many trusted reverse proxies are identified by
    # X-Forwarded-For; 0 trusts only the socket address (cannot be spoofed).
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0, minimum=0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    # ``?format=`` is the export endpoint's own parameter, not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "STRICT_JSON": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "DataFlow Analytics API",
    "DESCRIPTION": (
        "Upload CSV files, follow their runs and read the validated records. "
        "Authenticate with a JWT from /api/v1/auth/token/ and send it as `Authorization: Bearer <access>`. "
        'Every error has the shape {"error": {"code", "message", "details"}}. '
        "Each dataset also publishes an OpenAPI document of its records with typed filters at "
        "/api/v1/datasets/{slug}/openapi.json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "processing.models.RunStatus",
        "DatasetRoleEnum": "ingestion.models.DatasetRole",
        "FieldTypeEnum": "ingestion.models.FieldType",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.postprocess_error_responses",
    ],
    # Swagger UI and ReDoc come from this site's static files
    # (drf-spectacular-sidecar), not a CDN: the docs work without internet
    # access and the pages' Content-Security-Policy allows no other host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge asking swagger.io's online validator about our schema.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
