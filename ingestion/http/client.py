"""JSON over HTTP that behaves under failure: time limits, retries, redirects and size caps.

Every request goes through :class:`~ingestion.http.guard.GuardedAdapter`, so no hop of a
redirect and no page of a pull can reach an address the SSRF guard refuses. Error messages
name the method and the URL without its query string (where API keys travel) and never
carry a secret the client was told about.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

from .. import jsontext
from .guard import (
    DestinationRefused,
    FetchError,
    GuardedAdapter,
    IPNetwork,
    headers_deadline,
    keeps_credentials,
    networks_parse,
    url_label,
    url_split,
    url_with_params,
    url_without_params,
)

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials and never follow a redirect to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
USER_AGENT = "DataFlow-Analytics"
# Small reads return as soon as any data arrives, so the clock is checked often even
# when a server drips one byte at a time.
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for fetching, from ``settings.SOURCES`` (see dataflow/settings/base.py)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 600.0
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 120.0
    max_response_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        conf = settings.SOURCES
        return cls(
            connect_timeout=conf["CONNECT_TIMEOUT"],
            read_timeout=conf["READ_TIMEOUT"],
            deadline=conf["DEADLINE"],
            max_retries=conf["MAX_RETRIES"],
            backoff_base=conf["BACKOFF_BASE"],
            backoff_max=conf["BACKOFF_MAX"],
            retry_after_max=conf["RETRY_AFTER_MAX"],
            max_response_bytes=conf["MAX_RESPONSE_BYTES"],
            max_redirects=conf["MAX_REDIRECTS"],
            allowed_networks=networks_parse(conf["ALLOWED_NETWORKS"]),
        )


class Deadline:
    """A wall-clock limit on a whole pull: every page, retry, wait and byte read."""

    def __init__(self, seconds: float, *, subject: str = "the pull") -> None:
        self.seconds, self.subject = seconds, subject
        self._end = time.monotonic() + seconds

    @property
    def end(self) -> float:
        """When the deadline passes, on the ``time.monotonic()`` clock."""
        return self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def message(self) -> str:
        return f"{self.subject} passed its deadline of {self.seconds:g} s"

    def check(self) -> None:
        if time.monotonic() >= self._end:
            raise FetchError(self.message())


@dataclass(frozen=True)
class JsonResponse:
    url: str  # the final URL, after redirects
    status: int
    headers: Mapping[str, str]
    data: Any
    size: int = 0  # body bytes received (after decompression)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP-date), if valid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _is_json_type(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    # text/json is not registered, but older APIs still send it.
    return mime in ("application/json", "text/json") or mime.endswith("+json")


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class HttpClient:
    """A guarded ``requests.Session`` for one pull (or one batch of webhook calls).

    ``deadline`` bounds every request made through the client; without one, each
    :meth:`request_json` call gets its own ``policy.deadline``. ``redact`` lists secrets
    replaced by ``***`` in every message and log line the client produces.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        deadline: Deadline | None = None,
        redact: Iterable[str] = (),
    ) -> None:
        self.policy = policy or FetchPolicy.from_settings()
        self.deadline = deadline
        forms = {form for secret in redact if secret for form in (secret, quote(secret, safe=""), quote_plus(secret))}
        self._secrets = sorted(forms, key=len, reverse=True)  # longest first: one may contain another
        self.session = requests.Session()
        # No proxies, netrc or CA bundle from the environment: a proxy would hide the real
        # destination from the guard, and netrc could add credentials we did not choose.
        self.session.trust_env = False
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = GuardedAdapter(self.policy.allowed_networks)
        self.session.adapters.clear()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, message: str, cls: type[FetchError] = FetchError) -> FetchError:
        return cls(self.scrub(message))

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        json_body: Any = None,
        strip_on_redirect: Collection[str] = (),
    ) -> JsonResponse:
        """Fetch ``url`` and decode its JSON body, following redirects and retrying.

        ``strip_on_redirect`` names further headers and query parameters that carry
        credentials: with ``Authorization``, ``Cookie`` and ``auth`` they are dropped when a
        redirect leads to another origin.
        """
        deadline = self.deadline if self.deadline is not None else Deadline(self.policy.deadline)
        method = method.upper()
        send_headers = {"Accept": "application/json", **(headers or {})}
        stripped = CREDENTIAL_HEADERS | {name.lower() for name in strip_on_redirect}
        try:
            url_split(url)
        except ValueError as e:
            raise self._error(str(e)) from None
        url = url_with_params(url, params or {})
        for _hop in range(self.policy.max_redirects + 1):
            response, body = self._exchange(method, url, send_headers, auth, json_body, deadline)
            label = f"{method} {url_label(url)}"
            status = response.status_code
            if 200 <= status < 300:
                return JsonResponse(url, status, response.headers, self._decode(label, status, body), len(body))
            if status not in REDIRECT_STATUSES:
                raise self._error(f"{label} {self._status_message(status)}")
            location = response.headers.get("Location")
            if not location:
                raise self._error(f"{label} answered {status} without a Location to follow")
            target = urljoin(url, location.strip())
            try:
                url_split(target)
            except ValueError as e:
                raise self._error(f"{label} redirected to a URL that cannot be fetched: {e}") from None
            if status in (301, 302, 303) and method != "HEAD":
                method, json_body = "GET", None
            if not keeps_credentials(url, target):
                send_headers = {k: v for k, v in send_headers.items() if k.lower() not in stripped}
                auth = None
                target = url_without_params(target, set(strip_on_redirect))
            url = target
        raise self._error(f"{label} redirected more than {self.policy.max_redirects} times")

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], auth: Any, json_body: Any, deadline: Deadline
    ) -> tuple[requests.Response, bytes]:
        """One request with retries; the body is read (within the attempt) only for a 2xx."""
        label = f"{method} {url_label(url)}"
        attempts = self.policy.max_retries + 1
        for attempt in range(1, attempts + 1):
            if deadline.remaining() <= 0:
                raise self._error(deadline.message())
            try:
                response = self._send(method, url, headers, auth, json_body, deadline)
                with response:
                    body = self._read(label, response, deadline) if 200 <= response.status_code < 300 else b""
                return response, body
            except _Retryable as failure:
                if attempt == attempts:
                    raise self._error(f"{label} failed after {attempts} attempts: {failure.reason}") from None
                wait = self._wait(attempt, failure.retry_after)
                if wait >= deadline.remaining():
                    due = f"{failure.reason}; retry {attempt} was due in {wait:.1f} s"
                    raise self._error(f"{deadline.message()} ({due})") from None
                logger.warning(
                    self.scrub(f"{label}: {failure.reason}; retry {attempt} of {attempts - 1} in {wait:.1f} s")
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], auth: Any, json_body: Any, deadline: Deadline
    ) -> requests.Response:
        timeouts = (self.policy.connect_timeout, self.policy.read_timeout)
        response = self._request(method, url, deadline, timeouts, headers=headers, auth=auth, json=json_body)
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise _Retryable(self._status_message(response.status_code), retry_after)
        return response

    def _request(
        self, method: str, url: str, deadline: Deadline, timeouts: tuple[float, float], **kwargs: Any
    ) -> requests.Response:
        """Send one request (the body is streamed later); failures worth a retry raise _Retryable."""
        host, label = urlsplit(url).hostname, f"{method} {url_label(url)}"
        remaining = deadline.remaining()
        timeout = (min(timeouts[0], remaining), min(timeouts[1], remaining))
        started = time.monotonic()
        try:
            with headers_deadline(deadline.end):
                response = self.session.request(
                    method, url, timeout=timeout, stream=True, allow_redirects=False, **kwargs
                )
        except DestinationRefused as e:
            raise self._error(str(e), DestinationRefused) from None
        except requests.exceptions.RequestException as e:
            if deadline.remaining() <= 0:  # whatever broke, running out of time is the reason
                raise self._error(deadline.message()) from None
            if isinstance(e, requests.exceptions.SSLError):
                raise self._error(
                    f"could not make a secure connection to {host} (TLS certificate or handshake)"
                ) from None
            if isinstance(e, requests.exceptions.ConnectionError):  # includes ConnectTimeout; no OS error text
                raise _Retryable(f"could not connect to {host}") from None
            if isinstance(e, requests.exceptions.Timeout):
                raise _Retryable(f"{host} did not answer within {timeout[1]:.1f} s") from None
            raise self._error(f"{label} failed ({type(e).__name__})") from None
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(self.scrub(f"{label} -> {response.status_code} in {elapsed_ms:.0f} ms"))
        return response

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.policy.retry_after_max)
        # Equal jitter: at least half the exponential step, so retries always back off,
        # and a random rest, so many pulls failing together do not retry in lockstep.
        step = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (attempt - 1))
        # Retry jitter, not cryptography: a pseudo-random generator is right here.
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311  # nosec B311

    def _read(self, label: str, response: requests.Response, deadline: Deadline) -> bytes:
        """The body, within the size limit and the deadline; checks the content type first."""
        content_type = response.headers.get("Content-Type")
        if content_type and not _is_json_type(content_type):
            mime = content_type.split(";", 1)[0].strip()[:100]
            raise self._error(f"expected JSON but {label} answered {mime or 'an empty Content-Type'}")
        limit = self.policy.max_response_bytes
        too_large = f"the response from {label} is larger than the limit of {limit} bytes"
        length = (response.headers.get("Content-Length") or "").strip()
        if length.isdigit() and int(length) > limit:
            raise self._error(too_large)
        chunks: list[bytes] = []
        size = 0
        host = urlsplit(response.url).hostname
        try:
            while chunk := response.raw.read1(_READ_SIZE, decode_content=True):
                size += len(chunk)
                if size > limit:  # counted after decompression: a small gzip can hide a huge body
                    raise self._error(too_large)
                chunks.append(chunk)
                if deadline.remaining() <= 0:
                    raise self._error(f"{deadline.message()} (while reading the response from {label})")
        except ReadTimeoutError:
            raise _Retryable(f"{host} stopped sending the response") from None
        except DecodeError:
            raise self._error(f"the response from {label} could not be decompressed") from None
        except (HTTPError, OSError):  # ProtocolError, IncompleteRead, a reset connection
            raise _Retryable(f"the connection to {host} broke while reading the response") from None
        return b"".join(chunks)

    def _decode(self, label: str, status: int, body: bytes) -> Any:
        if status == 204 or (not body and status != 200):
            return None
        try:
            return jsontext.loads(body)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN
            raise self._error(f"the response from {label} is not valid JSON: {e}") from None

    @staticmethod
    def _status_message(status: int) -> str:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""  # the server's own reason phrase is not repeated: it is its text, not ours
        message = f"answered {status} {phrase}".rstrip()
        if status in (401, 403):
            message += "; check the source's credentials"
        return message

    def post_json(self, url: str, payload: Any, *, timeout: float | None = None) -> int:
        """One guarded POST (for webhooks): no redirects, no retries; returns the status.

        ``timeout`` is the most the call may take, in seconds, until the response headers
        have arrived; it defaults to ``settings.NOTIFY_TIMEOUT``.
        """
        timeout = settings.NOTIFY_TIMEOUT if timeout is None else timeout
        try:
            url_split(url)
        except ValueError as e:
            raise self._error(str(e)) from None
        try:
            deadline = Deadline(timeout, subject=f"POST {url_label(url)}")
            response = self._request("POST", url, deadline, (timeout, timeout), json=payload)
        except _Retryable as failure:
            raise self._error(failure.reason) from None
        response.close()  # the body is not needed, and an endless one must not hold us
        return response.status_code
