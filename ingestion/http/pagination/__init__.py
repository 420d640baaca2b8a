"""The pagination registry: every way a source's API may split its records into pages, declared once.

``PAGINATION_STYLES`` maps a style's name to its ``PaginationStyle``, in the
order the model's choices, the docs and the console list them. Code that
does something per style asks ``pagination_style(name)``; a new style is one
module here plus its tests (docs/development.md, "Adding a pagination style").
"""

from __future__ import annotations

from .base import Page, Pager, PaginationStyle
from .cursor import CURSOR
from .link_header import LINK_HEADER
from .next_url import NEXT_URL
from .none import NONE
from .offset import OFFSET
from .page import PAGE

PAGINATION_STYLES: dict[str, PaginationStyle] = {s.name: s for s in (NONE, PAGE, OFFSET, CURSOR, NEXT_URL, LINK_HEADER)}

# What a source pulls with when it names no style.
DEFAULT_STYLE = NONE.name


def pagination_style(name: str) -> PaginationStyle:
    """The registered style called ``name`` (``KeyError`` for a name the source's checks would have refused)."""
    return PAGINATION_STYLES[name]


def pagination_choices() -> list[tuple[str, tuple[str, str]]]:
    """The styles as members of a ``TextChoices`` (``Source.Pagination``): ``(MEMBER, (value, label))``."""
    return [(s.name.upper(), (s.name, s.label)) for s in PAGINATION_STYLES.values()]


__all__ = [
    "DEFAULT_STYLE",
    "PAGINATION_STYLES",
    "Page",
    "Pager",
    "PaginationStyle",
    "pagination_choices",
    "pagination_style",
]
