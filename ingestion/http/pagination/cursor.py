"""``cursor``: the value at ``next_path`` goes back as ``page_param``; none ends the pull."""

from __future__ import annotations

from ..guard import FetchError
from ..paths import MISSING, value_at
from .base import Page, Pager, PaginationStyle


class Cursors(Pager):
    def next(self, page: Page) -> str | None:
        cursor = value_at(page.response.data, self.spec.next_path)
        if cursor is MISSING or cursor is None or cursor == "":
            return None
        if isinstance(cursor, dict | list | bool):
            raise FetchError(f"the cursor at '{self.spec.next_path}' in the response from {page.label} is not a value")
        cursor = str(cursor)
        if cursor in self.seen:
            raise FetchError(f"{page.label} sent a cursor it had sent before; stopped to avoid a loop")
        self.seen.add(cursor)
        return self.url_for(**{self.spec.page_param: cursor})


CURSOR = PaginationStyle(
    name="cursor",
    label="Cursor from the response",
    pager=Cursors,
    needs={
        "page_param": "Cursor pagination needs the query parameter that carries the cursor.",
        "next_path": "Cursor pagination needs the path of the next cursor in the response.",
    },
)
