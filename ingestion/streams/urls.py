"""A stream source's URL: its credentials set apart (stored encrypted), checked, and put back to connect."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = {"redis_stream": ("redis", "rediss"), "nats_jetstream": ("nats", "tls")}
# Names JetStream accepts for streams and consumers: no spaces, dots or wildcards.
_NATS_NAME_RE = re.compile(r"^[^\s.*>/\\]+$")


def url_credentials_split(kind: str, url: str) -> tuple[str, str | None]:
    """The URL without its secret, and the secret (None when the URL holds none).

    The password is the secret (``redis://:pw@host``, ``nats://user:pw@host``);
    a NATS URL's user without a password is a token (``nats://token@host``),
    so that is the secret. The user name stays in the URL.
    """
    parts = urlsplit(url)
    if parts.password is None and not (kind == "nats_jetstream" and parts.username):
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if parts.password is not None:
        if parts.username:
            netloc = f"{quote(unquote(parts.username), safe='')}@{netloc}"
        secret = unquote(parts.password)
    else:
        secret = unquote(parts.username or "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), secret


def url_with_secret(kind: str, url: str, secret: str) -> str:
    """The URL to connect with: the stored secret put back where ``url_credentials_split`` took it from."""
    if not secret:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    if user:
        userinfo = f"{quote(unquote(user), safe='')}:{quote(secret, safe='')}"
    elif kind == "nats_jetstream":
        userinfo = quote(secret, safe="")
    else:
        userinfo = f":{quote(secret, safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def stream_config_errors(kind: str, *, url: str, stream: str, group: str, subject: str, durable: str) -> dict[str, str]:
    """What is wrong with a stream source's settings, by field."""
    errors: dict[str, str] = {}
    schemes = SCHEMES[kind]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return {"url": f"Not a valid URL: {exc}."}
    if parts.scheme not in schemes or not parts.hostname:
        example = "redis://host:6379/0" if kind == "redis_stream" else "nats://host:4222"
        errors["url"] = f"Enter a {' or '.join(schemes)} URL with a host, e.g. {example}."
    if not stream.strip():
        errors["stream"] = "Name the stream to read."
    if kind == "redis_stream":
        if not group.strip():
            errors["group"] = "Name the consumer group this source reads as."
    else:
        if not subject.strip():
            errors["subject"] = "Name the subject to read (the stream's subject, or a filter of it)."
        if not _NATS_NAME_RE.match(durable):
            errors["durable"] = "Name the durable consumer (no spaces, dots, '*', '>' or slashes)."
        if stream and not _NATS_NAME_RE.match(stream):
            errors["stream"] = "A JetStream stream name has no spaces, dots, '*', '>' or slashes."
    return errors
