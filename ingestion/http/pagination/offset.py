"""``offset``: ``page_param`` carries how many records came so far, ``size_param`` the limit."""

from __future__ import annotations

from .base import Page, Pager, PaginationStyle


class Offsets(Pager):
    def first(self) -> str:
        self.offset: int = 0
        return self.url_for(**{self.spec.page_param: self.offset})

    def next(self, page: Page) -> str | None:
        # Stop on an empty page only: an API that caps the limit below page_size
        # answers short pages that are not the last.
        if not page.records:
            return None
        self.offset += len(page.records)
        return self.url_for(**{self.spec.page_param: self.offset})


OFFSET = PaginationStyle(
    name="offset",
    label="Offset and limit",
    pager=Offsets,
    needs={
        "page_param": "Offset pagination needs the query parameter that carries the offset.",
        "size_param": "Offset pagination needs the query parameter that carries the limit.",
    },
)
