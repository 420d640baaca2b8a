"""The SSRF guard: which addresses a source or webhook may reach, checked at connect time.

A URL that looks harmless can still point inside the network: a hostname may resolve to
``127.0.0.1`` or to the cloud metadata service, and a DNS answer may change between a check
and the connection (DNS rebinding). So the real check happens where the socket is made:
:class:`GuardedAdapter` resolves the host once, checks every address, and connects to the
checked address itself. :func:`url_validate` refuses what it can tell at configuration time
(an address in any spelling, ``localhost``, a name that resolves inside the network now) so
forms and the API say so at once; the connect-time check stays the authority.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, cast
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager

logger = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
# socket.getaddrinfo's signature: what resolves a host name at configuration time.
Resolver = Callable[..., list[Any]]

ALLOWED_SCHEMES = ("http", "https")

# Ranges refused whatever the Python version's ``is_global`` says about them: its tables
# changed between releases (multicast and site-local count as "global" in some of them).
_ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ip_network("64:ff9b::/96")

# When (time.monotonic()) a guarded connection must stop waiting for a response's headers.
_headers_deadline: ContextVar[float | None] = ContextVar("headers_deadline", default=None)


class FetchError(Exception):
    """A request or pull that failed; ``str()`` is a reason safe to show users.

    Messages never hold secrets, query strings or socket error texts (which would tell a
    user probing the network whether a port is open).
    """


class DestinationRefused(FetchError):
    """The destination is private, loopback, link-local or reserved and not allowed."""


class URLRefused(ValueError):
    """A URL given in a configuration points at an address that is not allowed; ``str()`` says where."""


def refusal_message(host: str) -> str:
    return (
        f"{host} is not an allowed destination (private, loopback, link-local or reserved address); "
        "allow its network with SOURCE_ALLOWED_NETWORKS"
    )


def networks_parse(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (as in SOURCE_ALLOWED_NETWORKS); host bits are ignored."""
    networks = []
    for value in values:
        try:
            networks.append(value if isinstance(value, IPv4Network | IPv6Network) else ip_network(value, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"SOURCE_ALLOWED_NETWORKS holds {value!r}, which is not a network") from None
    return tuple(networks)


def _embedded_ipv4(ip: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4 or NAT64), if any."""
    if isinstance(ip, IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(ip: IPAddress) -> bool:
    if any(ip in network for network in _ALWAYS_REFUSED if network.version == ip.version):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, IPv6Address) and ip.is_site_local)
    )


def address_permitted(ip: str | IPAddress, allowed_networks: Iterable[str | IPNetwork] = ()) -> bool:
    """Whether a connection to ``ip`` may be made.

    Only global unicast addresses pass, unless the address lies in one of
    ``allowed_networks``. An IPv6 address that embeds an IPv4 one (``::ffff:10.0.0.1``,
    6to4, NAT64) is judged as that IPv4 address, so the embedding cannot smuggle it past.
    """
    address = ip_address(ip) if isinstance(ip, str) else ip
    embedded = _embedded_ipv4(address)
    candidates = [address] if embedded is None else [embedded, address]
    for network in networks_parse(allowed_networks):
        if any(c.version == network.version and c in network for c in candidates):
            return True
    # The 6to4 and NAT64 prefixes are themselves fine; the address they carry decides.
    return _is_public(address if embedded is None else embedded)


_THIS_NETWORK = ip_network("0.0.0.0/8")
_SHARED_ADDRESS_SPACE = ip_network("100.64.0.0/10")


def address_kind(ip: IPAddress) -> str:
    """What kind of address ``ip`` is, as said in messages ("a loopback address")."""
    ip = _embedded_ipv4(ip) or ip
    if ip.is_unspecified or (isinstance(ip, IPv4Address) and ip in _THIS_NETWORK):
        return "an unspecified address (the local host)"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, IPv4Address) and ip in _SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or (isinstance(ip, IPv6Address) and ip.is_site_local):
        return "a private address"
    if _is_public(ip):
        return "a public address"
    return "a reserved address"


_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: frozenset("0123456789abcdefABCDEF")}


def _ipv4_number(part: str) -> int | None:
    """One part of a legacy IPv4 spelling: decimal, ``0x`` hex or ``0`` octal; None if not a number."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
        if digits == "":
            return 0
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits or not all(c in _DIGITS[base] for c in digits):
        return None
    return int(digits, base)


def ipv4_parse(host: str) -> IPv4Address | None:
    """``host`` as an IPv4 address if it is one in any spelling browsers and ``inet_aton`` accept.

    ``2130706433``, ``0x7f.1``, ``127.1`` and ``0177.0.0.1`` all mean ``127.0.0.1``: one to four
    parts, each decimal, hexadecimal (``0x``) or octal (leading ``0``), the last part filling the
    remaining bytes (the WHATWG URL Standard's IPv4 parser). None when ``host`` is a name;
    ValueError when it looks like a number but is not a valid address (``256.0.0.1``).
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    # As the URL Standard: a host whose last label is a number must be an IPv4 address.
    if not (last.isdigit() and last.isascii()) and _ipv4_number(last) is None:
        return None
    parsed = [_ipv4_number(p) for p in parts] if len(parts) <= 4 else [None]
    numbers = [n for n in parsed if n is not None]
    if len(numbers) != len(parsed) or max(numbers[:-1], default=0) > 255 or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host} is neither a host name nor a valid IPv4 address.")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def host_normalise(host: str) -> str | IPAddress:
    """The address a URL's host spells, or the host name as a resolver would look it up.

    Percent-escapes are decoded, full-width forms folded (NFKC, as IDNA does), case and one
    trailing dot dropped; IPv6 literals, IPv4-mapped forms and legacy IPv4 spellings become
    addresses. Raises ValueError for a host that looks like an address but is not a valid one.
    """
    name = unicodedata.normalize("NFKC", unquote(host)).lower()
    name = name.replace("\u3002", ".").replace("\uff61", ".")
    if ":" in name:
        try:
            return ip_address(name)
        except ValueError:
            raise ValueError(f"{host} is not a valid IPv6 address.") from None
    address = ipv4_parse(name)
    if address is not None:
        return address
    return name[:-1] if name.endswith(".") else name


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


class ResolutionTimeout(Exception):
    """A configuration-time lookup did not finish within ``SOURCE_DNS_TIMEOUT``."""


# Lookups given up on keep running in their thread until the OS resolver returns; past this
# many at once, names are not looked up at all (and are checked when connecting, as always).
_MAX_PENDING_LOOKUPS = 16
_pending_lookups = threading.BoundedSemaphore(_MAX_PENDING_LOOKUPS)


def _host_addresses(
    name: str, port: int | None, *, timeout: float | None = None, resolver: Resolver | None = None
) -> list[IPAddress] | None:
    """The addresses a host name resolves to now; None when it does not resolve.

    The lookup runs in a worker thread and is given up after ``timeout`` seconds
    (:class:`ResolutionTimeout`): ``getaddrinfo`` itself cannot be interrupted, and a slow
    resolver must not hold a request or a command for its own, much longer, timeout.
    ``resolver`` stands for ``socket.getaddrinfo``.
    """
    if _is_localhost(name):
        return [IPv4Address("127.0.0.1")]  # loopback whatever a resolver says (RFC 6761)
    resolve = resolver or socket.getaddrinfo
    answer: list[list[Any]] = []

    def lookup() -> None:
        try:
            answer.append(resolve(name, port or 80, socket.AF_UNSPEC, socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            pass
        finally:
            _pending_lookups.release()

    if not _pending_lookups.acquire(blocking=False):
        raise ResolutionTimeout(f"{_MAX_PENDING_LOOKUPS} earlier lookups have not finished")
    # A daemon thread: one stuck in the resolver never holds up the process's exit.
    thread = threading.Thread(target=lookup, name="dns-lookup", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() and not answer:
        raise ResolutionTimeout(name)
    if not answer:
        return None
    addresses: list[IPAddress] = []
    for *_, sockaddr in answer[0]:
        with contextlib.suppress(ValueError):
            addresses.append(ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return addresses


def url_split(url: str) -> SplitResult:
    """Split ``url`` and check its form: http(s), a host, no credentials. Raises ValueError."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError:
        raise ValueError("Enter a valid URL.") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "a URL without a scheme"
        raise ValueError(f"Only http:// and https:// URLs can be fetched, not {shown}.")
    if not parts.hostname:
        raise ValueError("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("Put credentials in the source's authentication settings, not in the URL.")
    return parts


def url_validate(
    url: str,
    allowed_networks: Iterable[str | IPNetwork] | None = None,
    *,
    purpose: str = "sources",
    resolve: bool = True,
    resolver: Resolver | None = None,
) -> None:
    """Refuse at configuration time a URL that can be seen to point inside the network.

    The host is normalised first (:func:`host_normalise`): ``http://0x7f.1/``,
    ``http://2130706433/``, ``http://[::ffff:127.0.0.1]/`` and ``http://LOCALHOST./`` all point
    at loopback. A host name is resolved now and refused when any address it resolves to is
    not allowed; a name that does not resolve, or not within ``SOURCE_DNS_TIMEOUT`` seconds,
    is accepted (with a logged warning), since DNS can change. What a URL reaches is decided
    again, with fresh DNS, at every connection. ``resolve=False`` checks only what the URL
    spells (addresses and ``localhost``) and makes no DNS query, for start-up checks.
    ``purpose`` ("sources" or "webhooks") names what is configured in the message.
    ``allowed_networks`` defaults to ``settings.SOURCES["ALLOWED_NETWORKS"]``.
    Raises ValueError (:class:`URLRefused` for a refused destination).
    """
    parts = url_split(url)
    host = parts.hostname or ""
    target = host_normalise(host)
    if allowed_networks is None:
        allowed_networks = settings.SOURCES["ALLOWED_NETWORKS"]
    networks = networks_parse(allowed_networks)
    if isinstance(target, str):
        if not resolve and not _is_localhost(target):
            return
        timeout = settings.SOURCES["DNS_TIMEOUT"]
        try:
            addresses = _host_addresses(target, parts.port, timeout=timeout, resolver=resolver)
        except ResolutionTimeout:
            logger.warning(
                "%s could not be resolved within %s s; it is checked again when connecting", url_label(url), timeout
            )
            return
        if addresses is None:
            logger.warning("%s does not resolve now; it is checked again when connecting", url_label(url))
            return
        verb = "resolves to"
    else:
        addresses, verb = [target], "points at"
    for address in addresses:
        if not address_permitted(address, networks):
            shown = _embedded_ipv4(address) or address
            raise URLRefused(
                f"{url_label(url)} {verb} {shown}, {address_kind(address)}; {purpose} may only reach public "
                "addresses unless SOURCE_ALLOWED_NETWORKS allows it"
            )


def url_label(url: str) -> str:
    """The URL as shown in messages and logs: no query string, fragment or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def url_with_params(url: str, params: Mapping[str, Any]) -> str:
    """``url`` with ``params`` set in its query string, replacing any values already there."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *((k, str(v)) for k, v in params.items())])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def url_without_params(url: str, names: Collection[str]) -> str:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k in names for k, _ in pairs):
        return url
    query = urlencode([(k, v) for k, v in pairs if k not in names])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def keeps_credentials(old: str, new: str) -> bool:
    """Whether credentials may follow a redirect: same origin, or an http to https upgrade."""
    before, after = origin(old), origin(new)
    return before == after or (before == ("http", after[1], 80) and after == ("https", before[1], 443))


@contextlib.contextmanager
def headers_deadline(at: float) -> Iterator[None]:
    """Within the block, guarded connections give up waiting for headers at ``at`` (monotonic)."""
    token = _headers_deadline.set(at)
    try:
        yield
    finally:
        _headers_deadline.reset(token)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _GuardedConnectionMixin:
    """Replaces urllib3's socket creation: resolve once, check, connect to what was checked."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    # Provided by urllib3's HTTPConnection.
    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            # The mixin is only used in urllib3 connections: self is an HTTPConnection.
            raise NameResolutionError(self.host, self, socket.gaierror(str(e))) from None  # type: ignore[arg-type]
        for *_, sockaddr in infos:
            if not address_permitted(str(sockaddr[0]), self.allowed_networks):
                # Every address must pass: a connection is never made to a name that also
                # resolves somewhere internal, whichever address would have been tried first.
                logger.warning("Refused a connection to %s: it resolves to %s", self.host, sockaddr[0])
                raise DestinationRefused(refusal_message(self.host))
        last_error: OSError | None = None
        for family, socktype, proto, _, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                for level, option, value in self.socket_options or ():
                    sock.setsockopt(level, option, value)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                last_error = e
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        # The OS error stays out of the message: it would tell whether a port is open.
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(self, f"could not connect to {self.host}") from last_error
        # The mixin is only used in urllib3 connections: self is an HTTPConnection.
        raise NewConnectionError(self, f"could not connect to {self.host}") from last_error  # type: ignore[arg-type]

    def getresponse(self) -> Any:
        at, sock = _headers_deadline.get(), getattr(self, "sock", None)
        if at is None or sock is None:
            return super().getresponse()  # type: ignore[misc]  # HTTPConnection's, after the mixin
        # The read timeout restarts with every byte, so a server dripping its headers could
        # hold a pull for hours; at the deadline the socket is shut down under the reader.
        watchdog = threading.Timer(max(0.0, at - time.monotonic()), _shutdown, (sock,))
        watchdog.daemon = True
        watchdog.start()
        try:
            response = super().getresponse()  # type: ignore[misc]  # HTTPConnection's, after the mixin
        finally:
            watchdog.cancel()
        if time.monotonic() >= at:
            # Cut off, http.client may take the headers read so far for a whole response.
            response.close()
            raise TimeoutError("the response headers did not arrive before the deadline")
        return response


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    """TLS still verifies the certificate against ``self.host``, the name, not the address."""


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection
    allowed_networks: tuple[IPNetwork, ...] = ()

    def _new_conn(self) -> Any:
        # ConnectionCls above makes every connection of this pool a guarded one.
        conn = cast(_GuardedConnectionMixin, super()._new_conn())
        conn.allowed_networks = self.allowed_networks
        return conn


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection
    allowed_networks: tuple[IPNetwork, ...] = ()

    def _new_conn(self) -> Any:
        # ConnectionCls above makes every connection of this pool a guarded one.
        conn = cast(_GuardedConnectionMixin, super()._new_conn())
        conn.allowed_networks = self.allowed_networks
        return conn


class GuardedPoolManager(PoolManager):
    """A pool manager whose pools only open guarded connections."""

    def __init__(self, *args: Any, allowed_networks: tuple[IPNetwork, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_networks = allowed_networks
        self.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None) -> Any:
        # pool_classes_by_scheme above makes every pool of this manager a guarded one.
        pool = cast(
            GuardedHTTPConnectionPool | GuardedHTTPSConnectionPool,
            super()._new_pool(scheme, host, port, request_context),
        )
        pool.allowed_networks = self.allowed_networks
        return pool


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter that refuses destinations :func:`address_permitted` rejects."""

    __attrs__ = [*HTTPAdapter.__attrs__, "allowed_networks"]

    def __init__(self, allowed_networks: Iterable[str | IPNetwork] = (), **kwargs: Any) -> None:
        self.allowed_networks = networks_parse(allowed_networks)
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = GuardedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            allowed_networks=self.allowed_networks,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the guard would only see the proxy's address, not the destination.
        raise FetchError("fetching through a proxy is not supported")
