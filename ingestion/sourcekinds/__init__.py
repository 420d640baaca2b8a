"""The source-kind registry: every kind of place a dataset pulls records from, declared once.

``SOURCE_KINDS`` maps a kind's name to its ``SourceKind``, in the order
``Source.Kind`` lists them (the first is the default). The field list of a
source exists only here: ``source_fields()`` is what a client may set, and
the API and the console build their fields from the kinds. A new kind is one
module here plus its tests (docs/development.md, "Adding a source kind").
"""

from __future__ import annotations

from .base import COMMON_FIELDS, SCHEDULE_FIELDS, SECRET_FIELD, SourceKind
from .http import HTTP
from .streams import NATS_JETSTREAM, REDIS_STREAM

SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (HTTP, REDIS_STREAM, NATS_JETSTREAM)}
DEFAULT_KIND = HTTP.name


def source_kind(name: str) -> SourceKind:
    """The registered kind called ``name`` (``KeyError`` if there is none)."""
    return SOURCE_KINDS[name]


def stream_kinds() -> tuple[str, ...]:
    """The names of the kinds ``manage.py consume`` reads."""
    return tuple(k.name for k in SOURCE_KINDS.values() if k.stream)


def source_kind_choices() -> list[tuple[str, tuple[str, str]]]:
    """The kinds as members of a ``TextChoices`` (``Source.Kind``): ``(MEMBER, (value, label))``."""
    return [(k.name.upper(), (k.name, k.label)) for k in SOURCE_KINDS.values()]


def kind_fields() -> tuple[str, ...]:
    """Every field of every kind (secret and read-only ones included), each once, in order."""
    return tuple(dict.fromkeys(name for kind in SOURCE_KINDS.values() for name in kind.fields))


def source_fields() -> tuple[str, ...]:
    """What a client may set on a source, whatever its kind (the secret is set apart, write-only)."""
    settable = (name for kind in SOURCE_KINDS.values() for name in kind.settable)
    return tuple(dict.fromkeys((*COMMON_FIELDS, *settable, *SCHEDULE_FIELDS)))


def read_only_fields() -> tuple[str, ...]:
    """Fields of a kind that are shown and never set by a client."""
    return tuple(dict.fromkeys(name for kind in SOURCE_KINDS.values() for name in kind.read_only))


__all__ = [
    "COMMON_FIELDS",
    "DEFAULT_KIND",
    "SCHEDULE_FIELDS",
    "SECRET_FIELD",
    "SOURCE_KINDS",
    "SourceKind",
    "kind_fields",
    "read_only_fields",
    "source_fields",
    "source_kind",
    "source_kind_choices",
    "stream_kinds",
]
