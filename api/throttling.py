"""Request throttles. Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``.

DRF reads rates once, into a class attribute; these read them on every
request so that a settings change (or a test's override) takes effect.
Counters live in the default cache (per process unless CACHES points at a
shared cache such as Redis).
"""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _LiveRates:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_LiveRates, AnonRateThrottle):
    """Requests without a valid token, per client address."""

    scope = "anon"


class UserThrottle(_LiveRates, UserRateThrottle):
    """Authenticated requests, per user."""

    scope = "user"


class AuthThrottle(_LiveRates, SimpleRateThrottle):
    """Token, refresh, verify and logout, per client address whoever the user: slows password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UploadThrottle(_LiveRates, SimpleRateThrottle):
    """File uploads (dry runs included), per user."""

    scope = "uploads"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
