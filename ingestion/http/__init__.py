"""Fetching JSON from HTTP APIs: the SSRF guard, a failure-proof client, and paginated pulls.

A pure library (no models): services pass in what a source stores and get NDJSON back.
"""

from .client import Deadline, FetchPolicy, HttpClient, JsonResponse
from .guard import DestinationRefused, FetchError, address_permitted, url_validate
from .pull import AUTH_KINDS, PAGINATION_KINDS, PullResult, PullSpec, records_pull

__all__ = [
    "AUTH_KINDS",
    "PAGINATION_KINDS",
    "Deadline",
    "DestinationRefused",
    "FetchError",
    "FetchPolicy",
    "HttpClient",
    "JsonResponse",
    "PullResult",
    "PullSpec",
    "address_permitted",
    "records_pull",
    "url_validate",
]
