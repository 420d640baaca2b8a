"""``email``: an address Django's ``EmailValidator`` accepts, stored as written."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from .base import TEXT_OPERATORS, Converter, FieldError, FieldTypeSpec

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec

# Domains whose verdict one converter remembers.
DOMAIN_MEMO_SIZE = 4096
# A strict subset of what Django's EmailValidator accepts, checked first
# because the full validator costs ~10 µs a value.
_SIMPLE_EMAIL_RE = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII,
)


class MemoEmailValidator(EmailValidator):
    """Django's email validator, remembering its verdict on each domain.

    A file's addresses share few domains, and the domain pattern is the
    costly part for an internationalised one (``bücher.example``). The
    verdict is a pure function of the domain, so ``__call__`` is Django's
    own, unchanged; at most ``DOMAIN_MEMO_SIZE`` domains are remembered.
    """

    def __init__(self) -> None:
        super().__init__()
        # The class holds its patterns as lazy objects: a proxy call per use.
        self.user_regex = re.compile(self.user_regex.pattern, self.user_regex.flags)
        # A memoized copy of the method for this instance (see the class docstring).
        self.validate_domain_part = functools.lru_cache(maxsize=DOMAIN_MEMO_SIZE)(super().validate_domain_part)  # type: ignore[method-assign]


def email_converter(spec: FieldSpec) -> Converter:
    validator = MemoEmailValidator()

    def parse(value: str) -> str:
        if len(value) <= 254 and _SIMPLE_EMAIL_RE.fullmatch(value) and value.index("@") <= 64:
            return value
        try:
            validator(value)
        except ValidationError:
            raise FieldError(f"{value!r} is not a valid email address") from None
        return value

    return parse


EMAIL = FieldTypeSpec(
    name="email",
    label="Email",
    converter=email_converter,
    is_text=True,
    sql_type="text",
    sqlite_type="TEXT",
    openapi={"type": "string", "format": "email"},
    openapi_filter={"type": "string"},  # equality compares the text as given
    operators=TEXT_OPERATORS,
    filter_kind="text",
    infer_rank=6,
    infer_noun="email addresses",
)
