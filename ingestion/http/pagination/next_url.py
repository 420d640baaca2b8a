"""``next_url``: the response names the next page's URL at ``next_path``."""

from __future__ import annotations

from ..guard import FetchError
from ..paths import MISSING, value_at
from .base import Page, Pager, PaginationStyle


class NextUrls(Pager):
    def next(self, page: Page) -> str | None:
        target = value_at(page.response.data, self.spec.next_path)
        if target is MISSING or target is None or target == "":
            return None
        if not isinstance(target, str):
            raise FetchError(f"the next page at '{self.spec.next_path}' in the response from {page.label} is not a URL")
        return self.follow(page, target)


NEXT_URL = PaginationStyle(
    name="next_url",
    label="Next-page URL in the response",
    pager=NextUrls,
    needs={"next_path": "Next-URL pagination needs the path of the next page's URL in the response."},
)
