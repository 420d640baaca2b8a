"""What changed between two schema versions: fields added, removed and changed, and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AttributeChange:
    """One attribute of a field (``type``, ``required``, ``min``…), before and after; None: not set."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class FieldChange:
    name: str
    change: str  # "added", "removed" or "changed"
    attributes: tuple[AttributeChange, ...] = ()
    moved: tuple[int, int] | None = None  # 1-based positions, when the field changed place among the others


@dataclass(frozen=True)
class SchemaDiff:
    fields: tuple[FieldChange, ...] = ()
    key: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # (old, new) when the key changed
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.fields and self.key is None


def _fields(definition: dict[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    return {f["name"]: (i + 1, f) for i, f in enumerate(definition.get("fields") or []) if isinstance(f, dict)}


def _key(definition: dict[str, Any]) -> tuple[str, ...]:
    key = definition.get("key") or []
    return (key,) if isinstance(key, str) else tuple(key)


def schema_diff(old: dict[str, Any], new: dict[str, Any]) -> SchemaDiff:
    """The difference from the schema file ``old`` to ``new`` (two versions' ``definition``).

    Fields are matched by name, so a renamed field shows as one removed and
    one added. Attributes a field leaves out have their default (``required``
    false, no ``source``…), so adding ``"required": true`` shows as
    ``required: — → True``.
    """
    before, after = _fields(old), _fields(new)
    # A field "moved" when its place among the fields both versions have changed (not because one was added).
    common_old = [n for n in before if n in after]
    common_new = [n for n in after if n in before]
    changes: list[FieldChange] = []
    for name, (position, spec) in after.items():
        if name not in before:
            changes.append(FieldChange(name=name, change="added", attributes=_attributes({}, spec)))
            continue
        old_position, old_spec = before[name]
        attributes = _attributes(old_spec, spec)
        moved = (old_position, position) if common_old.index(name) != common_new.index(name) else None
        if attributes or moved:
            changes.append(FieldChange(name=name, change="changed", attributes=attributes, moved=moved))
    for name in before:
        if name not in after:
            changes.append(FieldChange(name=name, change="removed", attributes=_attributes(before[name][1], {})))
    key = (_key(old), _key(new)) if _key(old) != _key(new) else None
    return SchemaDiff(fields=tuple(changes), key=key)


def _attributes(old: dict[str, Any], new: dict[str, Any]) -> tuple[AttributeChange, ...]:
    names = [k for k in old if k != "name"] + [k for k in new if k != "name" and k not in old]
    return tuple(AttributeChange(name=k, old=old.get(k), new=new.get(k)) for k in names if old.get(k) != new.get(k))
