"""OpenAPI helpers for drf-spectacular: the error responses every operation can give."""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error response has this shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "A stable, machine-readable code, e.g. `not_found`."},
                "message": {"type": "string", "description": "A sentence for people."},
                "details": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "For validation errors, `{parameter or field: [messages]}`.",
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

ERROR_DESCRIPTIONS = {
    "400": "Bad input: malformed JSON, a wrong type, an unknown filter or parameter, a page size out of range.",
    "401": "No token, or an expired, tampered or revoked one; an inactive user.",
    "403": "The token is valid but your role on this dataset does not allow this.",
    "404": "No such object, or it belongs to a dataset you have no grant on.",
    "405": "The method is not allowed on this path.",
    "406": "None of the media types in `Accept` can be produced.",
    "409": "The object's state does not allow this now.",
    "413": "The body is larger than the server accepts.",
    "415": "The body's media type is not accepted here.",
    "422": "The body has the right media type but its content cannot be used.",
    "429": "Too many requests; wait for `Retry-After` seconds.",
    "503": "The data storage is read-only or not writable; nothing was kept. Try again later.",
    "507": "The data storage is full; nothing was kept. Try again later.",
}
_ALWAYS = ("400", "404", "405", "406", "429")
_AUTHENTICATED = ("401", "403")
_WITH_BODY = ("413", "415")


def _error_response(code: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }
    if code == "429":
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    if code == "401":
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def postprocess_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document the error responses of every operation, in the one error shape.

    Operations may already declare some codes (409, 422…) with
    ``extend_schema``; those are kept and given the error body.
    """
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "patch", "post", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            codes = set(_ALWAYS) | set(_AUTHENTICATED)
            if "requestBody" in operation:
                codes |= set(_WITH_BODY)
            codes |= {c for c in responses if c in ERROR_DESCRIPTIONS}
            for code in sorted(codes):
                existing = responses.get(code)
                if existing is None or "content" not in existing:
                    responses[code] = _error_response(code)
    return result
