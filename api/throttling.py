"""Request throttles. Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``.

DRF reads rates once, into a class attribute; these read them on every
request so that a settings change (or a test's override) takes effect.

Each throttle keeps DRF's sliding log per client: the times of the requests
it let through during the last period. A request passes while fewer than N
are logged, and ``Retry-After`` is the time until the oldest leaves the
period. Where the log lives:

* **Redis** (the default cache is ``RedisCache``, i.e. ``REDIS_URL`` is set):
  a sorted set per client, trimmed, counted and added to by one Lua script.
  Redis runs a script atomically, so however many processes and machines ask
  at once, no more than N requests pass in any period. (DRF's own throttles
  read and write a list with ``get``/``set``: concurrent workers overwrite
  each other's entries and let far more through.)
* **Any other cache** (the local-memory cache of a single-process set-up):
  DRF's list of timestamps, read and written under a process lock.
* **Redis unreachable:** the same per-process log in local memory, so the
  API keeps answering with a rate per process instead of failing every
  request. Each failed call counts in ``dataflow_cache_errors_total
  {operation="throttle"}``, a warning is logged at most once a minute, and
  Redis is asked again after ``REDIS_RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from core.metrics import CACHE_ERRORS

logger = logging.getLogger(__name__)

# After a failed call, requests skip Redis for this long (a connect timeout
# per request would slow every request during an outage).
REDIS_RETRY_SECONDS = 5.0
# At most one warning per process this often while Redis stays unreachable.
LOG_EVERY_SECONDS = 60.0

# KEYS[1] the client's log; ARGV: now, period (s), limit, a unique member.
# Returns {1} when the request passes, {0, oldest} when it does not. The
# oldest score comes back as text: Redis would truncate a Lua number.
_SLIDING_LOG = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
if redis.call('ZCARD', key) < tonumber(ARGV[3]) then
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('EXPIRE', key, math.ceil(period))
    return {1}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""

# Per-process logs: for a non-Redis cache's read-modify-write, and for the
# fallback while Redis is down.
_local_lock = threading.Lock()
_fallback = LocMemCache("dataflow-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


_registered: list[Script] = []


def _script(client: Redis) -> Script:
    """The sliding-log script (EVALSHA, loaded into Redis on first use and after a restart)."""
    if not _registered:
        _registered.append(client.register_script(_SLIDING_LOG))
    return _registered[0]


class _Outage:
    """Whether Redis failed recently, and the rate-limited log lines about it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retry_at = 0.0
        self.down = False
        self.logged_at = -math.inf
        self.unlogged = 0

    def skip(self) -> bool:
        return time.monotonic() < self.retry_at

    def failed(self, error: Exception) -> None:
        CACHE_ERRORS.labels("throttle").inc()
        now = time.monotonic()
        with self._lock:
            self.retry_at = now + REDIS_RETRY_SECONDS
            self.down = True
            if now - self.logged_at < LOG_EVERY_SECONDS:
                self.unlogged += 1
                return
            self.logged_at, unlogged, self.unlogged = now, self.unlogged, 0
        since = f" ({unlogged} more failures since the last message)" if unlogged else ""
        logger.warning(
            "cache unreachable (%s: %s): API throttles count per process until it answers again%s",
            type(error).__name__,
            error,
            since,
        )

    def succeeded(self) -> None:
        if not self.down:
            return
        with self._lock:
            was_down, self.down = self.down, False
            self.logged_at = -math.inf
            self.unlogged = 0
        if was_down:
            logger.warning("cache reachable again: API throttles are shared again")


_outage = _Outage()


class _SharedSlidingLog(SimpleRateThrottle):
    """A SimpleRateThrottle whose log is updated atomically (see the module docstring)."""

    scope: str
    _retry_after: float | None = None
    # Set by SimpleRateThrottle.__init__ from the rate; the stubs do not declare them.
    num_requests: int
    duration: int

    def get_rate(self) -> str | None:
        # djangorestframework-stubs type the rates as numbers; DRF reads them as "N/period" strings.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[return-value]

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            if not _outage.skip():
                try:
                    allowed = self._allow_in_redis(cache)
                except (RedisError, OSError) as error:
                    _outage.failed(error)
                else:
                    _outage.succeeded()
                    return allowed
            cache = _fallback
        return self._allow_in_process(cache)

    def _allow_in_redis(self, cache: RedisCache) -> bool:
        key = cache.make_and_validate_key(self.key)  # KEY_PREFIX and VERSION, as cache.get would
        # Django's RedisCache has no public door to its redis-py client; this
        # is the one its own get/set/incr use, with CACHES' OPTIONS (timeouts).
        client = cache._cache.get_client(key, write=True)
        member = f"{self.now!r}:{secrets.token_hex(4)}"
        reply = _script(client)(
            keys=[key], args=[repr(self.now), self.duration, self.num_requests, member], client=client
        )
        if reply[0] == 1:
            return True
        oldest = float(reply[1])
        self._retry_after = max(self.duration - (self.now - oldest), 0.0)
        return False

    def _allow_in_process(self, cache: BaseCache) -> bool:
        # DRF's get, trim, check and set; the lock makes it atomic for the
        # threads of this process, which is all a per-process cache serves.
        self.cache = cache
        with _local_lock:
            self.history = cache.get(self.key, [])
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) >= self.num_requests:
                return self.throttle_failure()
            return self.throttle_success()

    def wait(self) -> float | None:
        if self._retry_after is not None:  # refused by Redis
            return self._retry_after
        if not hasattr(self, "history"):  # passed in Redis: nothing to wait for
            return None
        return super().wait()


class AnonThrottle(_SharedSlidingLog, AnonRateThrottle):
    """Requests without a valid token, per client address."""

    scope = "anon"


class UserThrottle(_SharedSlidingLog, UserRateThrottle):
    """Authenticated requests, per user."""

    scope = "user"


class AuthThrottle(_SharedSlidingLog):
    """Token, refresh, verify and logout, per client address whoever the user: slows password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UploadThrottle(_SharedSlidingLog):
    """File uploads (dry runs included), per user."""

    scope = "uploads"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
