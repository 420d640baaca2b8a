"""Which ``charset`` a request body may declare: one rule for the middleware and the API's parsers.

Only a text encoding (``core.encodings.TEXT_ENCODINGS``); a form body only
UTF-8; the JSON parsers narrow it further to ``UNICODE_CHARSETS``.
"""

from __future__ import annotations

from .encodings import UNICODE_ENCODINGS, encoding_canonical

# The Unicode encodings the JSON parsers accept (api/parsers.py).
UNICODE_CHARSETS = UNICODE_ENCODINGS

# Django reads form bodies only as UTF-8 (Django 5.2 raises BadRequest for any other declared charset).
FORM_MEDIA_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def charset_name(charset: str) -> str | None:
    """The canonical name of ``charset`` when it is a text encoding a body can be written in, else None.

    The list is ``core.encodings.TEXT_ENCODINGS``: decoding bytes with
    one of them never yields more characters than there were bytes, so it
    cannot grow a body past its size limit.
    """
    return encoding_canonical(charset)


def charset_refusal(charset: str | None, media_type: str = "") -> str | None:
    """Why a request body's ``charset`` parameter is refused, or None when it is acceptable."""
    if charset is None:
        return None
    name = charset_name(charset)
    if name is None:
        return f"The charset {charset[:40]!r} is not a supported text encoding; send the body as UTF-8."
    # Django checks the name as written ("utf8" is refused too), so the rule here is the same.
    if media_type in FORM_MEDIA_TYPES and charset.strip().lower() != "utf-8":
        return f"A form body ({media_type}) must be UTF-8: declare charset=utf-8 or none; {charset[:40]!r} is refused."
    return None
