"""``page``: ``page_param`` counts pages from ``first_page``; an empty page is the last."""

from __future__ import annotations

from .base import Page, Pager, PaginationStyle


class PageNumbers(Pager):
    def first(self) -> str:
        self.number: int = self.spec.first_page
        return self.url_for(**{self.spec.page_param: self.number})

    def next(self, page: Page) -> str | None:
        if not page.records:
            return None
        self.number += 1
        return self.url_for(**{self.spec.page_param: self.number})


PAGE = PaginationStyle(
    name="page",
    label="Page number (stop on an empty page)",
    pager=PageNumbers,
    needs={"page_param": "Page pagination needs the query parameter that carries the page number."},
)
