"""What a source kind is: one ``SourceKind`` declaring the fields a source of that kind has.

Each kind lives in its own module of this package and is registered once in
``ingestion.sourcekinds.SOURCE_KINDS``. The fields a client may set
(``ingestion.services.sources.SOURCE_FIELDS``), the API's source serializer, the
console's source form and ``Source.Kind`` (the model's choices) are all
derived from it (docs/development.md, "Adding a source kind").
"""

from __future__ import annotations

from dataclasses import dataclass

# Fields every source has, whatever its kind: its name, dataset and kind, whether it
# pulls by itself, and when.
COMMON_FIELDS = ("name", "dataset", "kind", "enabled")
SCHEDULE_FIELDS = ("schedule", "interval_minutes", "cron")
# A kind's write-only secret: stored encrypted (``Source.secret_encrypted``), never shown
# again. The name of a field, not a password (ruff S105, bandit B105).
SECRET_FIELD = "secret"  # noqa: S105  # nosec B105

Fieldsets = tuple[tuple[str | None, tuple[str, ...]], ...]


@dataclass(frozen=True)
class SourceKind:
    """Everything about one source kind, declared once.

    ``name`` is the value ``Source.kind`` stores and ``label`` its choice's
    label (both frozen into migrations). ``fieldsets`` groups the kind's own
    fields, in the order the console and the API show them: model fields,
    plus ``SECRET_FIELD`` where the kind takes a write-only secret. ``read_only``
    fields are shown, never set by a client.
    """

    name: str
    label: str
    fieldsets: Fieldsets
    read_only: tuple[str, ...] = ()
    # A stream kind is read continuously by ``manage.py consume`` (ingestion.streams), not pulled.
    stream: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field of the kind, in order."""
        return tuple(name for _, names in self.fieldsets for name in names)

    @property
    def settable(self) -> tuple[str, ...]:
        """The model fields a client may set (the secret is set apart)."""
        return tuple(name for name in self.fields if name not in self.read_only and name != SECRET_FIELD)
