"""What every API view shares: strict query parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

    _ViewBase = APIView  # the mixin is only ever mixed into DRF views
else:
    _ViewBase = object


class StrictQueryMixin(_ViewBase):
    """Refuse unknown query parameters, and NUL characters in any parameter or path value.

    ``query_params_allowed`` names the parameters of each action (by
    ``self.action`` for viewsets, by method for plain views); a view that
    validates its own parameters (records) sets ``query_params_free``.
    """

    query_params_allowed: dict[str, tuple[str, ...]] = {}
    query_params_free: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = (request.method or "").lower()
        if method not in self.http_method_names or getattr(self, method, None) is None:
            return  # a 405 is on its way; the parameters do not matter
        for name, values in request.query_params.lists():
            if "\x00" in name or any("\x00" in v for v in values):
                raise ValidationError({name.replace("\x00", "\\x00"): ["must not contain NUL characters"]})
        for name, value in kwargs.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValidationError({name: ["must not contain NUL characters"]})
        action = getattr(self, "action", None) or method
        if action in self.query_params_free:
            return
        allowed = self.query_params_allowed.get(action, ())
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            hint = f"accepted: {', '.join(allowed)}" if allowed else "this endpoint takes no query parameters"
            raise ValidationError({name: [f"unknown parameter ({hint})"] for name in unknown})
