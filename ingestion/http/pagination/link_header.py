"""``link_header``: the ``Link: <…>; rel="next"`` header (RFC 8288) names the next page."""

from __future__ import annotations

from requests.utils import parse_header_links

from .base import Page, Pager, PaginationStyle


class LinkHeaders(Pager):
    def next(self, page: Page) -> str | None:
        links = parse_header_links(page.response.headers.get("Link", ""))
        target = next((link["url"] for link in links if "next" in link.get("rel", "").lower().split()), None)
        if not target:
            return None
        return self.follow(page, target)


LINK_HEADER = PaginationStyle(
    name="link_header",
    label="Link header (RFC 8288)",
    pager=LinkHeaders,
)
