"""What a pagination style is: one ``PaginationStyle`` declaring everything about it.

Each style lives in its own module of this package and is registered once in
``ingestion.http.pagination.PAGINATION_STYLES``. The pull
(``ingestion.http.pull``), the source's checks (``ingestion.services.sources``), the
model's choices and through them the API, the console and the OpenAPI
document all ask the registry (docs/development.md, "Adding a pagination
style").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ..client import JsonResponse
from ..guard import FetchError

if TYPE_CHECKING:
    from ..pull import PullSpec


@dataclass(frozen=True)
class Page:
    """One page as fetched: its response, the records found in it, and how errors name the request."""

    response: JsonResponse
    records: list[Any]
    label: str  # "GET https://api.example.com/items"


class Pager:
    """One pull's walk through the pages of one style.

    ``url_for(**params)`` is the source's URL with its own parameters (the
    page size and the watermark included) and ``params`` on top. ``seen``
    holds the URLs and cursors already followed, so a page that points back
    is a loop. A pager starts at ``first()`` and asks ``next(page)`` after
    each page: ``None`` ends the pull.
    """

    def __init__(self, spec: PullSpec, url_for: Callable[..., str], seen: set[str]) -> None:
        self.spec, self.url_for, self.seen = spec, url_for, seen

    def first(self) -> str:
        return self.url_for()

    def next(self, page: Page) -> str | None:
        raise NotImplementedError

    def follow(self, page: Page, target: str) -> str:
        """The absolute URL of a next link, refused if the pull has been there already."""
        absolute = urljoin(page.response.url, target.strip())  # relative links name a page of the same API
        if absolute in self.seen:
            raise FetchError(f"{page.label} pointed to a page it had already given; stopped to avoid a loop")
        self.seen.add(absolute)
        return absolute


@dataclass(frozen=True)
class PaginationStyle:
    """Everything about one pagination style, declared once.

    ``name`` is the value a source stores (``Source.pagination``) and
    ``label`` the choice's label, both frozen into migrations. ``needs``
    maps each spec field the style cannot work without to the message shown
    when it is empty; a source's checks and ``PullSpec`` both refuse a spec
    without them. ``sends_size`` says whether ``size_param`` goes with the
    requests made to the source's URL. ``pager`` walks the pages of one pull.
    """

    name: str
    label: str
    pager: type[Pager]
    needs: Mapping[str, str] = field(default_factory=dict)
    sends_size: bool = True

    def missing(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The fields this style needs that ``values`` leaves empty, each with its message."""
        return {name: message for name, message in self.needs.items() if not values.get(name)}
