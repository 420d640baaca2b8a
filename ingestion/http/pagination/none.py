"""``none``: one request; the response holds every record."""

from __future__ import annotations

from .base import Page, Pager, PaginationStyle


class OnePage(Pager):
    def next(self, page: Page) -> str | None:
        return None


NONE = PaginationStyle(name="none", label="None (one request)", pager=OnePage, sends_size=False)
